/**
 * The embedded default: SQLite through better-sqlite3, in WAL mode. The main thread's connection
 * reads (and migrates); a file database is written by a writer thread (sqlite-writer-thread.ts)
 * so that batches and checkpoints never stall the event loop. `:memory:` cannot be shared between
 * connections, so there the same statements run inline.
 */
import { mkdirSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database, DevicesTable } from './schema.js';
import { SqlStore } from './sql-store.js';
import type { DeviceRow, RecordEntry, RoomRow, Timestamp } from './store.js';
import { configure, sqliteWrites, type SqliteWrites } from './sqlite-batch.js';
import { encodeRecords, type WriterRequest, type WriterResponse } from './sqlite-writer-protocol.js';

export class SqliteStore extends SqlStore {
  private writes: SqliteWrites | undefined;
  private thread: WriterThread | undefined;
  /** The hello path's statements, prepared once: Kysely would build and prepare each query anew. */
  private reads: ReturnType<typeof prepareReads> | undefined;

  private constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly path: string | undefined,
    private readonly writerNice: number,
  ) {
    super('sqlite', new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }));
  }

  /**
   * `path` is a file path (its folder is created) or `:memory:`. `writerNice` is the writer
   * thread's nice value (--writer-nice).
   */
  static open(path: string, writerNice = 0): SqliteStore {
    const memory = path === ':memory:' || path === '';
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    const sqlite = configure(new BetterSqlite3(memory ? ':memory:' : path));
    return new SqliteStore(sqlite, memory ? undefined : resolve(path), writerNice);
  }

  override async migrate(): Promise<string[]> {
    const applied = await super.migrate();
    // Statements and the writer thread need the tables, so they come after the migrations.
    if (this.path) {
      this.thread = new WriterThread(this.path, this.writerNice);
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

  override async lastSeq(roomId: string): Promise<number> {
    if (!this.reads) return super.lastSeq(roomId);
    return Number((this.reads.lastSeq.get(roomId) as { seq: number | null } | undefined)?.seq ?? 0);
  }

  override async write(entries: readonly RecordEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.thread) await this.thread.write(entries);
    else this.inline().writeAll(entries);
  }

  override async insertRoom(roomId: string, createdAt: Timestamp): Promise<boolean> {
    if (!this.thread) return this.inline().insertRoom(roomId, createdAt);
    // A new room is on the hello path: insert it here (tens of µs, no fsync in WAL mode) rather
    // than queue behind the writer thread's batches and checkpoints. While the thread holds the
    // write lock this fails at once (busy timeout 0 on this connection) and goes to the thread.
    try {
      return this.reads!.insertRoom.run(roomId, createdAt).changes === 1;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      return (await this.thread.request({ op: 'insertRoom', roomId, createdAt })) === 1;
    }
  }

  override async closeOpenConnections(at: Timestamp): Promise<number> {
    if (this.thread) return this.thread.request({ op: 'closeOpenConnections', at });
    return this.inline().closeOpenConnections(at);
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
    lastSeq: db.prepare('select max(seq) as seq from messages where room_id = ?'),
    insertRoom: db.prepare(
      'insert into rooms (room_id, created_at) values (?, ?) on conflict (room_id) do nothing',
    ),
  };
}

/**
 * Records per chunk of a batch sent to the writer thread. Copying a chunk this size blocks the
 * event loop for about 0.1 ms; a whole 5000-record batch of objects blocked it for 2-3 ms, which
 * showed as the p99 latency of every message in flight at that moment.
 */
const WRITE_CHUNK = 500;
/**
 * Event-loop time one turn may spend handing chunks to the thread: at least HANDOFF_MIN_MS, and
 * up to HANDOFF_SHARE of the time the loop took since the last slice. A fixed 0.5 ms let one or
 * two chunks through per turn, and a busy relay's turns last 20-50 ms (more right after reading
 * resumes): measured at 40,000 msg/s, the thread waited ~1 s for each 20,000-record batch that it
 * inserted in ~0.15 s, so the record rate, not the relay, capped the server (25,000 msg/s with
 * reading paused and resumed every ~2 s). The total hand-off work is the same either way (about
 * 0.5 µs a record); the share only lets it keep up with long turns.
 */
