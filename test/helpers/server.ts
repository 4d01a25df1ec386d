/**
 * Starts a real RoomServer on a free port with its own database, and reads that database back.
 * The backend is TEST_DATABASE's (helpers/db.ts): a SQLite file in the test's temp dir, or a
 * fresh MySQL/PostgreSQL database named after that dir (so that a restart on the same dir finds
 * the same database).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { after, before } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { RoomServer } from '../../src/server.js';
import { TEST_DATABASE, createDatabase, query, testDatabaseName, type TestBackend } from './db.js';

export interface TestServer {
  server: RoomServer;
  port: number;
  url: string;
  /** The --metrics-port listener's port, when the server has one. */
  metricsPort: number | undefined;
  backend: TestBackend;
  /** The SQLite file (on SQLite only). */
  dbPath: string;
  /** The server's database URL. */
  databaseUrl: string;
  dir: string;
  /** Graceful stop (flushes the record). Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Runs a query (`?` placeholders) against the server's database, after a flush while the server
   * runs; also works once it is stopped. Timestamps come back as ISO strings with milliseconds.
   */
  rows<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]>;
}

export function tempDir(prefix = 'rm-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The database URL a test server in `dir` uses on this run's backend (created if needed). */
export async function testDatabaseUrl(dir: string, backend: TestBackend = TEST_DATABASE): Promise<string> {
  if (backend === 'sqlite') return `sqlite:${join(dir, 'room-manager.db')}`;
  return createDatabase(backend, testDatabaseName(dir));
}

export interface StartOptions {
  /** Collects the server's JSON log lines (at `logLevel` and above) here. */
  logLines?: string[];
  /** The level of `logLines` (default info). */
  logLevel?: string;
}

export async function startServer(
  overrides: Partial<Config> = {},
  dir = tempDir(),
  options: StartOptions = {},
): Promise<TestServer> {
  const dbPath = join(dir, 'room-manager.db');
  const databaseUrl = overrides.databaseUrl ?? (await testDatabaseUrl(dir));
  const backend: TestBackend = databaseUrl.startsWith('sqlite:')
    ? 'sqlite'
    : databaseUrl.startsWith('mysql:')
      ? 'mysql'
      : 'postgres';
  const config = loadConfig({
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      statusIntervalMs: 0,
      spoolDir: join(dir, 'spool'),
      ...overrides,
      databaseUrl,
    },
  });
  const logLines = options.logLines;
  const logger = logLines
    ? pino({ level: options.logLevel ?? 'info' }, { write: (line: string) => void logLines.push(line) })
    : pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const server = new RoomServer(config, { logger });
  const { port, metricsPort } = await server.start();
  const stop = () => server.stop();
  return {
    server,
    port,
    url: `ws://127.0.0.1:${port}`,
    metricsPort,
    backend,
    dbPath,
    databaseUrl,
    dir,
    stop,
    async rows<T>(sql: string, ...params: unknown[]): Promise<T[]> {
      await server.flushRecords();
      return readDatabase<T>(databaseUrl, sql, ...params);
    },
  };
}

/** Reads rows from any backend's database by its URL (the server may be stopped). */
export async function readDatabase<T = Record<string, unknown>>(
  databaseUrl: string,
  sql: string,
  ...params: unknown[]
): Promise<T[]> {
  if (databaseUrl.startsWith('sqlite:'))
    return readRows<T>(databaseUrl.slice('sqlite:'.length), sql, ...params);
  const backend = databaseUrl.startsWith('mysql:') ? 'mysql' : 'postgres';
  return (await query(databaseUrl, backend, sql, params)) as T[];
}

/** Reads rows from a SQLite file directly (the server may be stopped). */
export function readRows<T = Record<string, unknown>>(
  dbPath: string,
  sql: string,
  ...params: unknown[]
): T[] {
  const db = new BetterSqlite3(dbPath, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Rate limits at their highest, for tests whose own traffic streams messages: every message sent
 * must be accepted (a refused one gets no seq, and a test waiting for it would wait forever).
 */
export const NO_RATE_LIMIT = { rateLimitPerSecond: 1_000_000, rateLimitBurst: 10_000_000 } as const;

/**
 * One server for the enclosing describe(): started in before(), stopped and its folder removed in
 * after(). Returns a stand-in that forwards to that server once it is up, so tests write `srv.url`.
 */
export function useServer(overrides: Partial<Config> = {}): TestServer {
  let current: TestServer | undefined;
  before(async () => {
    current = await startServer(overrides);
  });
  after(async () => {
    if (!current) return;
    await current.stop();
    removeDir(current.dir);
  });
  return new Proxy({} as TestServer, {
    get(_target, key) {
      if (!current) throw new Error('useServer(): the server is started in before()');
      const value: unknown = Reflect.get(current, key);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
}
