/**
 * The embedded default: SQLite through better-sqlite3, in WAL mode. The main thread's connection
 * reads (and migrates); a file database is written by a writer thread (sqlite-writer-thread.ts)
 * so that batches and checkpoints never stall the event loop. `:memory:` cannot be shared between
 * connections, so there the same statements run inline.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Config } from '../config/schema.js';
import type { Database, DevicesTable } from './schema.js';
import { SqlStore } from './sql-store.js';
import type {
  DeviceRow,
  RecordConflict,
  RecordEntry,
  RetainedTable,
  RoomRow,
  RoomSeq,
  Timestamp,
} from './store.js';
import { configure, sqliteWrites, type SqliteWrites } from './sqlite-batch.js';
import { WriterThread } from './writer-thread.js';
import { encodeEntries, type EncodedRecords } from './record-queue.js';

/** How the writer thread of a file database runs (--writer-nice, --writer-slice-ms). */
export interface SqliteWriterOptions {
  /** The thread's nice value. */
  nice: number;
  /** Work between two of its pauses within a batch, ms; 0: no pauses. */
  sliceMs: number;
}

const DEFAULT_WRITER: SqliteWriterOptions = { nice: 0, sliceMs: 0 };

/** The writer thread's options as the server's settings give them. */
export function sqliteWriterOptions(
  config: Pick<Config, 'writerNice' | 'writerSliceMs'>,
): SqliteWriterOptions {
  return { nice: config.writerNice, sliceMs: config.writerSliceMs };
}

export class SqliteStore extends SqlStore {
  /** One server process owns the SQLite file; its writer thread is the only other writer. */
  override readonly claimsRoomsByRead = true;
  private writes: SqliteWrites | undefined;
  private thread: WriterThread | undefined;
  /** The hello path's statements, prepared once: Kysely would build and prepare each query anew. */
  private reads: ReturnType<typeof prepareReads> | undefined;

