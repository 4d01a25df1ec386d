/**
 * PostgreSQL through pg's pool. Timestamps are TIMESTAMPTZ(3): written as ISO 8601 text, read back
 * as Dates. BIGINT (int8) is read as a JS number (ids and seq are exact below 2^53).
 * The pool reconnects by itself: a broken client is dropped from it (and the error an idle client
 * raises is caught here, never left to crash the process), and the next request connects anew.
 */
import pg from 'pg';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from './schema.js';
import { SqlStore, type BatchWrites, type ThreadTarget } from './sql-store.js';
import { urlParts, type PoolOptions } from './pool-options.js';

const INT8_OID = 20;

/** int8 → number; every other type as pg parses it. */
export const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

export class PostgresStore extends SqlStore {
  private constructor(pool: pg.Pool, log: Logger | undefined, threadTarget: ThreadTarget | undefined) {
    super(
      'postgres',
      new Kysely<Database>({ dialect: new PostgresDialect({ pool: guarded(pool, log) }) }),
      threadTarget,
    );
  }

  /** `url`: postgres://user:password@host:port/database (postgresql:// too). */
  static open(
    url: string,
    options: PoolOptions,
    log?: Logger,
    writes: BatchWrites = 'thread',
  ): PostgresStore {
    const u = urlParts(url);
    const pool = new pg.Pool({
      host: u.params.get('host') ?? u.host,
      port: u.port ?? 5432,
      user: u.user,
      password: u.password,
      database: u.database,
      ssl: sslOption(u.params.get('sslmode')),
      max: options.max,
      idleTimeoutMillis: 60_000,
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: true,
      types: pgTypes,
      application_name: 'room-manager',
    });
    (pool as PoolWithIdle).maxIdle = Math.min(options.idle, options.max);
    // An idle client whose server went away emits 'error' on the pool; unhandled, it would end
    // the process. The writer and the readiness check report the outage; this is only detail.
    pool.on('error', (err) => log?.debug({ err: err.message }, 'database: idle connection lost'));
    return new PostgresStore(pool, log, writes === 'thread' ? { url, pool: options } : undefined);
  }
}

type PoolWithIdle = pg.Pool & { maxIdle?: number };

/**
 * The pool as Kysely sees it, with two additions:
 * - a client checked out of the pool has no 'error' listener in pg; if its connection breaks
 *   between two statements (the server went away mid-transaction), pg emits 'error' on it and,
 *   unhandled, that would end the process. Every client gets a listener once; the statement that
 *   follows fails instead, and the pool drops the broken client when it is released.
 * - pg's pool has no "most idle connections": a client is released destroyed instead of idle
 *   when the pool already keeps `maxIdle` idle ones (the original kept 5 idle of 10 open).
 */
function guarded(pool: PoolWithIdle, log: Logger | undefined): PostgresPool {
  const listened = new WeakSet<pg.PoolClient>();
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      if (!listened.has(client)) {
        listened.add(client);
        client.on('error', (err) => log?.debug({ err: err.message }, 'database: connection lost'));
      }
      const release = client.release.bind(client);
      return Object.assign(client, {
        release: (err?: Error | boolean) => release(err ?? pool.idleCount >= (pool.maxIdle ?? Infinity)),
      }) as unknown as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
}

function sslOption(mode: string | null): pg.PoolConfig['ssl'] {
  if (!mode || mode === 'disable') return undefined;
  if (mode === 'require' || mode === 'prefer') return { rejectUnauthorized: false };
  return true; // verify-ca, verify-full
}
