/**
 * A store's writer thread, seen from the main thread. Record batches are handed to it as byte
 * ranges of shared memory (record-queue.ts) and it answers once each is committed, so that a
 * batch's statements, the driver's work and the database's answers never wait for the event
 * loop's turns nor take them. SQLite's thread writes through its own better-sqlite3 connection
 * (sqlite-writer-thread.ts); MySQL's and PostgreSQL's run the store's batched INSERTs on a pool
 * of their own (sql-writer-thread.ts).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { EncodedRecords } from './record-queue.js';
import type { WriterRequest, WriterResponse } from './writer-thread-protocol.js';
import type { RecordConflict } from './store.js';

type Answer = { value: number; conflicts?: RecordConflict[]; rooms?: string[] };
type Pending = {
  resolve: (res: Answer) => void;
  reject: (err: Error) => void;
};
type Request = WriterRequest extends infer R
  ? R extends { id: number; op: 'insertRoom' | 'closeOpenConnections' | 'retention' | 'ready' | 'close' }
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
  /**
   * Set to 1 at close: a thread waiting for a lock (SQLite's busy wait) gives up at once, so that
   * it is never ended inside a database call (better-sqlite3 then aborts the process).
   */
  private readonly interrupt = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    private readonly script: WriterThreadScript,
    /** What the thread is started with (its database, its settings). */
    private readonly workerData: unknown,
    private readonly resourceLimits: ResourceLimits = {},
  ) {}

  request(req: Request): Promise<number> {
    return this.ask(req).then((res) => res.value);
  }

  /** The same, with the whole answer (the room codes of a retention query among it). */
  ask(req: Request): Promise<Answer> {
    const worker = (this.worker ??= this.spawn());
    const { id, answer } = this.expect(worker);
    worker.postMessage({ ...req, id } as WriterRequest);
    return answer;
  }

  /**
   * Hands a batch over (no copy) and resolves when the thread has committed it, with the records
   * it found in the database in another form.
   */
  write(records: EncodedRecords): Promise<RecordConflict[]> {
    const worker = (this.worker ??= this.spawn());
    const { id, answer } = this.expect(worker);
    worker.postMessage({
      op: 'write',
      id,
      parts: records.parts,
      count: records.count,
    } satisfies WriterRequest);
    return answer.then((res) => res.conflicts ?? []);
  }

  /** Registers a request id whose answer the thread owes. */
  private expect(worker: Worker): { id: number; answer: Promise<Answer> } {
    const id = this.nextId++;
    // Referenced only while it owes an answer: an idle writer does not keep the process alive.
    if (this.pending.size === 0) worker.ref();
    const answer = new Promise<Answer>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    return { id, answer };
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    // The thread stops waiting for locks, closes its connection (a clean WAL checkpoint), then
    // it is stopped.
    Atomics.store(this.interrupt, 0, 1);
    Atomics.notify(this.interrupt, 0);
    await this.request({ op: 'close' }).catch(() => undefined);
    this.worker = undefined;
    await worker.terminate();
  }

  private spawn(): Worker {
    // Compiled: the script's .js beside this file. From source (tests, tsx) it is the .ts file,
    // and a thread does not inherit tsx's loader: register it first, then import the file.
    const ext = extname(fileURLToPath(import.meta.url));
    const file = new URL(`./${this.script}${ext}`, import.meta.url);
    const workerData = { ...(this.workerData as object), interrupt: this.interrupt.buffer };
    const { resourceLimits } = this;
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
      if (res.ok) p.resolve(res);
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
