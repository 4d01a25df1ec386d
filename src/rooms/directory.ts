/**
 * What the server knows of rooms and devices beyond the ones live in memory: which room codes
 * exist, each device's last room, and the last seq of rooms that emptied. Backed by the Store,
 * with a bounded cache in front so that most hellos need no database read.
 *
 * The cache is written through: every assignment updates it before the RecordWriter has
 * committed it. When an entry is evicted while its rows may still be queued, a read that misses
 * the cache first waits for the writer to commit up to the eviction, so it never sees the
 * database older than the cache was.
 */
import type { Store, Timestamp } from '../store/store.js';
import type { RecordWriter } from '../store/record-writer.js';
import { LruMap } from './lru.js';

interface KnownRoom {
  /** The room's last seq when it left memory; undefined when not known here. */
  lastSeq: number | undefined;
}

export class Directory {
  private readonly rooms: LruMap<string, KnownRoom>;
  private readonly devices: LruMap<string, string>;
  /** Writer ticket at the latest eviction: reads after a miss wait for it. */
  private evictedAt = 0;

  constructor(
    private readonly store: Store,
    private readonly writer: RecordWriter,
    cacheSize: number,
  ) {
    const onEvict = () => {
      this.evictedAt = this.writer.ticket;
    };
    this.rooms = new LruMap(cacheSize, onEvict);
    this.devices = new LruMap(cacheSize, onEvict);
  }

  private async settle(): Promise<void> {
    await this.writer.until(this.evictedAt);
  }

  async roomExists(roomId: string): Promise<boolean> {
    if (this.rooms.get(roomId)) return true;
    const row = await this.store.getRoom(roomId);
    if (row) this.rooms.set(roomId, { lastSeq: undefined });
    return row !== undefined;
  }

  /** Inserts a new room; false if the code is taken. */
  async createRoom(roomId: string, at: Timestamp): Promise<boolean> {
    const created = await this.store.insertRoom(roomId, at);
    if (created) this.rooms.set(roomId, { lastSeq: 0 });
    return created;
  }

  async lastRoomOf(deviceId: string): Promise<string | undefined> {
    const cached = this.devices.get(deviceId);
    if (cached !== undefined) return cached;
    await this.settle();
    const row = await this.store.getDevice(deviceId);
    if (row?.lastRoomId) this.devices.set(deviceId, row.lastRoomId);
    return row?.lastRoomId ?? undefined;
  }

  setLastRoom(deviceId: string, roomId: string): void {
    this.devices.set(deviceId, roomId);
  }

  /** The room's last recorded seq (cache, else the database once queued writes are in). */
  async lastSeq(roomId: string): Promise<number> {
    const known = this.rooms.get(roomId);
    if (known?.lastSeq !== undefined) return known.lastSeq;
    await this.settle();
    return this.store.lastSeq(roomId);
  }

  /** A room left memory at this seq. */
  roomDeactivated(roomId: string, lastSeq: number): void {
    this.rooms.set(roomId, { lastSeq });
  }
}
