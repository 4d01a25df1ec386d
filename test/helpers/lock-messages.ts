/**
 * Makes the server's record writes wait on `messages` while the database answers everything else:
 * SQLite, a write transaction (BEGIN IMMEDIATE) from a second connection; PostgreSQL, LOCK TABLE
 * … IN EXCLUSIVE MODE; MariaDB, LOCK TABLES … WRITE. The locking session can still read.
 */
import BetterSqlite3 from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { TestServer } from './server.js';

export interface Lock {
  /** Rows in `messages`, as the session holding the lock sees them (the lock does not stop it). */
  countMessages(): Promise<number>;
  /** Ends the lock; may be called more than once. */
  release(): Promise<void>;
}

export async function lockMessages(srv: TestServer): Promise<Lock> {
  let lock: Lock;
  switch (srv.backend) {
    case 'sqlite': {
      const db = new BetterSqlite3(srv.dbPath);
      db.exec('BEGIN IMMEDIATE');
      lock = {
        countMessages: async () =>
          (db.prepare('select count(*) as n from messages').get() as { n: number }).n,
        release: async () => {
          db.exec('ROLLBACK');
          db.close();
        },
      };
      break;
    }
    case 'mysql': {
      const conn = await mysql.createConnection({ uri: srv.databaseUrl });
      await conn.query('LOCK TABLES messages WRITE');
      lock = {
        countMessages: async () => {
          const [rows] = await conn.query('select count(*) as n from messages');
          return Number((rows as { n: number }[])[0]!.n);
        },
        release: async () => {
          await conn.query('UNLOCK TABLES');
          await conn.end();
        },
      };
      break;
    }
    case 'postgres': {
      const client = new pg.Client({ connectionString: srv.databaseUrl });
      await client.connect();
      await client.query('BEGIN');
      await client.query('LOCK TABLE messages IN EXCLUSIVE MODE');
      lock = {
        countMessages: async () =>
          Number((await client.query<{ n: string }>('select count(*) as n from messages')).rows[0]!.n),
        release: async () => {
          await client.query('ROLLBACK');
          await client.end();
        },
      };
      break;
    }
  }
  let released: Promise<void> | undefined;
  return { countMessages: () => lock.countMessages(), release: () => (released ??= lock.release()) };
}
