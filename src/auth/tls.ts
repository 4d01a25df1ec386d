/**
 * Serving wss:// and https:// directly (--tls-cert / --tls-key): the certificate chain and the
 * private key, read once at start. A file that cannot be read or used stops the start with a
 * message naming the setting.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** The TLS material the settings name, or undefined when TLS is off (both unset). */
export function loadTls(config: Pick<Config, 'tlsCert' | 'tlsKey'>): TlsFiles | undefined {
  if (!config.tlsCert && !config.tlsKey) return undefined;
  if (!config.tlsCert || !config.tlsKey) {
    throw new Error('--tls-cert / TLS_CERT and --tls-key / TLS_KEY must be given together');
  }
  const cert = read('--tls-cert / TLS_CERT', config.tlsCert);
  const key = read('--tls-key / TLS_KEY', config.tlsKey);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(
      `--tls-cert / TLS_CERT (${config.tlsCert}) and --tls-key / TLS_KEY (${config.tlsKey}) are not a usable PEM certificate and matching private key: ${(err as Error).message}`,
    );
  }
  return { cert, key };
}

function read(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${name}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The server of the port: https (serving wss:// upgrades too) with TLS material, else plain http. */
export function createPortServer(tls: TlsFiles | undefined, handler: RequestListener): HttpServer {
  return tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
}
