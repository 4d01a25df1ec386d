/**
 * The backend a test run uses (TEST_DATABASE=sqlite|mysql|postgres; sqlite by default), a fresh
 * database per test server on MySQL/MariaDB and PostgreSQL, and reading rows back through the
 * right driver with the same shapes on every backend: timestamps as ISO 8601 strings with
 * milliseconds, integers as numbers.
 *
 * Servers: TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306) and TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres), admin accounts that may create databases.
 * Databases are named rm_t_<hash>; `npm test` drops them after the run (scripts/test-db.ts).
 */
import { createHash } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pgTypes } from '../../src/store/postgres-store.js';

export type TestBackend = 'sqlite' | 'mysql' | 'postgres';

export const TEST_DATABASE: TestBackend = parseBackend(process.env.TEST_DATABASE);

function parseBackend(value: string | undefined): TestBackend {
  if (!value || value === 'sqlite') return 'sqlite';
  if (value === 'mysql' || value === 'mariadb') return 'mysql';
  if (value === 'postgres' || value === 'postgresql') return 'postgres';
  throw new Error(`TEST_DATABASE=${value}: use sqlite, mysql or postgres`);
}

export const ADMIN_URL: Record<Exclude<TestBackend, 'sqlite'>, string> = {
  mysql: process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
};

/** Prefix of every database the tests create. */
export const TEST_DB_PREFIX = 'rm_t_';

/** For describe()/it(): skip a SQLite-specific (or backend-independent) test on other backends. */
export const sqliteOnly = {
  skip: TEST_DATABASE === 'sqlite' ? false : `SQLite-specific; this run is TEST_DATABASE=${TEST_DATABASE}`,
};

/** For describe()/it(): run only against a database server (MySQL/MariaDB or PostgreSQL). */
export const serverDatabasesOnly = {
  skip: TEST_DATABASE === 'sqlite' ? 'needs TEST_DATABASE=mysql or postgres' : false,
};

/** A database name derived from a key (the test's temp dir), so that a restart finds it again. */
export function testDatabaseName(key: string): string {
  return TEST_DB_PREFIX + createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** The URL of database `name` on the backend's test server. */
export function databaseUrl(backend: Exclude<TestBackend, 'sqlite'>, name: string, viaPort?: number): string {
  const u = new URL(ADMIN_URL[backend]);
  u.pathname = `/${name}`;
  if (viaPort !== undefined) {
    u.hostname = '127.0.0.1';
    u.port = String(viaPort);
  }
  return u.toString();
}

/** Creates database `name` unless it exists; returns its URL. */
export async function createDatabase(backend: Exclude<TestBackend, 'sqlite'>, name: string): Promise<string> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`bad test database name ${name}`);
  if (backend === 'mysql') {
    await adminQuery(backend, `create database if not exists ${name} character set utf8mb4`);
  } else {
    const exists = await adminQuery(backend, 'select 1 from pg_database where datname = $1', [name]);
    if (exists.length === 0) {
      await adminQuery(backend, `create database ${name}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created meanwhile
      });
    }
  }
  return databaseUrl(backend, name);
}

export async function dropDatabase(backend: Exclude<TestBackend, 'sqlite'>, name: string): Promise<void> {
  if (backend === 'mysql') await adminQuery(backend, `drop database if exists ${name}`);
  else await adminQuery(backend, `drop database if exists ${name} with (force)`);
}

/** One query on the admin database (a connection per call: no handle outlives it). */
export function adminQuery(
  backend: Exclude<TestBackend, 'sqlite'>,
  sql: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  return query(ADMIN_URL[backend], backend, sql, params);
}

/**
 * Runs `sql` (with `?` placeholders) on the database at `url` and returns its rows with
 * timestamps as ISO strings and integers as numbers.
 */
export async function query(
  url: string,
  backend: Exclude<TestBackend, 'sqlite'>,
  sql: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  let rows: Record<string, unknown>[];
  if (backend === 'mysql') {
    const conn = await mysql.createConnection({ uri: url, timezone: 'Z', connectTimeout: 5000 });
    try {
      const [result] = await conn.query(sql, params);
      rows = Array.isArray(result) ? (result as Record<string, unknown>[]) : [];
    } finally {
      await conn.end();
    }
  } else {
    const client = new pg.Client({ connectionString: url, types: pgTypes, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      let n = 0;
      const text = params.length ? sql.replace(/\?/g, () => `$${++n}`) : sql;
      rows = (await client.query(text, params)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }
  return rows.map(normalise);
}

function normalise(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = v instanceof Date ? v.toISOString() : v;
  return out;
}

/** Whether the backend's test server answers (within a few seconds). */
export async function reachable(backend: Exclude<TestBackend, 'sqlite'>): Promise<string | undefined> {
  try {
    await adminQuery(backend, 'select 1');
    return undefined;
  } catch (err) {
    return (err as Error).message || String(err);
  }
}
