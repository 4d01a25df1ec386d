/**
 * Checks of the authentication, origin and TLS settings that a schema cannot express (settings
 * that go together or exclude each other). Files are read at start, not here.
 */
import type { Config } from '../config/schema.js';
import { normaliseOrigin } from './origins.js';

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits). */
export const MIN_SECRET_BYTES = 32;

/** The first problem with these settings, as a message naming them; undefined when fine. */
export function securitySettingsProblem(
  config: Pick<
    Config,
    | 'allowedOrigins'
    | 'jwtSecret'
    | 'jwtPublicKey'
    | 'jwtJwks'
    | 'jwtIssuer'
    | 'jwtAudience'
    | 'tlsCert'
    | 'tlsKey'
  >,
): string | undefined {
  for (const entry of config.allowedOrigins) {
    if (!normaliseOrigin(entry)) {
      return `Invalid setting --allowed-origins / ALLOWED_ORIGINS: "${entry}" is not an origin (scheme://host[:port], e.g. https://app.example.com)`;
    }
  }
  const keys = [
    config.jwtSecret && '--jwt-secret / JWT_SECRET',
    config.jwtPublicKey && '--jwt-public-key / JWT_PUBLIC_KEY',
    config.jwtJwks && '--jwt-jwks / JWT_JWKS',
  ].filter(Boolean);
  if (keys.length > 1) {
    return `Invalid settings ${keys.join(' and ')}: give only one way to verify tokens`;
  }
  // Never echo the secret.
  if (config.jwtSecret && Buffer.byteLength(config.jwtSecret) < MIN_SECRET_BYTES) {
    return `Invalid setting --jwt-secret / JWT_SECRET: shorter than ${MIN_SECRET_BYTES} bytes (HS256 needs a 256-bit key; e.g. openssl rand -base64 48)`;
  }
  if (keys.length === 0) {
    if (config.jwtIssuer) {
      return 'Invalid setting --jwt-issuer / JWT_ISSUER: authentication is off (set --jwt-secret, --jwt-public-key or --jwt-jwks)';
    }
    if (config.jwtAudience) {
      return 'Invalid setting --jwt-audience / JWT_AUDIENCE: authentication is off (set --jwt-secret, --jwt-public-key or --jwt-jwks)';
    }
  }
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    return `Invalid settings --tls-cert / TLS_CERT and --tls-key / TLS_KEY: give both or neither (only ${config.tlsCert ? '--tls-cert' : '--tls-key'} is set)`;
  }
  return undefined;
}
