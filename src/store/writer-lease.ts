/**
 * One writer per database. Without cluster mode, a server's seqs, ids and caches assume it is the
 * database's only writer, so it holds the database's writer lease (the `writer_lease` row) while
 * it runs, and a second server on the same database refuses to start.
 *
 * The lease is taken at start, before anything is written; renewed every third of its TTL; and
 * given up at a clean stop. A server takes it over when it has expired (its holder stopped
 * renewing: a crash on another host), or when its holder ran on this host and its process is
 * gone (a crash here: no need to wait for the expiry). A server that finds, at a renewal, that the
 * row is no longer its own has been replaced (its lease had expired) and stops.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { LeaseHolder, Store } from './store.js';

/** Attempts at a renewal or release that meets SQLite's write lock, within one tick. */
const BUSY_ATTEMPTS = 10;
const BUSY_RETRY_MS = 20;

/** Another live server holds the database. The message is the one line the command prints. */
export class LeaseHeldError extends Error {
  constructor(readonly holder: LeaseHolder) {
    super(
      `another room-manager holds this database (node ${holder.nodeId} on host ${holder.host}, ` +
        `pid ${holder.pid}, lease renewed until ${new Date(holder.expiresMs).toISOString()}): ` +
        'one database takes one server; to run several servers on one database, start every one ' +
        'of them in cluster mode (--redis-url, see docs/scaling.md)',
    );
    this.name = 'LeaseHeldError';
  }
}

/** A server's node id: its host, its process, and a random part (a process may run several). */
export function newNodeId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Whether a server on `databaseUrl` takes the lease: a throwaway in-memory database has no other user. */
export function needsWriterLease(databaseUrl: string): boolean {
  return !/^sqlite:(\/\/)?(:memory:)?$/.test(databaseUrl);
}

/**
 * Node ids of the servers of this process that hold a lease or are taking one: for a lease row
 * naming this process, whether its server still runs is known here, not from the pid.
 */
const runningHere = new Set<string>();

export class WriterLease {
  private timer: NodeJS.Timeout | undefined;
  private renewal: Promise<void> | undefined;
  private held = false;
  /** Renewals are failing (the database is away): logged once, when it starts and when it ends. */
  private failing = false;

  constructor(
    private readonly store: Store,
    readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    /** Called once if another server took the lease over; `holder` is its node id. */
    private readonly onLost: (holder: string) => void,
  ) {}

  /** Takes the lease and starts renewing it; throws LeaseHeldError when a live server holds it. */
  async acquire(): Promise<void> {
    runningHere.add(this.nodeId);
    const now = Date.now();
    const attempt = await this.store
      .tryAcquireLease(
        { nodeId: this.nodeId, host: hostname(), pid: process.pid },
        now,
        this.ttlMs,
        holderIsDead,
      )
      .catch((err: unknown) => {
        runningHere.delete(this.nodeId);
        throw err;
      });
    if (!attempt.acquired) {
      runningHere.delete(this.nodeId);
      throw new LeaseHeldError(attempt.holder);
    }
    const previous = attempt.previous;
    if (previous) {
      this.log.warn(
        {
          previous: previous.nodeId,
          reason: previous.expiresMs < now ? 'expired' : 'its process is gone',
        },
        'writer lease taken over',
      );
    }
    this.held = true;
    this.timer = setInterval(() => this.renew(), Math.floor(this.ttlMs / 3));
    this.timer.unref();
  }

  /** Stops renewing and deletes the row if it is still ours. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    runningHere.delete(this.nodeId);
    await this.renewal;
    if (!this.held) return;
    this.held = false;
    await whileBusy(() => this.store.releaseLease(this.nodeId));
  }

  private renew(): void {
    // A renewal still waiting for the database is not doubled.
    this.renewal ??= this.renewOnce().finally(() => (this.renewal = undefined));
  }

  private async renewOnce(): Promise<void> {
    let ours: boolean;
    try {
      ours = await whileBusy(() => this.store.renewLease(this.nodeId, Date.now(), this.ttlMs));
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.log.warn({ err: (err as Error).message }, 'writer lease renewal failed; retrying');
      }
      return;
    }
    if (this.failing) {
      this.failing = false;
      this.log.info('writer lease renewed again');
    }
    if (ours || !this.held) return;
    clearInterval(this.timer);
    this.held = false;
    runningHere.delete(this.nodeId);
    const holder = await this.store.readLease().catch(() => undefined);
    this.onLost(holder?.nodeId ?? '(none)');
  }
}

/** Whether the lease's holder ran on this host and is gone. On another host only expiry tells. */
function holderIsDead(holder: LeaseHolder): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return !runningHere.has(holder.nodeId);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs a lease statement again while SQLite reports busy: the main connection never waits for a
 * lock (sqlite-store.ts), and the writer thread may hold the write lock for a batch.
 */
async function whileBusy<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const code = String((err as { code?: unknown } | undefined)?.code ?? '');
      if (attempt >= BUSY_ATTEMPTS || !code.startsWith('SQLITE_BUSY')) throw err;
      await sleep(BUSY_RETRY_MS);
    }
  }
}
