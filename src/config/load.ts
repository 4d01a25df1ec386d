import { ConfigSchema, SETTINGS, type Config } from './schema.js';
import { parseAddressRange } from './address-range.js';
import { backendOf } from './backend.js';
import { securitySettingsProblem } from '../auth/settings-check.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Builds the configuration from environment variables, then CLI flags (flags win), then
 * programmatic overrides (tests and embedding). Throws ConfigError naming the setting at fault.
 */
export function loadConfig(
  options: {
    flags?: Record<string, string | boolean | undefined>;
    env?: NodeJS.ProcessEnv;
    overrides?: Partial<Config>;
  } = {},
): Config {
  const raw: Record<string, unknown> = {};
  const env = options.env ?? {};
  for (const s of SETTINGS) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== '') raw[s.key] = fromEnv;
    const fromFlag = options.flags?.[s.flag];
    if (fromFlag !== undefined) raw[s.key] = fromFlag;
  }
  Object.assign(raw, options.overrides ?? {});

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const spec = SETTINGS.find((s) => s.key === key);
    const name = spec ? `--${spec.flag} / ${spec.env}` : key || 'configuration';
    const value = key in raw ? ` (got ${JSON.stringify(raw[key])})` : '';
    throw new ConfigError(`Invalid setting ${name}${value}: ${issue.message}`);
  }
  const config = parsed.data;
  for (const entry of config.trustedProxies) {
    if (!parseAddressRange(entry)) {
      throw new ConfigError(
        `Invalid setting --trusted-proxies / TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR range`,
      );
    }
  }
  const backend = backendOf(config.databaseUrl);
  if (!backend) {
    throw new ConfigError(
      `Invalid setting --database-url / DATABASE_URL: "${redactUrl(config.databaseUrl)}" is not a supported database (use sqlite:PATH, mysql://… or postgres://…)`,
    );
  }
  if (backend === 'sqlite' && config.databaseUrl.replace(/^sqlite:(\/\/)?/, '') === '') {
    // An empty path would open a throwaway in-memory database: the record lost at exit, silently.
    throw new ConfigError(
      `Invalid setting --database-url / DATABASE_URL (got "${config.databaseUrl}"): names no file; use sqlite:PATH (e.g. sqlite:./data/room-manager.db), or sqlite::memory: for a throwaway database`,
    );
  }
  if (backend !== 'sqlite') {
    let ok = false;
    try {
      ok =
        new URL(config.databaseUrl).hostname !== '' || new URL(config.databaseUrl).searchParams.has('socket');
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new ConfigError(
        `Invalid setting --database-url / DATABASE_URL: "${redactUrl(config.databaseUrl)}" is not a valid URL (${backend}://USER:PASSWORD@HOST:PORT/DATABASE)`,
      );
    }
  }
  if (config.redisUrl !== '') {
    if (!/^rediss?:\/\/[^/]/.test(config.redisUrl)) {
      throw new ConfigError(
        `Invalid setting --redis-url / REDIS_URL: "${redactUrl(config.redisUrl)}" is not a Redis URL (redis://HOST:PORT or rediss://HOST:PORT)`,
      );
    }
    // Every node writes the same record, with seqs and ids that only a shared database keeps unique.
    if (backend === 'sqlite') {
      throw new ConfigError(
        'Invalid settings: cluster mode (--redis-url) needs a database every node shares: --database-url must be mysql://… or postgres://…, not SQLite (a file only one server can write)',
      );
    }
    if (config.retainRooms !== undefined) {
      throw new ConfigError(
        'Invalid settings: --retain-rooms is not supported in cluster mode (--redis-url) yet: another node may be about to let a member into the room it would forget',
      );
    }
  }
  if (config.dbPoolIdle > config.dbPoolMax) {
    throw new ConfigError(
      `Invalid setting --db-pool-idle / DB_POOL_IDLE (got ${config.dbPoolIdle}): more than --db-pool-max (${config.dbPoolMax})`,
    );
  }
  const security = securitySettingsProblem(config);
  if (security) throw new ConfigError(security);
  return config;
}

/** Hides a password in a database URL (and password=… parameters), for logs and error messages. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z0-9+]+:\/\/[^:/@]*:).*@/i, '$1***@')
    .replace(/([?&](?:password|pass|pwd)=)[^&]*/gi, '$1***');
}
