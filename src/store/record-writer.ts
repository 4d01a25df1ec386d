/**
 * The batching writer: records are appended on the hot path (encoded into the record queue's
 * shared buffers, record-queue.ts) and written off it, many per transaction, in the order they
 * were made.
 *
 * Durable, for an ack, means committed in the database or fsynced in the spool (spool.ts).
 * `whenDurable(ticket)` calls back once every record appended before the ticket is one or the
 * other: one commit, or one spool fsync, serves a whole batch (group commit).
 *
 * While the database refuses a batch, the batch is retried with backoff, and every record made
 * meanwhile goes to the spool at the next flush (not only once memory is full): what a crash can
 * still lose is at most one flush interval of records, none of them acknowledged. When the
 * database answers again the spool is written first, in order, then memory.
 *
 * When the spool refuses too (disk full, folder not writable), the writer is `stuck`: the server
 * stops taking messages (reading paused, messages refused `unavailable`) until either comes back.
 * Records taken for the spool stay in memory until the spool holds them.
 *
 * While the database answers but more slowly than records come (a burst past what it can write),
 * the queue reaching `queueMax` does not spill: it sets `behind`, and the server stops reading
 * from clients (backpressure) until the queue is down to half. A queue past HARD_QUEUE_FACTOR ×
 * queueMax spills anyway: memory stays bounded whatever the clients do.
 *
 * Order is kept by one invariant: the batch in flight is older than everything in the spool,
 * which is older than the batches held back from a failed spill, which are older than the queue.
 * A batch in flight that came from memory goes first into any spill, as a block of its own.
 */
import type { Logger } from 'pino';
import type { RecordConflict, RecordEntry, Store } from './store.js';
import { RecordQueue, type EncodedRecords } from './record-queue.js';
import { ServerIds } from './server-ids.js';
import { readLegacySpool, Spool } from './spool.js';
import { unlinkSync } from 'node:fs';

export interface RecordWriterOptions {
  /** Most entries in one transaction. */
  batchSize: number;
  /** Longest an entry waits before a flush starts. */
  flushMs: number;
  /** Most entries waiting in memory while the database answers; past it reading pauses. */
  queueMax?: number;
  /** The spool file; without one, entries wait in memory however many there are. */
  spoolPath?: string;
  /** A JSON-lines spool of an earlier version, written (then deleted) before the spool. */
  legacySpoolPath?: string;
  /**
   * Longest a batch write may go unanswered before it counts as failed (the outage rules then
   * apply: clients are read again, records spool). Without it, a write that hangs forever (a
   * lock held by another session, a server that stopped answering mid-statement) would keep
   * reading paused forever once the queue is full.
   */
  writeTimeoutMs?: number;
  /** Cluster mode: this node's id slot, so that room_query ids stay unique across nodes (ServerIds). */
  idSlot?: number;
}

/** What a batch write that outlived `writeTimeoutMs` fails with. */
export class WriteTimeoutError extends Error {
  override name = 'WriteTimeoutError';
}

/** What `until` rejects with while the database is failing: the caller needs a fresh database. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** What the writer's state is, as /readyz and the status report say it. */
export type WriterState = 'ok' | 'slow' | 'behind' | 'failing' | 'stuck';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;
/** Past this many times queueMax the queue spills even while the database answers. */
const HARD_QUEUE_FACTOR = 4;
/** How often a spool that refused an append is tried again. */
const SPOOL_RETRY_MS = 1_000;
/**
 * A write unanswered this long makes the writer `slow` (not ready) before it times out: records
 * are no longer reaching the database (a held lock), whether or not the queue is full yet.
 */
const SLOW_WRITE_MS = 10_000;

interface Inflight {
  records: EncodedRecords;
  /** Taken from memory (its chunks go back to the queue once nothing reads them). */
  fromMemory: boolean;
  /** Blocks at the spool's front that hold these records (0: only in memory). */
  blocks: number;
  /** Records of spool blocks that failed their CRC (counted as gone once the batch commits). */
  corrupt: number;
  /** Being appended to the spool now, as the first block of a spill. */
  appending: boolean;
  /** Committed while its spool copy was being appended: the copy is dropped when that ends. */
  committed: boolean;
}