  private constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly path: string | undefined,
    private readonly writer: SqliteWriterOptions,
  ) {
    super('sqlite', new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }));
  }

  /** `path` is a file path (its folder is created) or `:memory:` (written inline, no thread). */
  static open(path: string, writer: Partial<SqliteWriterOptions> = {}): SqliteStore {
    const memory = path === ':memory:' || path === '';
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    const sqlite = configure(new BetterSqlite3(memory ? ':memory:' : path));
    return new SqliteStore(sqlite, memory ? undefined : resolve(path), { ...DEFAULT_WRITER, ...writer });
  }

  override async migrate(): Promise<string[]> {
    const applied = await super.migrate();
    // Statements and the writer thread need the tables, so they come after the migrations.
    if (this.path) {
      this.thread = new WriterThread(
        'sqlite-writer-thread',
        { path: this.path, ...this.writer },
        // The thread's garbage is a batch's strings, which die as soon as they are inserted: a
        // small young generation suffices. Left to grow (the server's --max-semi-space-size
        // applies to every isolate): up to 64 MiB of new space this thread has no use for.
        { maxYoungGenerationSizeMb: 8 },
      );
      await this.thread.request({ op: 'ready' }); // started now, not on the first batch's clock
      // From now on this connection never waits for a lock and never checkpoints: both are the
      // writer thread's, off the event loop.
      this.sqlite.pragma('busy_timeout = 0');
      this.sqlite.pragma('wal_autocheckpoint = 0');
    } else {
      this.writes = sqliteWrites(this.sqlite);
    }
    this.reads = prepareReads(this.sqlite);
    return applied;
  }

  override async getRoom(roomId: string): Promise<RoomRow | undefined> {
    if (!this.reads) return super.getRoom(roomId);
    const row = this.reads.room.get(roomId) as { room_id: string; created_at: string } | undefined;
    return row && { roomId: row.room_id, createdAt: row.created_at };
  }

  override async getDevice(deviceId: string): Promise<DeviceRow | undefined> {
    if (!this.reads) return super.getDevice(deviceId);
    const row = this.reads.device.get(deviceId) as DevicesTable | undefined;
    return (
      row && {
        deviceId: row.device_id,
        firstConnectedAt: row.first_connected_at,
        lastConnectedAt: row.last_connected_at,
        lastRoomId: row.last_room_id,
        lastIdentity: row.last_identity,
      }
    );
  }

  override async roomSeq(roomId: string): Promise<RoomSeq> {
    if (!this.reads) return super.roomSeq(roomId);
    const row = this.reads.roomSeq.get(roomId, roomId) as
      { recorded: number | null; reserved: number | null } | undefined;
    return { recorded: Number(row?.recorded ?? 0), reserved: Number(row?.reserved ?? 0) };
  }

  override async write(entries: readonly RecordEntry[]): Promise<RecordConflict[]> {
    return this.writeEncoded(encodeEntries(entries));
  }

  override async writeEncoded(records: EncodedRecords): Promise<RecordConflict[]> {
    if (records.count === 0) return [];
    if (this.thread) return this.thread.write(records);
    return this.inline().writeAll(records);
  }

  override async insertRoom(roomId: string, createdAt: Timestamp, seqReserved = 0): Promise<boolean> {
    if (!this.thread) return this.inline().insertRoom(roomId, createdAt, seqReserved);
    // Off the hello path on SQLite (Store.claimsRoomsByRead), but kept quick for tools: insert it
    // here; while the thread holds the write lock this fails at once (busy timeout 0 on this
    // connection) and goes to the thread.
    try {
      return this.reads!.insertRoom.run(roomId, createdAt, seqReserved).changes === 1;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      return (await this.thread.request({ op: 'insertRoom', roomId, createdAt, seqReserved })) === 1;
    }
  }

  override async closeOpenConnections(at: Timestamp): Promise<number> {
    if (this.thread) return this.thread.request({ op: 'closeOpenConnections', at });
    return this.inline().closeOpenConnections(at);
  }

  // Retention runs on the writer thread of a file database, between batches: on this connection
  // its deletes would wait for no lock (busy timeout 0) and would stall the event loop.
  override async deleteOlderThan(table: RetainedTable, cutoff: Timestamp, limit: number): Promise<number> {
    if (!this.thread) return super.deleteOlderThan(table, cutoff, limit);
    return this.thread.request({ op: 'retention', call: 'deleteOld', table, cutoff, roomId: '', limit });
  }

  override async countOlderThan(table: RetainedTable, cutoff: Timestamp): Promise<number> {
    if (!this.thread) return super.countOlderThan(table, cutoff);
    return this.thread.request({ op: 'retention', call: 'countOld', table, cutoff, roomId: '', limit: 0 });
  }

  override async idleRooms(cutoff: Timestamp, afterRoomId: string, limit: number): Promise<string[]> {
    if (!this.thread) return super.idleRooms(cutoff, afterRoomId, limit);
    const answer = await this.thread.ask({
      op: 'retention',
      call: 'idleRooms',
      table: 'messages',
      cutoff,
      roomId: afterRoomId,
      limit,
    });
    return answer.rooms ?? [];
  }

  override async deleteRoomMessages(roomId: string, limit: number): Promise<number> {
    if (!this.thread) return super.deleteRoomMessages(roomId, limit);
    return this.thread.request({
      op: 'retention',
      call: 'deleteRoomMessages',
      table: 'messages',
      cutoff: '',
      roomId,
      limit,
    });
  }

  override async forgetRoom(roomId: string, cutoff: Timestamp): Promise<boolean> {
    if (!this.thread) return super.forgetRoom(roomId, cutoff);
    const forgotten = await this.thread.request({
      op: 'retention',
      call: 'forgetRoom',
      table: 'messages',
      cutoff,
      roomId,
      limit: 0,
    });
    return forgotten === 1;
  }

  override async close(): Promise<void> {
    await this.thread?.close();
    await super.close();
  }

  private inline(): SqliteWrites {
    if (!this.writes) throw new Error('SqliteStore used before migrate()');
    return this.writes;
  }
}

function prepareReads(db: BetterSqlite3.Database) {
  return {
    room: db.prepare('select room_id, created_at from rooms where room_id = ?'),
    device: db.prepare(
      'select device_id, first_connected_at, last_connected_at, last_room_id, last_identity from devices where device_id = ?',
    ),
    roomSeq: db.prepare(
      'select (select max(seq) from messages where room_id = ?) as recorded, (select seq_reserved from rooms where room_id = ?) as reserved',
    ),
    insertRoom: db.prepare(
      'insert into rooms (room_id, created_at, seq_reserved) values (?, ?, ?) on conflict (room_id) do nothing',
    ),
  };
}
