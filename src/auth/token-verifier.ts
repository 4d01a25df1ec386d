/**
 * JWT verification (jose). Off unless one of --jwt-secret (HS256), --jwt-public-key (a PEM
 * public key: RS256, ES256 or EdDSA, chosen from the key's type) or --jwt-jwks (a JWKS file) is
 * set. A verified token says who may connect (`sub` = the hello's device_id), until when (`exp`,
 * required), and optionally which rooms it may join (`rooms`) and whether it may create one
 * (`create`). See docs/security.md.
 */
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  errors,
  importSPKI,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import type { Config } from '../config/schema.js';

/** What a verified token allows its holder. */
export interface TokenGrant {
  /** The `sub` claim: the only device_id this token may say hello as. */
  subject: string;
  /** The `exp` claim, in seconds since the epoch. */
  expiresAt: number;
  /** Upper-cased room codes of the `rooms` claim; undefined when the claim is absent (any room). */
  rooms: ReadonlySet<string> | undefined;
  /** The `create` claim (absent = true): may the holder have a new room created. */
  create: boolean;
}

/** `reason` is said to the client: it never contains the token. */
export type Verification = { ok: true; grant: TokenGrant } | { ok: false; reason: string };

export interface TokenVerifier {
  verify(token: string): Promise<Verification>;
}

export type JwtSettings = Pick<
  Config,
  'jwtSecret' | 'jwtPublicKey' | 'jwtJwks' | 'jwtIssuer' | 'jwtAudience'
>;

/** The algorithms a key file may use (HS256 is for the shared secret only). */
const KEY_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];

/** Whether any of the settings that turn authentication on is set. */
export function authEnabled(settings: JwtSettings): boolean {
  return Boolean(settings.jwtSecret || settings.jwtPublicKey || settings.jwtJwks);
}

export class JwtVerifier implements TokenVerifier {
  private constructor(
    private readonly verifyJwt: (token: string, options: JWTVerifyOptions) => Promise<JWTPayload>,
    private readonly options: JWTVerifyOptions,
  ) {}

  /**
   * The verifier the settings ask for, or undefined when authentication is off. Reads and checks
   * the key file now, so that a missing or unusable key stops the server at start.
   */
  static async fromConfig(settings: JwtSettings): Promise<JwtVerifier | undefined> {
    if (!authEnabled(settings)) return undefined;
    const options: JWTVerifyOptions = { requiredClaims: ['exp', 'sub'] };
    if (settings.jwtIssuer) options.issuer = settings.jwtIssuer;
    if (settings.jwtAudience) options.audience = settings.jwtAudience;

    if (settings.jwtSecret) {
      const secret = new TextEncoder().encode(settings.jwtSecret);
      return new JwtVerifier(async (token, o) => (await jwtVerify(token, secret, o)).payload, {
        ...options,
        algorithms: ['HS256'],
      });
    }
    if (settings.jwtPublicKey) {
      const pem = await readSetting('--jwt-public-key / JWT_PUBLIC_KEY', settings.jwtPublicKey);
      const alg = algorithmOf(pem, settings.jwtPublicKey);
      const key = await importSPKI(pem, alg).catch((err: unknown) => {
        throw new Error(
          `--jwt-public-key / JWT_PUBLIC_KEY: ${settings.jwtPublicKey} is not a PEM public key ("-----BEGIN PUBLIC KEY-----"): ${(err as Error).message}`,
        );
      });
      return new JwtVerifier(async (token, o) => (await jwtVerify(token, key, o)).payload, {
        ...options,
        algorithms: [alg],
      });
    }
    const path = settings.jwtJwks;
    const text = await readSetting('--jwt-jwks / JWT_JWKS', path);
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(text) as JSONWebKeySet;
      if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) throw new Error('no "keys" array');
    } catch (err) {
      throw new Error(
        `--jwt-jwks / JWT_JWKS: ${path} is not a JWKS file ({"keys":[…]}): ${(err as Error).message}`,
      );
    }
    const keys = createLocalJWKSet(jwks);
    return new JwtVerifier(async (token, o) => (await jwtVerify(token, keys, o)).payload, {
      ...options,
      algorithms: KEY_ALGORITHMS,
    });
  }

  async verify(token: string): Promise<Verification> {
    let payload: JWTPayload;
    try {
      payload = await this.verifyJwt(token, this.options);
    } catch (err) {
      return { ok: false, reason: reasonOf(err) };
    }
    const { sub, exp, rooms, create } = payload;
    if (typeof sub !== 'string' || sub === '') return { ok: false, reason: 'Token claim "sub" is missing' };
    if (typeof exp !== 'number') return { ok: false, reason: 'Token claim "exp" is missing' };
    if (rooms !== undefined && !(Array.isArray(rooms) && rooms.every((r) => typeof r === 'string'))) {
      return { ok: false, reason: 'Token claim "rooms" must be an array of room codes' };
    }
    if (create !== undefined && typeof create !== 'boolean') {
      return { ok: false, reason: 'Token claim "create" must be true or false' };
    }
    return {
      ok: true,
      grant: {
        subject: sub,
        expiresAt: exp,
        rooms: rooms === undefined ? undefined : new Set((rooms as string[]).map((r) => r.toUpperCase())),
        create: create ?? true,
      },
    };
  }
}

async function readSetting(name: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${name}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** RS256 for an RSA key, ES256 for a P-256 key, EdDSA for an Ed25519 key; anything else is refused. */
function algorithmOf(pem: string, path: string): string {
  let type: string | undefined;
  let curve: string | undefined;
  try {
    const key = createPublicKey(pem);
    type = key.asymmetricKeyType;
    curve = key.asymmetricKeyDetails?.namedCurve;
  } catch (err) {
    throw new Error(
      `--jwt-public-key / JWT_PUBLIC_KEY: ${path} is not a PEM public key: ${(err as Error).message}`,
    );
  }
  if (type === 'rsa') return 'RS256';
  if (type === 'ec' && curve === 'prime256v1') return 'ES256';
  if (type === 'ed25519') return 'EdDSA';
  throw new Error(
    `--jwt-public-key / JWT_PUBLIC_KEY: ${path} is a ${type}${curve ? ` (${curve})` : ''} key; use an RSA (RS256), P-256 (ES256) or Ed25519 (EdDSA) key`,
  );
}

/** What the client is told about a token jose refused (never the token itself). */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'Token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'Token is not valid yet';
    return err.reason === 'missing'
      ? `Token claim "${err.claim}" is missing`
      : `Token claim "${err.claim}" is not accepted`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'Token signature is invalid';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'Token algorithm is not accepted';
  if (err instanceof errors.JWKSNoMatchingKey) return 'No known key matches the token';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'Several keys match the token: give it a "kid"';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'Token is malformed';
  return 'Token is invalid';
}
