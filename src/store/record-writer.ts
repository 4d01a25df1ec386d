/**
 * The batching writer: records are appended on the hot path (encoded into the record queue's
 * shared buffers, record-queue.ts) and written off it, many per transaction, in the order they
 * were made.
 *
 * While the database refuses a batch, the batch is retried with backoff; records made meanwhile
 * wait in memory, up to `queueMax`, and past that are appended to the spool file on local disk
 * (spool.ts). When the database answers again the spool is written first, in order, then the
 * memory queue, and the spool file is deleted once empty. Every write is idempotent (see
 * SqlStore), so a batch whose outcome was unknown is simply written again: no record is lost and
 * none is written twice.
 *
 * While the database answers but more slowly than records come (a burst past what it can write),
 * the queue reaching `queueMax` does not spill: it sets `behind`, and the server stops reading
 * from clients (backpressure) until the queue is down to half. Spilling then would cost the event
 * loop more work per record (the spool is JSON on disk) exactly when it has none to spare. A queue
 * past HARD_QUEUE_FACTOR × queueMax spills anyway: memory stays bounded whatever the clients do.
 *
 * Order is kept by one invariant: the batch in flight is older than everything in the spool,
 * which is older than everything in memory. A batch in flight that came from memory is written to
 * the spool first whenever memory spills, so the spool can always be read from its front.
 */
import type { Logger } from 'pino';
import type { RecordEntry, Store } from './store.js';
import { decodeEntries, encodeEntries, RecordQueue, type EncodedRecords } from './record-queue.js';
import { ServerIds } from './server-ids.js';
import { Spool } from './spool.js';

export interface RecordWriterOptions {
  /** Most entries in one transaction. */
  batchSize: number;
  /** Longest an entry waits before a flush starts. */
  flushMs: number;
  /** Most entries waiting in memory; past it they go to the spool (when there is one). */
  queueMax?: number;
  /** The spool file; without one, entries wait in memory however many there are. */
  spoolPath?: string;
  /**
   * Longest a batch write may go unanswered before it counts as failed (the outage rules then
   * apply: clients are read again, records spool). Without it, a write that hangs forever (a
   * lock held by another session, a server that stopped answering mid-statement) would keep
   * reading paused forever once the queue is full.
   */
  writeTimeoutMs?: number;
}

/** What a batch write that outlived `writeTimeoutMs` fails with. */
export class WriteTimeoutError extends Error {
  override name = 'WriteTimeoutError';
}

/** What `until` rejects with while the database is failing: the caller needs a fresh database. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

const RETRY_MIN_MS = 100;
/** Past this many times queueMax the queue spills even while the database answers. */
const HARD_QUEUE_FACTOR = 4;
const RETRY_MAX_MS = 2_000;

interface Inflight {
  records: EncodedRecords;
  /** Set when the same entries are the spool's front lines (lines and bytes there). */
  spooled: { lines: number; bytes: number } | undefined;
}

interface Waiter {
  ticket: number;
  resolve: () => void;
  /** Rejected (instead of waiting) while the database is failing. */
  reject: ((err: Error) => void) | undefined;
}

export class RecordWriter {
  private readonly queue = new RecordQueue();
  private inflight: Inflight | undefined;
  private readonly spool: Spool | undefined;
  private readonly queueMax: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private retryMs = RETRY_MIN_MS;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private failing = false;
  private closed = false;
  private spilledThisOutage = false;
  private waiters: Waiter[] = [];
  private failureListeners: (() => void)[] = [];
  /** Set while the database answers but the memory queue reached queueMax (see the header). */
  private isBehind = false;
  private behindListeners: ((behind: boolean) => void)[] = [];
  /** Entries ever appended / ever committed: a ticket is the appended count at some moment. */
  private appended = 0;
  /** When the last batch was taken from memory (Date.now()): the next waits flushMs from it. */
  private takenAt = 0;
  private written = 0;
  /**
   * Ids for room_query records: server-assigned when appended, so that a rewrite inserts nothing
   * twice.
   */
  readonly roomQueryIds = new ServerIds(0);

