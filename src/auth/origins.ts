/**
 * The Origin allow-list (--allowed-origins). A browser sends the page's origin with every
 * WebSocket upgrade and does not let a page forge it, so the list stops other sites' pages from
 * connecting on a visitor's behalf. Clients that are not browsers send no Origin and are let
 * through (they could send any Origin anyway; authentication is what stops them).
 */

/**
 * `https://App.example.com:443/` → `https://app.example.com`: scheme and host lower-cased, a
 * default port and a trailing slash dropped. Undefined for anything that is not an origin
 * (a path, a query, no host).
 */
export function normaliseOrigin(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return undefined;
  }
  if (!url.host || (url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) return undefined;
  if (url.username || url.password) return undefined;
  return `${url.protocol}//${url.host}`.toLowerCase();
}

export class OriginAllowList {
  private readonly allowed: ReadonlySet<string>;

  /** `origins` must be valid origins (the configuration loader checks them); empty = any. */
  constructor(origins: readonly string[]) {
    const set = new Set<string>();
    for (const o of origins) {
      const n = normaliseOrigin(o);
      if (!n) throw new Error(`not an origin (scheme://host[:port]): ${o}`);
      set.add(n);
    }
    this.allowed = set;
  }

  /** Whether an upgrade with this Origin header (or none) may go on. */
  allows(origin: string | undefined): boolean {
    if (this.allowed.size === 0 || origin === undefined) return true;
    const n = normaliseOrigin(origin);
    return n !== undefined && this.allowed.has(n);
  }
}

const FORBIDDEN_BODY = '{"error":"origin_not_allowed"}';

/** The raw HTTP answer to an upgrade from an origin not in the list (no WebSocket is made). */
export const ORIGIN_NOT_ALLOWED_RESPONSE =
  'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${FORBIDDEN_BODY.length}\r\n\r\n${FORBIDDEN_BODY}`;
