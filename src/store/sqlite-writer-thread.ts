/**
 * The SQLite writer thread. better-sqlite3 is synchronous: a batch of a few thousand rows, and
 * above all a WAL checkpoint (an fsync), would stall the event loop that relays messages. This
 * thread owns a second connection and does every write; the main thread's connection only reads.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { configure, sqliteWrites } from './sqlite-batch.js';
import type { WriterRequest, WriterResponse } from './writer-thread-protocol.js';
import type { SqliteWriterOptions } from './sqlite-store.js';
import { Pacer } from './pacer.js';
import { sqliteRetention } from './sqlite-retention.js';

const { path, nice, sliceMs, interrupt } = workerData as SqliteWriterOptions & {
  path: string;
  interrupt: SharedArrayBuffer;
};
/** Longest a statement waits for another connection's write lock before the batch fails. */
const BUSY_WAIT_MS = 5_000;
const stop = new Int32Array(interrupt);
lowerPriority(nice);
const db = configure(new BetterSqlite3(path));
// SQLite's own busy wait cannot be interrupted, and a thread ended inside it aborts the process
// (better-sqlite3 throws into a dying isolate): a lock is waited for here instead, in short
// sleeps that the thread's close cuts short (untilFree).
db.pragma('busy_timeout = 0');
// The records arrive in an order that satisfies the foreign keys (a room before its members, a
// device before its connections); checking them costs parent lookups on every row of connections
// and room queries, and a violation would only mean refusing a record we must keep. The schema
// still declares them (messages have none: migration 0003), and MySQL/PostgreSQL enforce them.
db.pragma('foreign_keys = OFF');
const pacer = sliceMs > 0 ? new Pacer(sliceMs) : undefined;
const writes = sqliteWrites(db, pacer?.pace);
const retention = sqliteRetention(db);
const port = parentPort!;

port.on('message', (req: WriterRequest) => {
  let res: WriterResponse;
  try {
    switch (req.op) {
      case 'write': {
        const conflicts = untilFree(() => {
          pacer?.start();
          return writes.writeAll(req);
        });
        res = { id: req.id, ok: true, value: req.count, conflicts };
        break;
      }
      case 'insertRoom':
        res = {
          id: req.id,
          ok: true,
          value: untilFree(() => writes.insertRoom(req.roomId, req.createdAt, req.seqReserved)) ? 1 : 0,
        };
        break;
      case 'closeOpenConnections':
        res = { id: req.id, ok: true, value: untilFree(() => writes.closeOpenConnections(req.at)) };
        break;
      case 'retention': {
        // Between two batches, like a batch: each statement is short (a limited delete).
        const { value, rooms } = untilFree(() => retention(req));
        res = { id: req.id, ok: true, value, ...(rooms && { rooms }) };
        break;
      }
      case 'ready':
        res = { id: req.id, ok: true, value: 0 };
        break;
      case 'close':
        db.close();
        port.postMessage({ id: req.id, ok: true, value: 0 } satisfies WriterResponse);
        port.close();
        return;
    }
  } catch (err) {
    res = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(res);
});

/**
 * Runs `work` (a transaction), again while another connection holds the write lock, for up to
 * BUSY_WAIT_MS; then, or once the thread is closing, the SQLITE_BUSY error stands (the batch
 * fails and the record writer retries it, or spools it at shutdown).
 */
function untilFree<T>(work: () => T): T {
  const deadline = Date.now() + BUSY_WAIT_MS;
  for (;;) {
    try {
      return work();
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? '');
      if (!code.startsWith('SQLITE_BUSY') || Date.now() >= deadline || Atomics.load(stop, 0) === 1) throw err;
      Atomics.wait(stop, 0, 0, 5);
    }
  }
}

/**
 * Lets the relay go first: on a busy machine a batch (milliseconds of CPU) would otherwise
 * compete with the event loop and the clients for the cores, and show as latency spikes. Linux
 * keeps a nice value per thread; /proc/thread-self names this thread's id. Elsewhere, or if the
 * system refuses, the thread simply keeps the normal priority.
 */
function lowerPriority(value: number): void {
  if (!value) return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (tid > 0) setPriority(tid, value);
  } catch {
    // not Linux, or not allowed: normal priority
  }
}
