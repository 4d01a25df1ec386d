/**
 * What the server knows of rooms and devices beyond the ones live in memory: which room codes
 * exist, each device's last room, and the last seq of rooms that emptied. Backed by the Store,
 * with a bounded cache in front so that most hellos need no database read.
 *
 * The cache is written through: every assignment updates it before the RecordWriter has
 * committed it. When an entry is evicted while its rows may still be queued, a read of that key
 * first waits for the writer to commit up to the eviction, so it never sees the database older
 * than the cache was. Other keys read at once: a key this server never cached has nothing queued.
 *
 * A room that leaves memory keeps its seq reservation (SeqReservations) while it is cached, so
 * that a device coming back waits for nothing; the reservation is given back (rooms.seq_reserved
 * set to the room's last seq) when the entry is evicted and at a clean stop, so that seqs skip
 * numbers only after a crash.
 */
import type { RoomSeq, Store, Timestamp } from '../store/store.js';
import type { RecordWriter } from '../store/record-writer.js';
import { LruMap } from './lru.js';

interface KnownRoom {
  /**
   * The room's last seq and durable reservation when it left memory; undefined when not known
   * here, or while the room is in memory (then the Room has them).
   */
  seq: { last: number; reserved: number } | undefined;
}

/**
 * Cluster mode: each device's last room where every node sees it at once (Redis), since another
 * node's record of it may still be queued in that node's writer.
 */
export interface SharedLastRooms {
  get(deviceId: string): Promise<string | undefined>;
  set(deviceId: string, roomId: string): void;
}

/** Where a room entering memory starts: its last seq and the reservation it may use. */
export interface RoomStart {
  last: number;
  reserved: number;
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
  /** Rooms retention is forgetting (forget-guard.ts): no hello finds them meanwhile. */
  private readonly forgetting = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly writer: RecordWriter,
    cacheSize: number,
    /**
     * Cluster mode. Other nodes move rooms' seqs on and raise their reservations, so a room's seq
     * is never kept here once it leaves this node (Redis has it; the database when Redis lost
     * it) and no reservation is given back.
     */
    private readonly shared?: SharedLastRooms,
  ) {
    this.rooms = new LruMap(cacheSize, (key, room) => {
      this.giveBack(key, room);
      this.evicted(this.evictedRooms, key);
    });
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
    if (this.forgetting.has(roomId)) return false;
    if (this.rooms.get(roomId)) return true;
    await this.settle(this.evictedRooms, roomId);
    const row = await this.store.getRoom(roomId);
    if (!row || this.forgetting.has(roomId)) return false; // forgetting began during the read
    this.rooms.set(roomId, { seq: undefined });
    return true;
  }

  /**
   * Retention is about to delete the room: it leaves the cache (its unused seq reservation is
   * not given back: the row goes), and until endForget no hello finds it nor creates its code.
   */
  beginForget(roomId: string): void {
    this.forgetting.add(roomId);
    this.rooms.delete(roomId);
  }

  /** The room is deleted (the database no longer knows it), or stays after all. */
  endForget(roomId: string): void {
    this.forgetting.delete(roomId);
  }

  /**
   * Creates a room, with its first seq block reserved (`reserve`) in its row, so that the first
   * member waits for nothing more; false if the code is taken.
   */
  async createRoom(roomId: string, at: Timestamp, reserve: number): Promise<boolean> {
    if (this.forgetting.has(roomId)) return false;
    if (!this.store.claimsRoomsByRead) {
      const created = await this.store.insertRoom(roomId, at, reserve);
      if (created) this.rooms.set(roomId, { seq: { last: 0, reserved: reserve } });
      return created;
    }
    // The only writer: a code is free if neither the cache (rooms not yet committed among them)
    // nor the database knows it. A read and a row in the next batch cost a third of an INSERT
    // of its own on the hello path, which also evicted the writer thread's cached pages.
    if (await this.roomExists(roomId)) return false;
    if (this.rooms.get(roomId)) return false; // claimed by another hello during the read
    // Appended before it is cached: an eviction's ticket then covers the row. Its first block
    // is used before the row is durable: if the row is lost in a crash, so is the room and every
    // message of it (records are durable in order), and no seq of it can be seen again.
    this.writer.append({ kind: 'room', roomId, at, seqReserved: reserve });
    this.rooms.set(roomId, { seq: { last: 0, reserved: reserve } });
    return true;
  }

  async lastRoomOf(deviceId: string): Promise<string | undefined> {
    const shared = await this.shared?.get(deviceId);
    if (shared !== undefined) return shared;
    const cached = this.devices.get(deviceId);
    if (cached !== undefined) return cached;
    await this.settle(this.evictedDevices, deviceId);
    const row = await this.store.getDevice(deviceId);
    if (row?.lastRoomId) this.devices.set(deviceId, row.lastRoomId);
    return row?.lastRoomId ?? undefined;
  }

  setLastRoom(deviceId: string, roomId: string): void {
    this.devices.set(deviceId, roomId);
    this.shared?.set(deviceId, roomId);
  }

  /**
   * Where a room entering memory starts (cache, else the database once queued writes are in).
   * After a crash the database's reservation is above its last recorded seq: the room goes on
   * from the reservation, skipping numbers a client may have seen.
   */
  async roomStart(roomId: string): Promise<RoomStart> {
    const known = this.rooms.get(roomId);
    if (known?.seq !== undefined) {
      const start = known.seq;
      known.seq = undefined; // the Room has it now: nothing to give back on eviction
      return start;
    }
    await this.settle(this.evictedRooms, roomId);
    const seq: RoomSeq = await this.store.roomSeq(roomId);
    return { last: Math.max(seq.recorded, seq.reserved), reserved: seq.reserved };
  }

  /** A room left memory at this seq, with this durable reservation. */
  roomDeactivated(roomId: string, last: number, reserved: number): void {
    this.rooms.set(roomId, { seq: this.shared ? undefined : { last, reserved } });
  }

  /** For a clean stop: gives back the reservations of every room not in memory. */
  giveBackAll(): void {
    for (const [roomId, room] of this.rooms.entries()) this.giveBack(roomId, room);
  }

  /** Sets a cached room's reservation back to its last seq (no number is skipped). */
  private giveBack(roomId: string, room: KnownRoom): void {
    const seq = room.seq;
    // Cluster mode: another node may be handing out seqs under this reservation.
    if (!seq || seq.reserved <= seq.last || this.shared) return;
    this.writer.append({ kind: 'room_seq_given_back', roomId, reserved: seq.last });
    seq.reserved = seq.last;
  }
}
