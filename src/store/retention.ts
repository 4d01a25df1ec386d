/**
 * Retention (--retain-messages, --retain-room-queries, --retain-connections, --retain-rooms):
 * deletes rows older than their period, off the hot path. A pass runs soon after start and then
 * every minute; each table's old rows go in batches of a few thousand, each batch one short
 * statement, with a pause after each (PAUSE_FACTOR times as long as it took), so that the record
 * writer, which commits every few tens of ms on its own connection, never waits long for a lock
 * and the relay keeps most of the CPU. On SQLite the batches run on the writer thread itself,
 * between its record batches.
 *
 * Rooms: a room with no member here (RoomGuard) and no message, connection or room query for
 * the period is forgotten: its row and every row naming it are deleted, so its code no longer
 * joins. Its messages go too: a later room could be given the same code, and its seqs would
 * meet the old ones.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { RetainedTable, Store, Timestamp } from './store.js';

/** A retain-* setting per kind of row: how long it is kept, ms; undefined = forever. */
export interface RetentionPeriods {
  retainMessages: number | undefined;
  retainRoomQueries: number | undefined;
  retainConnections: number | undefined;
  retainRooms: number | undefined;
}

/**
 * The server's say in forgetting a room (store/ knows nothing of rooms in memory). `claim`
 * answers false for a room in use here; once it answers true, hellos naming the room find
 * nothing until `release`.
 */
export interface RoomGuard {
  claim(roomId: string): Promise<boolean>;
  release(roomId: string, forgotten: boolean): void;
}

/** What a pass deleted, or what a dry run found. */
export interface RetentionCounts {
  messages: number;
  room_queries: number;
  connections: number;
  rooms: number;
}

export interface RetentionOptions {
  /** Rows per delete statement. */
  batchRows: number;
  /** Time between the end of a pass and the next one. */
  intervalMs: number;
  /** Time from start to the first pass. */
  firstPassMs: number;
}

/**
 * A few thousand rows a statement: short next to the writer's flush interval, yet few enough
 * statements that a backlog of millions goes within minutes (docs/operations.md, Retention).
 */
export const DEFAULT_RETENTION: RetentionOptions = {
  batchRows: 2_000,
  intervalMs: 60_000,
  firstPassMs: 2_000,
};

/** Least pause between two batches: the writer's next commit gets in. */
const MIN_PAUSE_MS = 20;
/** Pause after a batch, in multiples of its time: retention keeps at most a third of a core busy. */
const PAUSE_FACTOR = 2;
/** Rooms read per idle-room query. */
const ROOMS_PER_READ = 200;

const TABLES: readonly { table: RetainedTable; setting: keyof RetentionPeriods }[] = [
  { table: 'messages', setting: 'retainMessages' },
  { table: 'room_queries', setting: 'retainRoomQueries' },
  { table: 'connections', setting: 'retainConnections' },
];

/** Whether any retain-* setting is given. */
export function retentionWanted(periods: RetentionPeriods): boolean {
  return TABLES.some((t) => periods[t.setting] !== undefined) || periods.retainRooms !== undefined;
}