interface Waiter {
  ticket: number;
  resolve: () => void;
  /** Rejected (instead of waiting) while the database is failing. */
  reject: ((err: Error) => void) | undefined;
}

interface DurableWaiter {
  ticket: number;
  done: () => void;
}

export class RecordWriter {
  private readonly queue = new RecordQueue();
  /** Batches taken from memory for a spill the spool refused: older than the queue. */
  private held: EncodedRecords[] = [];
  private inflight: Inflight | undefined;
  private readonly spool: Spool | undefined;
  private spilling: Promise<void> | undefined;
  /** Set while the spool refuses appends (the error's text). */
  private spoolError: string | undefined;
  private lastSpillAttempt = 0;
  private readonly queueMax: number;
  private timer: NodeJS.Timeout | undefined;
  private spillTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private retryMs = RETRY_MIN_MS;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private failing = false;
  private lastError = '';
  private closed = false;
  private waiters: Waiter[] = [];
  private durableWaiters: DurableWaiter[] = [];
  private durableHead = 0;
  /** Durable waiters that want the records written now rather than at the next flush. */
  private urgent = 0;
  private failureListeners: (() => void)[] = [];
  /** Set while the database answers but the memory queue reached queueMax (see the header). */
  private isBehind = false;
  private stateListeners: ((state: WriterState) => void)[] = [];
  private batchListeners: ((records: EncodedRecords, seconds: number) => void)[] = [];
  private lastState: WriterState = 'ok';
  /** When the write in flight began (Date.now()), while one is. */
  private writeStartedAt: number | undefined;
  /** Entries ever appended / ever committed: a ticket is the appended count at some moment. */
  private appended = 0;
  /** When the last batch was taken from memory (Date.now()): the next waits flushMs from it. */
  private takenAt = 0;
  private written = 0;
  /** Records the database held in another form (see RecordConflict), since start. */
  conflicts = 0;
  /**
   * Ids for room_query records: server-assigned when appended, so that a rewrite inserts nothing
   * twice.
   */
  readonly roomQueryIds: ServerIds;

  constructor(
    private readonly store: Store,
    private readonly options: RecordWriterOptions,
    private readonly log: Logger,
  ) {
    this.roomQueryIds = new ServerIds(0, options.idSlot);
    this.queueMax = Math.max(1, options.queueMax ?? Infinity);
    if (options.spoolPath) {
      this.spool = new Spool(options.spoolPath);
      // Records an earlier process spooled count as appended before anything of ours.
      this.appended = this.spool.count;
    }
  }

  /** Entries not yet committed (in flight, in memory and in the spool). */
  get pending(): number {
    return this.appended - this.written;
  }

  /** Entries waiting in the spool file. */
  get spooled(): number {
    return this.spool?.count ?? 0;
  }

  /** The spool file, if there is one. */
  get spoolPath(): string | undefined {
    return this.spool?.path;
  }

  /** Whether the last write failed (the database is away). */
  get databaseFailing(): boolean {
    return this.failing;
  }

  /**
   * ok; slow (a write unanswered for SLOW_WRITE_MS); behind (the database is slower than the
   * traffic: reading paused); failing (writes fail or timed out, records go to the spool); stuck
   * (writes fail and the spool refuses too: nothing new can be kept, so no message is taken).
   */
  get state(): WriterState {
    if (this.stuck) return 'stuck';
    if (this.failing) return 'failing';
    if (this.isBehind) return 'behind';
    const started = this.writeStartedAt;
    return started !== undefined && Date.now() - started >= SLOW_WRITE_MS ? 'slow' : 'ok';
  }

  /** Why the state is not ok (the last database or spool error), for /readyz and logs. */
  get problem(): string | undefined {
    if (this.stuck) return `database: ${this.lastError}; spool: ${this.spoolError ?? 'none configured'}`;
    if (this.failing) return `database: ${this.lastError}`;
    return undefined;
  }

  /** Neither the database nor the spool takes records: new messages must be refused. */
  get stuck(): boolean {
    return this.failing && (!this.spool || this.spoolError !== undefined);
  }

  /** Whether the database is behind: the server should stop reading from clients meanwhile. */
  get behind(): boolean {
    return this.isBehind;
  }

  /** Called whenever `state` changes. */
  onState(listener: (state: WriterState) => void): void {
    this.stateListeners.push(listener);
  }

