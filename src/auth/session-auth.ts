/**
 * Authentication as a session sees it: where the token comes from, checking it against the
 * hello, what it allows (the Lobby asks through a RoomPolicy), and the timer that ends the
 * connection when the token expires.
 */
import type { IncomingMessage } from 'node:http';
import type { Hello } from '../protocol/frames.js';
import type { RoomPolicy } from './room-policy.js';
import type { TokenGrant, TokenVerifier, Verification } from './token-verifier.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * The token carried by the upgrade request: `Authorization: Bearer <token>`, else the `token`
 * query parameter (browsers cannot set headers on a WebSocket). Undefined when neither is there.
 */
export function tokenFromUpgrade(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  const bearer = auth ? BEARER.exec(auth)?.[1] : undefined;
  if (bearer) return bearer;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get('token') || undefined;
}

/** The request path as logged: a `token` query parameter is replaced by `***`. */
export function pathForLog(url: string | undefined): string | undefined {
  if (!url || !url.includes('token=')) return url;
  return url.replace(/([?&]token=)[^&#]*/g, '$1***');
}

/**
 * Checks the token of a hello: the hello's own `token` field first, then the upgrade's. The
 * token must verify and its `sub` must be the hello's device_id.
 */
export async function authenticate(
  verifier: TokenVerifier,
  hello: Hello,
  upgradeToken: string | undefined,
): Promise<Verification> {
  const field = hello.fields.token;
  if (field !== undefined && field !== null && typeof field !== 'string') {
    return { ok: false, reason: 'Field token must be a string' };
  }
  const token = field || upgradeToken;
  if (!token) {
    return {
      ok: false,
      reason: 'A token is required: in the hello ("token"), an Authorization: Bearer header or ?token=',
    };
  }
  const result = await verifier.verify(token);
  if (result.ok && result.grant.subject !== hello.deviceId) {
    return { ok: false, reason: 'Token subject (sub) does not match device_id' };
  }
  return result;
}

/** What the Lobby may do for the holder of `grant`. */
export function roomPolicy(grant: TokenGrant): RoomPolicy {
  return {
    mayEnter: (roomId) => grant.rooms === undefined || grant.rooms.has(roomId.toUpperCase()),
    mayCreate: grant.create,
  };
}

/** setTimeout's longest delay (about 24.8 days); a later expiry re-arms. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Calls `onExpire` once when `expiresAt` (seconds since the epoch) has passed. */
export class ExpiryTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly expiresAt: number,
    private readonly onExpire: () => void,
  ) {
    this.arm();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const left = this.expiresAt * 1000 - Date.now();
    // Always through a timer, also when already past: the caller is never called back from here.
    this.timer = setTimeout(
      () => {
        if (this.expiresAt * 1000 > Date.now()) return this.arm();
        this.timer = undefined;
        this.onExpire();
      },
      Math.min(Math.max(left, 0), MAX_DELAY_MS),
    );
    this.timer.unref();
  }
}