const HANDOFF_MIN_MS = 0.5;
const HANDOFF_SHARE = 0.3;

type Pending = { resolve: (value: number) => void; reject: (err: Error) => void };
type Request = WriterRequest extends infer R
  ? R extends { id: number; op: 'insertRoom' | 'closeOpenConnections' | 'close' }
    ? Omit<R, 'id'>
    : never
  : never;

/** The writer thread, restarted on the next request if it ever dies. */
class WriterThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly path: string,
    private readonly nice: number,
  ) {}

  request(req: Request): Promise<number> {
    const worker = (this.worker ??= this.spawn());
    const { id, answer } = this.expect(worker);
    worker.postMessage({ ...req, id } as WriterRequest);
    return answer;
  }

  /**
   * Sends a batch in chunks of WRITE_CHUNK records, as many per event-loop turn as its budget
   * allows, and resolves when the thread has committed them all in one transaction.
   */
  async write(entries: readonly RecordEntry[]): Promise<number> {
    const worker = (this.worker ??= this.spawn());
    const { id, answer } = this.expect(worker);
    let from = 0;
    let turnStart = performance.now();
    let budget = HANDOFF_MIN_MS;
    while (entries.length - from > WRITE_CHUNK) {
      const records = encodeRecords(entries, from, from + WRITE_CHUNK, []);
      worker.postMessage({ op: 'stage', id, records } satisfies WriterRequest);
      from += WRITE_CHUNK;
      const now = performance.now();
      if (now - turnStart < budget) continue;
      // Yield, and let the next turn spend its share of the time the loop took meanwhile.
      await new Promise(setImmediate);
      if (this.worker !== worker) return answer; // the thread died: `answer` is rejected
      turnStart = performance.now();
      budget = Math.max(HANDOFF_MIN_MS, (turnStart - now) * HANDOFF_SHARE);
    }
    const records = encodeRecords(entries, from, entries.length, []);
    worker.postMessage({ op: 'write', id, records, count: entries.length } satisfies WriterRequest);
    return answer;
  }

  /** Registers a request id whose answer the thread owes. */
  private expect(worker: Worker): { id: number; answer: Promise<number> } {
    const id = this.nextId++;
    // Referenced only while it owes an answer: an idle writer does not keep the process alive.
    if (this.pending.size === 0) worker.ref();
    const answer = new Promise<number>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // Handled here too, so a rejection while a batch is still being sent is never "unhandled".
    answer.catch(() => undefined);
    return { id, answer };
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    // The thread closes its connection (a clean WAL checkpoint), then it is stopped.
    await this.request({ op: 'close' }).catch(() => undefined);
    this.worker = undefined;
    await worker.terminate();
  }

  private spawn(): Worker {
    // Compiled: sqlite-writer-thread.js beside this file. From source (tests, tsx) it is the .ts
    // file, and a thread does not inherit tsx's loader: register it first, then import the file.
    const ext = extname(fileURLToPath(import.meta.url));
    const file = new URL(`./sqlite-writer-thread${ext}`, import.meta.url);
    const workerData = { path: this.path, nice: this.nice };
    // The thread's garbage is chunks that die as soon as they are inserted: a small young
    // generation suffices. Left to grow (the server's --max-semi-space-size applies to every
    // isolate): up to 64 MiB of new space this thread has no use for.
    const resourceLimits = { maxYoungGenerationSizeMb: 8 };
    const worker =
      ext === '.ts'
        ? new Worker(
            `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
              `.then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`,
            { eval: true, workerData, resourceLimits },
          )
        : new Worker(file, { workerData, resourceLimits });
    worker.on('message', (res: WriterResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (this.pending.size === 0) worker.unref();
      if (res.ok) p.resolve(res.value);
      else p.reject(new Error(res.error));
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`SQLite writer thread exited (${code})`)));
    worker.unref();
    return worker;
  }
}