/** The cutoff of a period: rows older than this go. */
export function cutoffOf(nowMs: number, periodMs: number): Timestamp {
  return new Date(nowMs - periodMs).toISOString();
}

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  /** Passes run one after another: the scheduled ones and runNow's. */
  private chain: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Rows deleted (rooms forgotten) since start. */
  readonly deleted: RetentionCounts = { messages: 0, room_queries: 0, connections: 0, rooms: 0 };

  constructor(
    private readonly store: Store,
    private readonly periods: RetentionPeriods,
    private readonly log: Logger,
    /** Without one (the prune command) no room is taken for in use. */
    private readonly rooms: RoomGuard | undefined,
    private readonly options: RetentionOptions = DEFAULT_RETENTION,
  ) {}

  start(): void {
    this.schedule(this.options.firstPassMs);
  }

  /** Ends after the statement in progress, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain;
  }

  /** A pass now, once the one in progress (if any) is over. */
  runNow(): Promise<RetentionCounts> {
    const pass = this.chain.then(() => this.pass());
    this.chain = pass.catch(() => undefined);
    return pass;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runNow()
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'retention pass failed; the next pass retries'),
        )
        .finally(() => this.schedule(this.options.intervalMs));
    }, ms);
    this.timer.unref();
  }

  /** One pass over every table with a period; returns what it deleted. */
  async pass(nowMs = Date.now()): Promise<RetentionCounts> {
    const started = Date.now();
    const done: RetentionCounts = { messages: 0, room_queries: 0, connections: 0, rooms: 0 };
    for (const { table, setting } of TABLES) {
      const period = this.periods[setting];
      if (period === undefined) continue;
      const cutoff = cutoffOf(nowMs, period);
      while (!this.stopped) {
        const t0 = Date.now();
        const n = await this.store.deleteOlderThan(table, cutoff, this.options.batchRows);
        done[table] += n;
        this.deleted[table] += n;
        if (n < this.options.batchRows) break;
        await this.pause(t0);
      }
    }
    if (this.periods.retainRooms !== undefined)
      await this.forgetRooms(cutoffOf(nowMs, this.periods.retainRooms), done);
    const total = done.messages + done.room_queries + done.connections + done.rooms;
    if (total > 0) this.log.info({ deleted: done, ms: Date.now() - started }, 'retention: old rows deleted');
    else this.log.debug('retention: nothing to delete');
    return done;
  }

  private async forgetRooms(cutoff: Timestamp, done: RetentionCounts): Promise<void> {
    let after = '';
    while (!this.stopped) {
      const ids = await this.store.idleRooms(cutoff, after, ROOMS_PER_READ);
      for (const roomId of ids) {
        if (this.stopped) return;
        if (this.rooms && !(await this.rooms.claim(roomId))) continue;
        let forgotten = false;
        try {
          // Its messages first, in batches (the room's own transaction then has few left).
          for (;;) {
            const t0 = Date.now();
            const n = await this.store.deleteRoomMessages(roomId, this.options.batchRows);
            if (n < this.options.batchRows) break;
            await this.pause(t0);
            if (this.stopped) return;
          }
          forgotten = await this.store.forgetRoom(roomId, cutoff);
        } finally {
          this.rooms?.release(roomId, forgotten);
        }
        if (forgotten) {
          done.rooms++;
          this.deleted.rooms++;
        }
      }
      if (ids.length < ROOMS_PER_READ) return;
      after = ids[ids.length - 1]!;
    }
  }

  /** After a batch that began at `t0`: PAUSE_FACTOR times as long a pause as it took, at least MIN_PAUSE_MS. */
  private async pause(t0: number): Promise<void> {
    await sleep(Math.max(MIN_PAUSE_MS, PAUSE_FACTOR * (Date.now() - t0)));
  }

  /** What a pass would delete now, per table (rooms: how many are idle; in use or not). */
  async count(nowMs = Date.now()): Promise<RetentionCounts> {
    const counts: RetentionCounts = { messages: 0, room_queries: 0, connections: 0, rooms: 0 };
    for (const { table, setting } of TABLES) {
      const period = this.periods[setting];
      if (period !== undefined)
        counts[table] = await this.store.countOlderThan(table, cutoffOf(nowMs, period));
    }
    if (this.periods.retainRooms !== undefined) {
      const cutoff = cutoffOf(nowMs, this.periods.retainRooms);
      let after = '';
      for (;;) {
        const ids = await this.store.idleRooms(cutoff, after, ROOMS_PER_READ);
        counts.rooms += ids.length;
        if (ids.length < ROOMS_PER_READ) break;
        after = ids[ids.length - 1]!;
      }
    }
    return counts;
  }
}
