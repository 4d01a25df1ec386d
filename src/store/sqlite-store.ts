/** The embedded default: SQLite through better-sqlite3, in WAL mode. */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.js';
import { SqlStore } from './sql-store.js';

export class SqliteStore extends SqlStore {
  /** `path` is a file path (its folder is created) or `:memory:`. */
  static open(path: string): SqliteStore {
    const memory = path === ':memory:' || path === '';
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    const sqlite = new BetterSqlite3(memory ? ':memory:' : path);
    // WAL lets readers proceed during the writer's transactions; NORMAL sync is durable across
    // process crashes (the WAL is fsynced at checkpoints), which is what a crashing server needs.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    return new SqliteStore(
      'sqlite',
      new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }),
    );
  }
}