  /** Called after each batch commits, with its records and how long its write took (the metrics). */
  onBatchWritten(listener: (records: EncodedRecords, seconds: number) => void): void {
    this.batchListeners.push(listener);
  }

  /** A ticket that `until` resolves once everything appended so far is committed. */
  get ticket(): number {
    return this.appended;
  }

  /** Whether everything appended before `ticket` is committed. */
  committed(ticket: number): boolean {
    return this.written >= ticket;
  }

  /** Records committed or in the spool, counted from the first: the durable prefix. */
  private get durable(): number {
    return this.written + (this.spool?.count ?? 0);
  }

  /**
   * Calls `done` once every entry appended before `ticket` is durable (committed, or fsynced in
   * the spool); at the next flush, or, with `urgent`, as soon as it can be written.
   */
  whenDurable(ticket: number, done: () => void, urgent = false): void {
    if (this.durable >= ticket) return done();
    this.durableWaiters.push({ ticket, done: urgent ? this.urgentDone(done) : done });
    if (urgent) {
      this.urgent++;
      if (this.failing) this.spillSoon(0);
      else this.kick();
    }
  }

  private urgentDone(done: () => void): () => void {
    return () => {
      this.urgent--;
      done();
    };
  }

  append(entry: RecordEntry): void {
    if (entry.kind === 'room_query' && entry.id === undefined) entry.id = this.roomQueryIds.next();
    this.queue.push(entry);
    this.appended++;
    this.afterAppend();
  }

  /** Bounds and flush timing, after each append. */
  private afterAppend(): void {
    if (this.queue.length >= this.queueMax) this.overQueueMax();
    if (this.running || this.timer) return;
    if (this.queue.length >= this.options.batchSize || this.options.flushMs === 0) {
      this.timer = setTimeout(this.run, 0);
    } else {
      this.timer = setTimeout(this.run, this.options.flushMs);
    }
  }

  /** append() of a message record, for the hot path: see RecordQueue.pushMessage. */
  appendMessage(
    roomId: string,
    seq: number,
    fromDeviceId: string,
    fromIdentity: string,
    toDeviceId: string | null,
    content: Buffer,
    sentAt: string,
  ): void {
    this.queue.pushMessage(roomId, seq, fromDeviceId, fromIdentity, toDeviceId, content, sentAt);
    this.appended++;
    this.afterAppend();
  }