  constructor(
    private readonly store: Store,
    private readonly options: RecordWriterOptions,
    private readonly log: Logger,
  ) {
    this.queueMax = options.spoolPath ? Math.max(1, options.queueMax ?? Infinity) : Infinity;
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

  /** What the status reports: writes failing (outage), behind (reading paused), or ok. */
  get state(): 'ok' | 'behind' | 'failing' {
    return this.failing ? 'failing' : this.isBehind ? 'behind' : 'ok';
  }

  /** Entries waiting in memory (not in flight, not spooled). */
  private get queued(): number {
    return this.queue.length;
  }

  /** Whether the database is behind: the server should stop reading from clients meanwhile. */
  get behind(): boolean {
    return this.isBehind;
  }

  /** Called with true when the database falls behind, with false when it has caught up. */
  onBehind(listener: (behind: boolean) => void): void {
    this.behindListeners.push(listener);
  }

  /** A ticket that `until` resolves once everything appended so far is committed. */
  get ticket(): number {
    return this.appended;
  }

  /** Whether everything appended before `ticket` is committed. */
  committed(ticket: number): boolean {
    return this.written >= ticket;
  }

  append(entry: RecordEntry): void {
    if (entry.kind === 'room_query' && entry.id === undefined) entry.id = this.roomQueryIds.next();
    this.queue.push(entry);
    this.appended++;
    this.afterAppend();
  }

  /** Bounds and flush timing, after each append. */
  private afterAppend(): void {
    if (this.queued >= this.queueMax) this.overQueueMax();
    if (this.running || this.timer) return;
    if (this.queued >= this.options.batchSize || this.options.flushMs === 0) {
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
    const count = this.spool?.count ?? 0;
    if (count === 0) return 0;
    this.log.info({ records: count, spool: this.spool!.path }, 'record writer: replaying the spool');
    await this.drain();
    this.log.info({ records: count }, 'record writer: spool replayed');
    return count;
  }

  /**
   * For shutdown: writes everything pending; if the database fails (or is failing), stops
   * retrying after at most `waitMs` for a write in flight and appends the rest to the spool, for
   * the next start to replay. Returns how many records were written and how many spooled.
   */
  async close(waitMs: number): Promise<{ written: number; spooled: number }> {
    const before = this.written;
    if (this.pending > 0) {
      await Promise.race([this.drain(), this.outage()]);
    }
    let spooled = 0;
    if (this.pending > 0 && this.spool) {
      this.closed = true;
      this.wakeFromSleep();
      clearTimeout(this.timer);
      this.timer = undefined;
      const running = this.running;
      if (running) {
        let cap: NodeJS.Timeout | undefined;
        await Promise.race([running, new Promise((r) => (cap = setTimeout(r, waitMs)))]);
        clearTimeout(cap);
      }
      if (this.pending > 0) {
        this.spill();
        spooled = this.spool.count;
      }
    }
    this.closed = true;
    this.spool?.close();
    return { written: this.written - before, spooled };
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
    const queued = this.queued;
    const canWait = !this.failing && this.behindListeners.length > 0 && !this.closed;
    if (canWait && queued < this.queueMax * HARD_QUEUE_FACTOR) {
      this.setBehind(true);
      return;
    }
    if (queued > this.queueMax) this.spill();
  }

  private setBehind(behind: boolean): void {
    if (this.isBehind === behind) return;
    this.isBehind = behind;
    for (const listener of this.behindListeners) listener(behind);
  }

  /** Moves the batch in flight (if it came from memory) and the memory queue to the spool. */
  private spill(): void {
    const spool = this.spool;
    if (!spool) return;
    if (!this.spilledThisOutage) {
      this.spilledThisOutage = true;
      this.log.warn(
        { pending: this.pending, spool: spool.path },
        'record writer: memory queue full; spooling records to disk',
      );
    }
    if (this.inflight && !this.inflight.spooled) {
      // The spool holds nothing unread now (it is read before memory), so these become its front.
      const entries = decodeEntries(this.inflight.records);
      this.inflight.spooled = { lines: entries.length, bytes: spool.append(entries) };
    }
    const rest = this.queue.take(this.queue.length);
    if (!rest) return;
    spool.append(decodeEntries(rest));
    this.queue.release(rest);
  }

  /** The next batch: the spool's front, else memory. */
  private take(): Inflight | undefined {
    if (this.spool && this.spool.unreadBytes > 0) {
      const batch = this.spool.read(this.options.batchSize);
      if (batch.lines > 0) {
        return {
          records: encodeEntries(batch.entries),
          spooled: { lines: batch.lines, bytes: batch.bytes },
        };
      }
    }
    const records = this.queue.take(this.options.batchSize);
    if (records) this.takenAt = Date.now();
    return records && { records, spooled: undefined };
  }

  private readonly run = (): void => {
    this.timer = undefined;
    if (this.running || this.closed) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      this.wake();
      if (this.closed || (this.queue.length === 0 && (this.spool?.unreadBytes ?? 0) === 0)) return;
      // Entries appended while the last write was finishing: written at once if something needs
      // them now, else in the next batch, flushMs after the last one was taken (see loop).
      this.kick(this.writeNow() ? 0 : Math.max(0, this.takenAt + this.options.flushMs - Date.now()));
    });
  };

