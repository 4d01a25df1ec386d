/** The embedded default: SQLite through better-sqlite3, in WAL mode. */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.js';
import { SqlStore } from './sql-store.js';
import type { RecordEntry } from './store.js';

export class SqliteStore extends SqlStore {
  /** One transaction over a batch; prepared by migrate(), once the tables exist. */
  private writeAll: ((entries: readonly RecordEntry[]) => void) | undefined;

  private constructor(private readonly sqlite: BetterSqlite3.Database) {
    super('sqlite', new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }));
  }

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
    return new SqliteStore(sqlite);
  }

  override async migrate(): Promise<string[]> {
    const applied = await super.migrate();
    const statements = prepare(this.sqlite);
    this.writeAll = this.sqlite.transaction((entries: readonly RecordEntry[]) => {
      for (const e of entries) writeEntry(statements, e);
    });
    return applied;
  }

  /**
   * The batch in one transaction through prepared statements: better-sqlite3 runs them
   * synchronously, ~4 µs a row, several times faster than building SQL per batch.
   */
  override async write(entries: readonly RecordEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (!this.writeAll) throw new Error('SqliteStore.write before migrate()');
    this.writeAll(entries);
  }
}

function prepare(db: BetterSqlite3.Database) {
  return {
    device: db.prepare(
      `insert into devices (device_id, first_connected_at, last_connected_at, last_room_id, last_identity)
       values (?, ?, ?, ?, ?)
       on conflict (device_id) do update set last_connected_at = excluded.last_connected_at,
         last_room_id = excluded.last_room_id, last_identity = excluded.last_identity`,
    ),
    connectionOpen: db.prepare(
      `insert into connections (id, device_id, room_id, identity, connected_at, disconnected_at, client_ip)
       values (?, ?, ?, ?, ?, null, ?)`,
    ),
    connectionClose: db.prepare(`update connections set disconnected_at = ? where id = ?`),
    message: db.prepare(
      `insert into messages (from_device_id, to_device_id, room_id, message_content, sent_at, seq)
       values (?, ?, ?, ?, ?, ?)`,
    ),
    roomQuery: db.prepare(`insert into room_queries (device_id, room_id, queried_at) values (?, ?, ?)`),
  };
}

function writeEntry(s: ReturnType<typeof prepare>, e: RecordEntry): void {
  switch (e.kind) {
    case 'message':
      s.message.run(e.fromDeviceId, e.toDeviceId, e.roomId, e.content, e.sentAt, e.seq);
      return;
    case 'device':
      s.device.run(e.deviceId, e.at, e.at, e.roomId, e.identity);
      return;
    case 'connection_open':
      s.connectionOpen.run(e.id, e.deviceId, e.roomId, e.identity, e.at, e.clientIp);
      return;
    case 'connection_close':
      s.connectionClose.run(e.at, e.id);
      return;
    case 'room_query':
      s.roomQuery.run(e.deviceId, e.roomId, e.at);
      return;
  }
}
