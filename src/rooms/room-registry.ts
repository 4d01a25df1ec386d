/**
 * The rooms open on this node. A room opens when its first member here joins (the bus subscribes
 * to it, presence starts watching it) and closes when its last member here leaves; it stays in
 * the database and stays joinable. Commands from other nodes (replace, kick) find their
 * connection here.
 */
import type { Bus, NodeCommand, SeqStart } from '../bus/bus.js';
import type { Presence } from '../presence/presence.js';
import type { Directory } from './directory.js';
import { Room, type Member } from './room.js';
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
  /** Members here by connection id, for commands addressed to them. */
  private readonly byConnection = new Map<number, Member>();

  constructor(
    private readonly directory: Directory,
    private readonly bus: Bus,
    private readonly presence: Presence,
    private readonly options: RoomRegistryOptions,
  ) {
    bus.onCommand(this.onCommand);
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** Connections in a room on this node. */
  get connectionCount(): number {
    return this.byConnection.size;
  }

  /** Whether the room is open on this node (it has members here) or opening. */
  inUse(roomId: string): boolean {
    return this.rooms.has(roomId) || this.loading.has(roomId);
  }

  /** Members here at protocol Level 1 and Level 2 (counted when asked: for the metrics' scrape). */
  membersByLevel(): [level1: number, level2: number] {
    let level1 = 0;
    let level2 = 0;
    for (const member of this.byConnection.values()) {
      if (member.level === 2) level2++;
      else level1++;
    }
    return [level1, level2];
  }

  get(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  /** Whether a newcomer of this device would find an open room full (its own device never does). */
  isFull(roomId: string, deviceId: string): boolean {
    const max = this.options.maxRoomMembers;
    return (
      max > 0 &&
      this.rooms.has(roomId) &&
      this.presence.count(roomId) >= max &&
      !this.presence.hasDevice(roomId, deviceId)
    );
  }

  /**
   * Puts `member` into the room, opening the room here first if needed. Returns the room, 'full'
   * when it has the most members it may have, or undefined when `stillWanted()` turned false
   * meanwhile.
   */
  async enter(
    roomId: string,
    member: Member,
    stillWanted: () => boolean,
  ): Promise<Room | 'full' | undefined> {
    let room = this.rooms.get(roomId);
    while (!room) {
      await this.load(roomId);
      room = this.rooms.get(roomId); // the room may have closed again while we waited
    }
    if (!stillWanted()) {
      this.closeIfEmpty(room);
      return undefined;
    }
    // Counted here before it is joined: the room cannot close under a join in flight.
    this.byConnection.set(member.id, member);
    room.add(member);
    let joined: 'joined' | 'full';
    try {
      joined = await this.presence.join(
        roomId,
        {
          connId: member.id,
          node: this.bus.nodeId,
          deviceId: member.deviceId,
          identity: member.identity,
          level: member.level,
        },
        this.options.maxRoomMembers,
      );
    } catch (err) {
      // Redis is away (cluster mode): the member never entered.
      this.byConnection.delete(member.id);
      room.remove(member);
      this.closeIfEmpty(room);
      throw err;
    }
    if (joined === 'full' || !stillWanted()) {
      if (joined === 'joined') this.presence.leave(roomId, member.id);
      this.byConnection.delete(member.id);
      room.remove(member);
      this.closeIfEmpty(room);
      return joined === 'full' ? 'full' : undefined;
    }
    if (this.options.sameDevice === 'replace') {
      // The newcomer is in first, so that replacing the last other member cannot close the room.
      for (const other of this.presence.connections(roomId)) {
        if (other.deviceId === member.deviceId && other.connId !== member.id) {
          this.bus.command(other.node, { type: 'replace', connId: other.connId });
        }
      }
    }
    return room;
  }

  leave(room: Room, member: Member): void {
    if (!room.remove(member)) return;
    this.byConnection.delete(member.id);
    this.presence.leave(room.id, member.id);
    this.closeIfEmpty(room);
  }

  /** A command from a node (this one included) for a connection held here. */
  private readonly onCommand = (command: NodeCommand): void => {
    const member = this.byConnection.get(command.connId);
    if (!member) return;
    if (command.type === 'replace') member.replace();
    else member.kick(command.reason);
  };

  private closeIfEmpty(room: Room): void {
    if (room.members.size === 0 && this.rooms.get(room.id) === room) {
      this.rooms.delete(room.id);
      room.active = false;
      this.presence.unwatch(room.id);
      const seqs = this.bus.unsubscribe(room.id);
      if (seqs) this.directory.roomDeactivated(room.id, seqs.last, seqs.reserved);
    }
  }

  private load(roomId: string): Promise<void> {
    let pending = this.loading.get(roomId);
    if (!pending) {
      pending = this.open(roomId).finally(() => this.loading.delete(roomId));
      this.loading.set(roomId, pending);
    }
    return pending;
  }

  private async open(roomId: string): Promise<void> {
    if (this.rooms.has(roomId)) return;
    const room = new Room(roomId, this.options.historyWindow, this.bus, this.presence, this.options.traffic);
    // What the directory handed over: it goes back there if the room cannot open.
    let start: SeqStart | undefined;
    try {
      await this.bus.subscribe(
        roomId,
        room.deliver,
        async () => (start = await this.directory.roomStart(roomId)),
      );
    } catch (err) {
      if (start) this.directory.roomDeactivated(roomId, start.last, start.reserved);
      throw err;
    }
    try {
      await this.presence.watch(roomId, room);
    } catch (err) {
      const seqs = this.bus.unsubscribe(roomId);
      if (seqs) this.directory.roomDeactivated(roomId, seqs.last, seqs.reserved);
      throw err;
    }
    this.rooms.set(roomId, room);
  }
}
