/**
 * Starts a real RoomServer on a free port with its own SQLite file, and reads that file back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { RoomServer } from '../../src/server.js';

export interface TestServer {
  server: RoomServer;
  port: number;
  url: string;
  dbPath: string;
  dir: string;
  /** Graceful stop (flushes the record). Safe to call twice. */
  stop(): Promise<void>;
  /** Runs a query against the SQLite file (read-only, after a flush). */
  rows<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]>;
}

export function tempDir(prefix = 'rm-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startServer(overrides: Partial<Config> = {}, dir = tempDir()): Promise<TestServer> {
  const dbPath = join(dir, 'room-manager.db');
  const config = loadConfig({
    overrides: {
      port: 0,
      host: '127.0.0.1',
      databaseUrl: `sqlite:${dbPath}`,
      logLevel: 'silent',
      statusIntervalMs: 0,
      ...overrides,
    },
  });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const server = new RoomServer(config, { logger });
  const { port } = await server.start();
  const stop = () => server.stop();
  return {
    server,
    port,
    url: `ws://127.0.0.1:${port}`,
    dbPath,
    dir,
    stop,
    async rows<T>(sql: string, ...params: unknown[]): Promise<T[]> {
      await server.flushRecords();
      return readRows<T>(dbPath, sql, ...params);
    },
  };
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
