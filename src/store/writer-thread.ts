/**
 * A store's writer thread, seen from the main thread. Record batches are handed to it in chunks
 * (the flat form of writer-thread-protocol.ts) and it answers once each is committed, so that a
 * batch's statements, the driver's work and the database's answers never wait for the event
 * loop's turns nor take them. SQLite's thread writes through its own better-sqlite3 connection
 * (sqlite-writer-thread.ts); MySQL's and PostgreSQL's run the store's batched INSERTs on a pool
 * of their own (sql-writer-thread.ts).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { RecordEntry } from './store.js';
import { encodeRecords, type WriterRequest, type WriterResponse } from './writer-thread-protocol.js';

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
  ? R extends { id: number; op: 'insertRoom' | 'closeOpenConnections' | 'ready' | 'close' }
    ? Omit<R, 'id'>
    : never
  : never;

/** The thread's script, beside this file. */
export type WriterThreadScript = 'sqlite-writer-thread' | 'sql-writer-thread';

/** A writer thread, restarted on the next request if it ever dies. */
export class WriterThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly script: WriterThreadScript,
    /** What the thread is started with (its database, its settings). */
    private readonly workerData: unknown,
    private readonly resourceLimits: ResourceLimits = {},
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
    // Compiled: the script's .js beside this file. From source (tests, tsx) it is the .ts file,
    // and a thread does not inherit tsx's loader: register it first, then import the file.
    const ext = extname(fileURLToPath(import.meta.url));
    const file = new URL(`./${this.script}${ext}`, import.meta.url);
    const { workerData, resourceLimits } = this;
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
    worker.on('exit', (code) => fail(new Error(`${this.script} exited (${code})`)));
    worker.unref();
    return worker;
  }
}
