/**
 * Which IP address a connection is recorded under. Proxy headers (X-Real-IP, X-Forwarded-For)
 * are believed only when the TCP peer is a configured trusted proxy: from anyone else they are
 * trivially spoofed (the original trusted them from everyone).
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { parseAddressRange } from '../config/address-range.js';

/** `::ffff:1.2.3.4` (an IPv4 peer on a dual-stack socket) → `1.2.3.4`. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export class ClientIpResolver {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  constructor(trustedProxies: readonly string[]) {
    for (const entry of trustedProxies) {
      const range = parseAddressRange(entry);
      if (!range) throw new Error(`not an IP address or CIDR range: ${entry}`);
      this.trusted.addSubnet(range.address, range.prefix, range.family);
    }
    this.any = trustedProxies.length > 0;
  }

  isTrusted(ip: string): boolean {
    if (!this.any) return false;
    const version = isIP(ip);
    return version !== 0 && this.trusted.check(ip, version === 4 ? 'ipv4' : 'ipv6');
  }

  resolve(req: IncomingMessage): string {
    const peer = normaliseIp(req.socket.remoteAddress ?? '');
    if (!this.isTrusted(peer)) return peer;
    const real = header(req, 'x-real-ip');
    if (real && isIP(real.trim())) return normaliseIp(real.trim());
    const forwarded = header(req, 'x-forwarded-for');
    if (forwarded) {
      // Walk from the nearest hop back; the first address not itself a trusted proxy is the client.
      const hops = forwarded
        .split(',')
        .map((s) => normaliseIp(s.trim()))
        .filter((s) => isIP(s) !== 0);
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = hops[i]!;
        if (!this.isTrusted(hop) || i === 0) return hop;
      }
    }
    return peer;
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}
