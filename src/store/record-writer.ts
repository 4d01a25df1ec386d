/**
 * The batching writer: records are appended on the hot path (an array push) and written off it,
 * many per transaction. While the database refuses a batch, the batch stays at the head of the
 * queue and is retried with backoff, so nothing accepted is dropped or reordered.
 */
import type { Logger } from 'pino';
import type { RecordEntry, Store } from './store.js';

export interface RecordWriterOptions {
  /** Most entries in one transaction. */
  batchSize: number;
  /** Longest an entry waits before a flush starts. */
  flushMs: number;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export class RecordWriter {
  private queue: RecordEntry[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private retryMs = RETRY_MIN_MS;
  private failing = false;
  private waiters: { ticket: number; resolve: () => void }[] = [];
  /** Entries ever appended / ever committed: a ticket is the appended count at some moment. */
  private appended = 0;
  private written = 0;

  constructor(
    private readonly store: Store,
    private readonly options: RecordWriterOptions,
    private readonly log: Logger,
  ) {}

  get pending(): number {
    return this.appended - this.written;
  }

  /** A ticket that `until` resolves once everything appended so far is committed. */
  get ticket(): number {
    return this.appended;
  }

  append(entry: RecordEntry): void {
    this.queue.push(entry);
    this.appended++;
    if (this.running || this.timer) return;
    if (this.queue.length - this.head >= this.options.batchSize || this.options.flushMs === 0) {
      this.timer = setTimeout(this.run, 0);
    } else {
      this.timer = setTimeout(this.run, this.options.flushMs);
    }
  }

  /** Resolves once every entry appended before `ticket` is committed. */
  until(ticket: number): Promise<void> {
    if (this.written >= ticket) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ ticket, resolve });
      this.kick();
    });
  }

  /** Resolves once everything appended so far is committed. */
  drain(): Promise<void> {
    return this.until(this.appended);
  }

  private kick(): void {
    if (this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(this.run, 0);
  }

  private readonly run = async (): Promise<void> => {
    this.timer = undefined;
    if (this.running) return;
    this.running = true;
    try {
      while (this.head < this.queue.length) {
        const end = Math.min(this.queue.length, this.head + this.options.batchSize);
        const batch = this.queue.slice(this.head, end);
        try {
          await this.store.write(batch);
        } catch (err) {
          if (!this.failing) {
            this.failing = true;
            this.log.error({ err, pending: this.pending }, 'record writer: database write failed; retrying');
          }
          await new Promise((r) => setTimeout(r, this.retryMs));
          this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
          continue;
        }
        if (this.failing) {
          this.failing = false;
          this.log.info({ pending: this.pending }, 'record writer: database writes resumed');
        }
        this.retryMs = RETRY_MIN_MS;
        this.head = end;
        this.written += batch.length;
        // Compact now and then rather than shifting on every batch.
        if (this.head > 4096 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        this.wake();
      }
      this.queue = [];
      this.head = 0;
    } finally {
      this.running = false;
    }
    this.wake();
  };

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.written >= w.ticket) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}
