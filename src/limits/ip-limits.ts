/**
 * Limits per client IP: open connections, and failed room joins per minute (so room codes
 * cannot be guessed by brute force). Loopback addresses are exempt from the connection limit
 * unless configured otherwise: a reverse proxy on the same host without --trusted-proxies would
 * put every client under one address, and local load tests open thousands of connections. The
 * failed-join limit applies to every address: guessing from the same host is still guessing.
 *
 * Memory stays bounded by what is live: a connection counter exists while its IP has a
 * connection; a failure window is dropped when its minute is over (swept once a minute).
 */
import { isIPv4 } from 'node:net';

export interface IpLimitsOptions {
  /** 0 = no limit. */
  maxConnectionsPerIp: number;
  /** 0 = no limit. */
  failedJoinsPerMinute: number;
  limitLoopback: boolean;
}

const WINDOW_MS = 60_000;

/**
 * 127.0.0.0/8, ::1 and IPv4-mapped 127.x. A prefix test: the peer address is Node's canonical text,
 * and net.BlockList.check cost ~9 µs per connection here (measured in the bench's join profile).
 */
function isLoopback(ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith('127.');
  return ip === '::1' || (ip.startsWith('::ffff:127.') && isIPv4(ip.slice(7)));
}

export class IpLimits {
  private readonly connections = new Map<string, number>();
  private readonly failures = new Map<string, { since: number; count: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: IpLimitsOptions) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), WINDOW_MS);
    this.sweeper.unref();
  }

  private exempt(ip: string): boolean {
    return !this.options.limitLoopback && isLoopback(ip);
  }

  /** Counts a new connection; false (and nothing counted) when the IP has too many. */
  openConnection(ip: string): boolean {
    const max = this.options.maxConnectionsPerIp;
    if (max === 0 || this.exempt(ip)) return true;
    const n = this.connections.get(ip) ?? 0;
    if (n >= max) return false;
    this.connections.set(ip, n + 1);
    return true;
  }

  /** A connection counted by openConnection closed. */
  closeConnection(ip: string): void {
    const n = this.connections.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.connections.delete(ip);
    else this.connections.set(ip, n - 1);
  }

  /** Whether this IP may name a room now (false past its failed joins this minute). */
  mayJoin(ip: string, now = Date.now()): boolean {
    const max = this.options.failedJoinsPerMinute;
    if (max === 0) return true;
    const f = this.failures.get(ip);
    return !f || now - f.since >= WINDOW_MS || f.count < max;
  }

  /** A hello or join_room from this IP named a room that does not exist. */
  failedJoin(ip: string, now = Date.now()): void {
    if (this.options.failedJoinsPerMinute === 0) return;
    const f = this.failures.get(ip);
    if (!f || now - f.since >= WINDOW_MS) this.failures.set(ip, { since: now, count: 1 });
    else f.count++;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(now: number): void {
    for (const [ip, f] of this.failures) if (now - f.since >= WINDOW_MS) this.failures.delete(ip);
  }
}
