/**
 * Minting JWTs for the authentication tests (as a backend would: jose SignJWT), and reading
 * what an upgrade refused before the WebSocket existed (status and body).
 */
import assert from 'node:assert/strict';
import { SignJWT, type CryptoKey, type JWTPayload, type KeyObject } from 'jose';
import WebSocket from 'ws';
import type { Closed, Frame, TestClient } from './client.js';

/** An HS256 shared secret of the length the server asks for (32 bytes and more). */
export const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export interface MintOptions {
  /** Default HS256 with SECRET. */
  alg?: string;
  key?: CryptoKey | KeyObject | Uint8Array;
  kid?: string;
  /** `exp` in seconds since the epoch; default an hour from now; null = no exp claim. */
  exp?: number | null;
}

/** A signed token with `sub` and the other claims given. */
export function mint(
  sub: string | undefined,
  claims: JWTPayload = {},
  options: MintOptions = {},
): Promise<string> {
  const alg = options.alg ?? 'HS256';
  const jwt = new SignJWT({ ...claims }).setProtectedHeader({
    alg,
    ...(options.kid && { kid: options.kid }),
  });
  if (sub !== undefined) jwt.setSubject(sub);
  jwt.setIssuedAt();
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? nowSeconds() + 3600);
  return jwt.sign(options.key ?? new TextEncoder().encode(SECRET));
}

/**
 * Expects the frame after a hello to be an `unauthorized` error that does not echo the token,
 * followed by close 4003. Returns the message.
 */
export async function expectUnauthorized(client: TestClient, token?: string): Promise<string> {
  const frame: Frame = await client.next();
  assert.equal(frame.type, 'error', JSON.stringify(frame));
  assert.equal(frame.code, 'unauthorized', JSON.stringify(frame));
  assert.equal(typeof frame.message, 'string');
  if (token) assert.ok(!String(frame.message).includes(token), 'the error never echoes the token');
  const closed: Closed = await client.closed;
  assert.equal(closed.code, 4003);
  return String(frame.message);
}

/** The outcome of an upgrade: `open` (then closed again), or the HTTP status and body it got. */
export function tryUpgrade(
  url: string,
  options: WebSocket.ClientOptions = {},
): Promise<'open' | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    ws.once('open', () => {
      ws.close(1000);
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    ws.once('error', reject);
  });
}
