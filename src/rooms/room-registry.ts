/**
 * The rooms live in this process. A room enters memory when its first member joins (its seq
 * read from the Directory) and leaves when its last member leaves; it stays in the database
 * and stays joinable.
 */
import type { Bus } from '../bus/bus.js';
import type { Directory } from './directory.js';
import { Room, type Member } from './room.js';
import type { SeqReservations } from './seq-reservations.js';
import type { TrafficSink } from './traffic.js';

export interface RoomRegistryOptions {
  /** A second connection of a device in the same room: replace the older one, or allow both. */
  sameDevice: 'replace' | 'allow';
  /** Messages each room keeps in memory for resume and history once a Level 2 member came. */
  historyWindow: number;
  /** Most connections in a room; 0 = no limit. */
  maxRoomMembers: number;
  /** Where rooms report their deliveries (the metrics). */
  traffic: TrafficSink;
}

export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();
  private readonly loading = new Map<string, Promise<void>>();
  private memberCount = 0;

  constructor(
    private readonly directory: Directory,
    private readonly bus: Bus,
    /** Each room's seq blocks (a room enters memory once it has one). */
    readonly seqs: SeqReservations,
    private readonly options: RoomRegistryOptions,
  ) {}

  get roomCount(): number {
    return this.rooms.size;
  }

  get connectionCount(): number {
    return this.memberCount;
  }

  /** Whether the room is in memory (it has members) or entering it. */
  inUse(roomId: string): boolean {
    return this.rooms.has(roomId) || this.loading.has(roomId);
  }

  /** Members at protocol Level 1 and Level 2 (counted when asked: for the metrics' scrape). */
  membersByLevel(): [level1: number, level2: number] {
    let level1 = 0;
    let level2 = 0;
    for (const room of this.rooms.values()) {
      for (const member of room.members.values()) {
        if (member.level === 2) level2++;
        else level1++;
      }
    }
    return [level1, level2];
  }

  get(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  /** Whether a newcomer of this device would find the room full (its own device never does). */
  isFull(roomId: string, deviceId: string): boolean {
    const room = this.rooms.get(roomId);
    const max = this.options.maxRoomMembers;
    return !!room && max > 0 && room.members.size >= max && !room.hasDevice(deviceId);
  }

  /**
   * Puts `member` into the room, loading the room into memory first if needed. Returns the room,
   * 'full' when it has the most members it may have, or undefined when `stillWanted()` turned
   * false while the room was loading.
   */
  async enter(
    roomId: string,
    member: Member,
    stillWanted: () => boolean,
  ): Promise<Room | 'full' | undefined> {
    let room = this.rooms.get(roomId);
    while (!room) {
      await this.load(roomId);
      room = this.rooms.get(roomId); // the room may have emptied again while we waited
    }
    if (!stillWanted()) {
      this.dropIfEmpty(room);
      return undefined;
    }
    if (this.isFull(roomId, member.deviceId)) return 'full';
    // The newcomer goes in first, so that replacing the last other member cannot empty the room.
    room.add(member);
    this.memberCount++;
    if (this.options.sameDevice === 'replace') {
      for (const other of [...room.members.values()]) {
        if (other !== member && other.deviceId === member.deviceId) other.replace();
      }
    }
    return room;
  }

  leave(room: Room, member: Member): void {
    if (!room.remove(member)) return;
    this.memberCount--;
    this.dropIfEmpty(room);
  }

  private dropIfEmpty(room: Room): void {
    if (room.members.size === 0 && this.rooms.get(room.id) === room) {
      this.rooms.delete(room.id);
      room.active = false;
      this.bus.unsubscribe(room.id);
      this.directory.roomDeactivated(room.id, room.seq, room.seqLimit);
    }
  }

  private load(roomId: string): Promise<void> {
    let pending = this.loading.get(roomId);
    if (!pending) {
      pending = this.directory
        .roomStart(roomId)
        .then(async ({ last, reserved }) => {
          if (this.rooms.has(roomId)) return;
          const room = new Room(roomId, last, reserved, this.options.historyWindow, this.options.traffic);
          try {
            await this.seqs.ready(room);
          } catch (err) {
            room.active = false;
            this.directory.roomDeactivated(roomId, room.seq, room.seqLimit);
            throw err;
          }
          if (!this.rooms.has(roomId)) {
            this.rooms.set(roomId, room);
            this.bus.subscribe(roomId, room.deliver);
          }
        })
        .finally(() => this.loading.delete(roomId));
      this.loading.set(roomId, pending);
    }
    return pending;
  }
}