  /** Whether what waits should be written without waiting for the next flush. */
  private writeNow(): boolean {
    return (
      this.queue.length >= this.options.batchSize ||
      (this.spool?.unreadBytes ?? 0) > 0 ||
      this.waiters.length > 0 ||
      this.options.flushMs === 0
    );
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      this.inflight ??= this.take();
      const batch = this.inflight;
      if (!batch) break;
      try {
        if (batch.records.count) await this.timed(this.store.writeEncoded(batch.records));
      } catch (err) {
        if (this.closed) return;
        this.onFailure(err);
        await this.sleep(this.retryMs);
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
        continue;
      }
      if (this.closed) return; // shutting down: the batch is in the spool as well; a rewrite is harmless
      this.onSuccess();
      this.inflight = undefined;
      this.queue.release(batch.records);
      const lines = batch.spooled ? batch.spooled.lines : batch.records.count;
      if (batch.spooled) this.spool!.commit(batch.spooled.lines, batch.spooled.bytes);
      this.written += lines;
      if (this.isBehind && this.queued <= this.queueMax / 2) this.setBehind(false);
      this.wake();
      // The next batch waits for the flush interval unless something needs it now. Going on at
      // once with whatever came during the write made a train of small transactions after every
      // batch, each paying a whole commit (every room's dirty index page): relay 500×2 at 17,000
      // msg/s on SQLite wrote a 3,400-row batch every ~210 ms, then 5-8 more of 100-600 rows.
      if (!this.writeNow()) break;
    }
  }

  /**
   * The write, or a WriteTimeoutError once it has taken writeTimeoutMs. A write given up on may
   * still commit later; the batch is written again either way, which inserts nothing twice.
   */
  private timed(write: Promise<void>): Promise<void> {
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

  private onFailure(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    // An outage is the spool's: clients are read again and the queue past queueMax spills.
    if (this.isBehind) {
      this.setBehind(false);
      if (this.queued > this.queueMax) this.spill();
    }
    // Logged once per outage, never per record.
    this.log.error(
      { err: errorText(err), pending: this.pending, spooled: this.spooled },
      'record writer: database write failed; records wait in memory and the spool, retrying with backoff',
    );
    for (const listener of this.failureListeners) listener();
    this.failureListeners = [];
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.reject) w.reject(new DatabaseUnavailableError('the database is unavailable'));
      else still.push(w);
    }
    this.waiters = still;
  }

  private onSuccess(): void {
    this.retryMs = RETRY_MIN_MS;
    if (!this.failing) return;
    this.failing = false;
    this.spilledThisOutage = false;
    this.log.info({ pending: this.pending, spooled: this.spooled }, 'record writer: database writes resumed');
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
}

/** An error's message, never its connection details (no URL or password ever reaches a log). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code ? `${String(code)}: ${err.message}` : err.message;
  }
  return String(err);
}
