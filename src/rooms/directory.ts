/**
 * What the server knows of rooms and devices beyond the ones live in memory: which room codes
 * exist, each device's last room, and the last seq of rooms that emptied. Backed by the Store,
 * with a bounded cache in front so that most hellos need no database read.
 *
 * The cache is written through: every assignment updates it before the RecordWriter has
 * committed it. When an entry is evicted while its rows may still be queued, a read of that key
 * first waits for the writer to commit up to the eviction, so it never sees the database older
 * than the cache was. Other keys read at once: a key this server never cached has nothing queued.
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
  /**
   * Keys evicted while their rows may still be queued → the writer's ticket at the eviction, in
   * eviction order (so in ticket order); dropped once the writer has committed that far.
   */
  private readonly evictedRooms = new Map<string, number>();
  private readonly evictedDevices = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly writer: RecordWriter,
    cacheSize: number,
  ) {
    this.rooms = new LruMap(cacheSize, (key) => this.evicted(this.evictedRooms, key));
    this.devices = new LruMap(cacheSize, (key) => this.evicted(this.evictedDevices, key));
  }

  private evicted(pending: Map<string, number>, key: string): void {
    pending.delete(key); // re-inserted at the end: the order stays the tickets' order
    pending.set(key, this.writer.ticket);
    for (const [oldest, ticket] of pending) {
      if (!this.writer.committed(ticket)) break;
      pending.delete(oldest);
    }
  }

  /** Before a database read of `key` after a cache miss: its queued rows are committed. */
  private async settle(pending: Map<string, number>, key: string): Promise<void> {
    const ticket = pending.get(key);
    if (ticket !== undefined) await this.writer.until(ticket);
  }

  async roomExists(roomId: string): Promise<boolean> {
    if (this.rooms.get(roomId)) return true;
    await this.settle(this.evictedRooms, roomId);
    const row = await this.store.getRoom(roomId);
    if (row) this.rooms.set(roomId, { lastSeq: undefined });
    return row !== undefined;
  }

  /** Creates a room; false if the code is taken. */
  async createRoom(roomId: string, at: Timestamp): Promise<boolean> {
    if (!this.store.claimsRoomsByRead) {
      const created = await this.store.insertRoom(roomId, at);
      if (created) this.rooms.set(roomId, { lastSeq: 0 });
      return created;
    }
    // The only writer: a code is free if neither the cache (rooms not yet committed among them)
    // nor the database knows it. A read and a row in the next batch cost a third of an INSERT
    // of its own on the hello path, which also evicted the writer thread's cached pages.
    if (await this.roomExists(roomId)) return false;
    if (this.rooms.get(roomId)) return false; // claimed by another hello during the read
    // Appended before it is cached: an eviction's ticket then covers the row.
    this.writer.append({ kind: 'room', roomId, at });
    this.rooms.set(roomId, { lastSeq: 0 });
    return true;
  }

  async lastRoomOf(deviceId: string): Promise<string | undefined> {
    const cached = this.devices.get(deviceId);
    if (cached !== undefined) return cached;
    await this.settle(this.evictedDevices, deviceId);
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
    await this.settle(this.evictedRooms, roomId);
    return this.store.lastSeq(roomId);
  }

  /** A room left memory at this seq. */
  roomDeactivated(roomId: string, lastSeq: number): void {
    this.rooms.set(roomId, { lastSeq });
  }
}