  /**
   * Resolves once every entry appended before `ticket` is committed. While the database is
   * failing it rejects with DatabaseUnavailableError instead of waiting for the outage to end:
   * the caller wants to read a database that is at least this fresh, and cannot now.
   */
  until(ticket: number): Promise<void> {
    if (this.written >= ticket) return Promise.resolve();
    if (this.failing) return Promise.reject(new DatabaseUnavailableError('the database is unavailable'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ ticket, resolve, reject });
      this.kick();
    });
  }

  /** Resolves once everything appended so far is committed, however long that takes. */
  drain(): Promise<void> {
    const ticket = this.appended;
    if (this.written >= ticket) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ ticket, resolve, reject: undefined });
      this.kick();
    });
  }

  /**
   * Writes a spool left by an earlier process (the server calls this before it listens).
   * Returns how many records it held.
   */
  async replaySpool(): Promise<number> {
    const legacy = this.options.legacySpoolPath;
    const old = legacy ? readLegacySpool(legacy) : undefined;
    if (old) {
      this.log.info({ records: old.length, spool: legacy }, 'record writer: replaying a JSON-lines spool');
      for (let i = 0; i < old.length; i += this.options.batchSize) {
        await this.store.write(old.slice(i, i + this.options.batchSize));
      }
      unlinkSync(legacy!);
    }
    const count = this.spool?.count ?? 0;
    if (count === 0) return 0;
    this.log.info({ records: count, spool: this.spool!.path }, 'record writer: replaying the spool');
    await this.drain();
    this.log.info({ records: count }, 'record writer: spool replayed');
    return count;
  }

  /**
   * For shutdown: writes what is pending until `deadline` (Date.now() ms) less the time kept for
   * spooling, or until a write fails; then stops, and appends to the spool whatever the
   * database has not taken (a write still in flight included: written again at the next start,
   * which inserts nothing twice). Returns what was written, spooled, and lost (in neither place:
   * only when the spool refuses too).
   */
  async close(
    deadline: number,
  ): Promise<{ written: number; spooled: number; lost: number; timedOut: boolean }> {
    const before = this.written;
    const spoolMargin = Math.min(2_000, Math.max(0, deadline - Date.now()) / 4);
    let timedOut = false;
    if (this.pending > 0 && !this.failing) {
      this.kick();
      timedOut = !(await this.within(Promise.race([this.drain(), this.outage()]), deadline - spoolMargin));
    }
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.spillTimer);
    this.wakeFromSleep();
    if (this.running && !(await this.within(this.running, deadline - spoolMargin))) timedOut = true;
    if (this.pending > 0 && this.spool) {
      if (this.spilling) await this.within(this.spilling, deadline);
      if (!this.spilling) {
        this.spill(true);
        await this.within(this.spilling ?? Promise.resolve(), deadline);
      }
    }
    const spooled = this.spool?.count ?? 0;
    // In neither place (a spill cut off by the deadline included: it was not fsynced).
    const lost = Math.max(0, this.pending - spooled);
    this.settleDurable();
    if (!this.spilling) this.spool?.close();
    return { written: this.written - before, spooled, lost, timedOut };
  }

  /** Whether `promise` settled before `deadline`. */
  private async within(promise: Promise<unknown>, deadline: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(timer);
    return settled;
  }

  /** Resolves when a write fails (at once if the database is failing now). */
  private outage(): Promise<void> {
    if (this.failing) return Promise.resolve();
    return new Promise((resolve) => this.failureListeners.push(resolve));
  }

  /** Starts a write run in `delayMs` (at once by default), unless one is running. */
  private kick(delayMs = 0): void {
    if (this.running || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(this.run, delayMs);
  }

  /** The memory queue is at queueMax: backpressure while the database answers, else the spool. */
  private overQueueMax(): void {
    if (this.closed) return;
    if (this.failing) return this.spillSoon(0);
    if (this.queue.length < this.queueMax * HARD_QUEUE_FACTOR || !this.spool) {
      this.setBehind(true);
      return;
    }
    this.spillSoon(0);
  }

  private setBehind(behind: boolean): void {
    if (this.isBehind === behind) return;
    this.isBehind = behind;
    this.stateChanged();
  }

  /** Tells the listeners when the state changed. */
  private stateChanged(): void {
    const state = this.state === 'slow' ? 'ok' : this.state; // slow is read, never announced
    if (state === this.lastState) return;
    this.lastState = state;
    for (const listener of this.stateListeners) listener(state);
  }

  /** Spills in `delayMs` unless a spill is running or due sooner. */
  private spillSoon(delayMs: number): void {
    if (!this.spool || this.closed || this.spilling) return;
    if (this.spoolError !== undefined) {
      delayMs = Math.max(delayMs, this.lastSpillAttempt + SPOOL_RETRY_MS - Date.now());
    }
    clearTimeout(this.spillTimer);
    this.spillTimer = setTimeout(() => {
      this.spillTimer = undefined;
      this.spill();
      // Nothing to spill now: while the database fails, look again at the next flush.
      if (!this.spilling && this.failing) this.spillSoon(this.options.flushMs);
    }, delayMs);
  }

  /** Whether anything is only in memory (in flight from memory and not spooled, held, queued). */
  private get unspooled(): boolean {
    const f = this.inflight;
    return (
      this.queue.length > 0 ||
      this.held.length > 0 ||
      (f !== undefined && f.fromMemory && f.blocks === 0 && !f.committed)
    );
  }

  /**
   * Appends to the spool everything only in memory: the batch in flight first (if it came from
   * memory), as a block of its own, then the held batches and the queue. Records leave memory
   * only once the spool holds them; if it refuses, they are held, in order, for the next try.
   */
  private spill(final = false): void {
    const spool = this.spool;
    if (!spool || this.spilling || (this.closed && !final) || !this.unspooled) return;
    this.lastSpillAttempt = Date.now();
    const f = this.inflight;
    const first = f && f.fromMemory && f.blocks === 0 && !f.committed ? f : undefined;
    const held = this.held;
    this.held = [];
    const fromQueue = this.queue.take(this.queue.length);
    const batches = [...(first ? [first.records] : []), ...held, ...(fromQueue ? [fromQueue] : [])];
    if (first) first.appending = true;
    const records = batches.reduce((n, b) => n + b.count, 0);
    this.spilling = spool
      .append(batches)
      .then(
        () => {
          if (first) {
            first.appending = false;
            if (first.committed) {
              spool.commit(1); // written meanwhile: the copy is not needed
              this.queue.release(first.records);
            } else {
              first.blocks = 1;
            }
          }
          for (const b of held) this.queue.release(b);
          if (fromQueue) this.queue.release(fromQueue);
          if (this.spoolError !== undefined) {
            this.log.warn({ records, spool: spool.path }, 'record writer: the spool takes records again');
            this.spoolError = undefined;
          }
          if (this.isBehind && this.queue.length <= this.queueMax / 2) this.isBehind = false;
        },
        (err: unknown) => {
          if (first) {
            first.appending = false;
            if (first.committed) this.queue.release(first.records);
          }
          this.held = [...held, ...(fromQueue ? [fromQueue] : []), ...this.held];
          if (this.spoolError === undefined) {
            this.log.error(
              { err: errorText(err), records, spool: spool.path, pending: this.pending },
              'record writer: spool write failed; the records stay in memory',
            );
          }
          this.spoolError = errorText(err);
        },
      )
      .finally(() => {
        this.spilling = undefined;
        this.settleDurable();
        this.stateChanged();
        if (this.closed) return;
        // While the database fails, the next records follow at the next flush; a refusing spool
        // is tried again in a while.
        if (this.failing) this.spillSoon(this.options.flushMs);
        if (!this.running && (this.queue.length > 0 || this.held.length > 0)) this.kick();
      });
  }

  /** The next batch: the spool's front, else held batches, else memory. */
  private async take(): Promise<Inflight | undefined> {
    if (this.spool && this.spool.count > 0) {
      const front = await this.spool.readFront(this.options.batchSize);
      if (front) {
        return {
          records: front.records,
          fromMemory: false,
          blocks: front.blocks,
          corrupt: front.corrupt,
          appending: false,
          committed: false,
        };
      }
    }
    const held = this.held.shift();
    const records = held ?? this.queue.take(this.options.batchSize);
    if (!records) return undefined;
    if (!held) this.takenAt = Date.now();
    return { records, fromMemory: true, blocks: 0, corrupt: 0, appending: false, committed: false };
  }

  private readonly run = (): void => {
    this.timer = undefined;
    if (this.running || this.closed) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      this.wake();
      if (this.closed || (this.queue.length === 0 && this.held.length === 0 && this.spooled === 0)) return;
      // Entries appended while the last write was finishing: written at once if something needs
      // them now, else in the next batch, flushMs after the last one was taken (see loop).
      this.kick(this.writeNow() ? 0 : Math.max(0, this.takenAt + this.options.flushMs - Date.now()));
    });
  };

  /** Whether what waits should be written without waiting for the next flush. */
  private writeNow(): boolean {
    return (
      this.queue.length >= this.options.batchSize ||
      this.spooled > 0 ||
      this.held.length > 0 ||
      this.waiters.length > 0 ||
      this.urgent > 0 ||
      this.options.flushMs === 0
    );
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (!this.inflight) {
        // What a running spill took is older than what is left in memory.
        if (this.spilling) await this.spilling;
        if (this.closed) return;
        this.inflight = await this.take();
      }
      const batch = this.inflight;
      if (!batch) break;
      let conflicts: RecordConflict[];
      this.writeStartedAt = Date.now();
      const writeFrom = performance.now();
      try {
        conflicts = batch.records.count ? await this.timed(this.store.writeEncoded(batch.records)) : [];
      } catch (err) {
        this.writeStartedAt = undefined;
        if (this.closed) return;
        this.onFailure(err);
        await this.sleep(this.retryMs);
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
        if (this.spilling) await this.spilling;
        continue;
      }
      this.writeStartedAt = undefined;
      if (this.closed) return; // shutting down: close() spools it; a rewrite is harmless
      this.inflight = undefined;
      // Before the batch's bytes go back to the queue for reuse.
      const seconds = (performance.now() - writeFrom) / 1000;
      for (const listener of this.batchListeners) listener(batch.records, seconds);
      if (batch.blocks) this.spool!.commit(batch.blocks);
      if (batch.fromMemory) {
        if (batch.appending) batch.committed = true;
        else this.queue.release(batch.records);
      }
      this.written += batch.records.count + batch.corrupt;
      if (batch.corrupt) {
        this.log.error(
          { records: batch.corrupt, spool: this.spool?.path },
          'record writer: spool blocks failed their checksum and were skipped; these records are lost',
        );
      }
      if (conflicts.length) this.onConflicts(conflicts);
      this.onSuccess();
      if (this.isBehind && this.queue.length <= this.queueMax / 2) this.setBehind(false);
      this.wake();
      this.settleDurable();
      // The next batch waits for the flush interval unless something needs it now. Going on at
      // once with whatever came during the write made a train of small transactions after every
      // batch, each paying a whole commit (every room's dirty index page).
      if (!this.writeNow()) break;
    }
  }

  /**
   * The write, or a WriteTimeoutError once it has taken writeTimeoutMs. A write given up on may
   * still commit later; the batch is written again either way, which inserts nothing twice.
   */
  private timed<T>(write: Promise<T>): Promise<T> {
    const ms = this.options.writeTimeoutMs;
    if (!ms) return write;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new WriteTimeoutError(`the database did not answer a write within ${ms} ms`)),
        ms,
      );
    });
    write.catch(() => undefined); // a write given up on may still fail: nobody awaits it then
    return Promise.race([write, timeout]).finally(() => clearTimeout(timer));
  }

  /** Records the database held in another form: each is an error, never silently passed over. */
  private onConflicts(conflicts: RecordConflict[]): void {
    this.conflicts += conflicts.length;
    this.log.error(
      {
        conflicts: conflicts.length,
        first: conflicts.slice(0, 10).map((c) => `${c.kind} ${c.key}`),
        total: this.conflicts,
      },
      'record writer: rows already in the database with other contents (another server writing to this database?); the records were not written',
    );
  }

  private onFailure(err: unknown): void {
    this.lastError = errorText(err);
    if (this.failing) return;
    this.failing = true;
    // An outage is the spool's: clients are read again, and memory goes to the spool now.
    this.isBehind = false;
    // Logged once per outage, never per record.
    this.log.error(
      {
        err: this.lastError,
        timedOut: err instanceof WriteTimeoutError,
        pending: this.pending,
        spooled: this.spooled,
      },
      this.spool
        ? 'record writer: database write failed; records go to the spool, retrying with backoff'
        : 'record writer: database write failed; records wait in memory, retrying with backoff',
    );
    for (const listener of this.failureListeners) listener();
    this.failureListeners = [];
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.reject) w.reject(new DatabaseUnavailableError('the database is unavailable'));
      else still.push(w);
    }
    this.waiters = still;
    this.spillSoon(0);
    this.stateChanged();
  }

  private onSuccess(): void {
    this.retryMs = RETRY_MIN_MS;
    if (!this.failing) return;
    this.failing = false;
    clearTimeout(this.spillTimer);
    this.spillTimer = undefined;
    this.log.info({ pending: this.pending, spooled: this.spooled }, 'record writer: database writes resumed');
    this.stateChanged();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, ms);
      this.sleeping = { timer, wake: resolve };
    });
  }

  private wakeFromSleep(): void {
    if (!this.sleeping) return;
    clearTimeout(this.sleeping.timer);
    this.sleeping.wake();
    this.sleeping = undefined;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.written >= w.ticket) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Calls the durable waiters whose records are now committed or spooled (in ticket order). */
  private settleDurable(): void {
    const durable = this.durable;
    const list = this.durableWaiters;
    while (this.durableHead < list.length && list[this.durableHead]!.ticket <= durable) {
      list[this.durableHead++]!.done();
    }
    if (this.durableHead > 1024 && this.durableHead * 2 > list.length) {
      this.durableWaiters = list.slice(this.durableHead);
      this.durableHead = 0;
    }
  }
}

/** An error's message, never its connection details (no URL or password ever reaches a log). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    // Node's system errors already begin with their code ("ENOSPC: no space left on device").
    return code && !err.message.startsWith(String(code)) ? `${String(code)}: ${err.message}` : err.message;
  }
  return String(err);
}
