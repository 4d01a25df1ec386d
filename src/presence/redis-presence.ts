/**
 * Presence for a cluster: each room's connections in a Redis hash, every change made by one Lua
 * script that also publishes it on the room's presence channel, and a PresenceView per room this
 * node watches, kept by those events, so that reads are synchronous and each watcher is told of
 * joins and leaves in the order Redis made them (the events share the subscriber connection with
 * the room's messages: see RedisLink). The scripts and keys are in cluster/redis-nodes.ts, whose
 * reaping removes a dead node's connections with the same leave.
 *
 * Every change also bumps the room's presence version, carried by its event: a snapshot says which
 * version it shows, so the events that arrived while it was read and are already in it are told
 * to nobody a second time.
 *
 * This node remembers its own live entries, and leaves it could not send: after a reconnect they
 * are put back (Redis may have come back empty, or another node may have reaped this one while it
 * was cut off), and each watched room's view is reconciled with a new snapshot.
 */
import type { Logger } from 'pino';
import type { Presence, PresenceEntry, PresenceListener } from './presence.js';
import { PresenceView } from './presence-view.js';
import type { RedisLink } from '../cluster/redis-link.js';
import {
  addRoomConnection,
  nodeConnsKey,
  parseRoomConnectionEvent,
  readRoomConnections,
  removeRoomConnection,
  roomConnectionKeys,
  type RoomConnectionEvent,
  type RoomConnectionKeys,
} from '../cluster/redis-nodes.js';

export interface RedisPresenceOptions {
  link: RedisLink;
  nodeId: string;
  log: Logger;
}

/** A room this node watches. */
class WatchedRoom {
  /** Built from the first snapshot. */
  view: PresenceView | undefined;
  /** Events that came while a snapshot was read (undefined when none is). */
  buffered: RoomConnectionEvent[] | undefined;
  ready: Promise<void> | undefined;
  unwatched = false;

  constructor(
    readonly roomId: string,
    readonly keys: RoomConnectionKeys,
    readonly listener: PresenceListener,
  ) {}
}

/** A join() waiting for its own event to come back. */
interface JoinWaiter {
  roomId: string;
  entry: PresenceEntry;
  resolve(): void;
}

/** A leave of this node, kept until no join event of the connection can come any more. */
interface Leaving {
  roomId: string;
  /** Redis has made it; else it is sent again after a reconnect. */
  done: boolean;
  /** Its leave event came (the join event, earlier on the channel, cannot come after it). */
  echoed: boolean;
}

const NONE: readonly PresenceEntry[] = [];

export class RedisPresence implements Presence {
  private readonly link: RedisLink;
  private readonly nodeId: string;
  private readonly log: Logger;
  private readonly rooms = new Map<string, WatchedRoom>();
  /** This node's live entries (joined, not left), to put back after a reconnect. */
  private readonly own = new Map<number, { roomId: string; entry: PresenceEntry }>();
  /**
   * Connections this node took out of its views already: a join event or snapshot that still
   * shows one is not news (it would be told as a join, then a leave).
   */
  private readonly leaving = new Map<number, Leaving>();
  /** The same leaves by room: a room that closes drops its own without a pass over them all. */
  private readonly leavingByRoom = new Map<string, Set<number>>();
  private readonly joinWaiters = new Map<number, JoinWaiter>();
  private readonly stopWatchingLink: () => void;
  private restoring: Promise<void> | undefined;
  private restoreAgain = false;

  constructor(options: RedisPresenceOptions) {
    this.link = options.link;
    this.nodeId = options.nodeId;
    this.log = options.log;
    this.stopWatchingLink = this.link.onState((connected) => {
      if (connected) this.restore();
      else this.cutOff();
    });
  }

  watch(roomId: string, listener: PresenceListener): Promise<void> {
    const existing = this.rooms.get(roomId);
    if (existing) return existing.ready ?? Promise.resolve();
    const room = new WatchedRoom(roomId, roomConnectionKeys(this.link, roomId), listener);
    this.rooms.set(roomId, room);
    room.ready = this.startWatching(room).finally(() => {
      room.ready = undefined;
    });
    return room.ready;
  }

  unwatch(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    this.rooms.delete(roomId);
    room.unwatched = true;
    this.link.unlisten(room.keys.channel);
    const leaves = this.leavingByRoom.get(roomId);
    if (leaves) {
      for (const connId of [...leaves]) {
        if (this.leaving.get(connId)?.done) this.dropLeaving(connId);
      }
    }
  }

  async join(roomId: string, entry: PresenceEntry, maxMembers: number): Promise<'joined' | 'full'> {
    const room = this.rooms.get(roomId);
    if (!room) throw new Error(`presence: room ${roomId} is not watched`);
    if (room.ready) await room.ready;
    // Its event could not come back while cut off (the command connection may be up alone).
    if (!this.link.connected) throw this.link.unavailable();
    const { connId } = entry;
    const echoed = new Promise<void>((resolve) => this.joinWaiters.set(connId, { roomId, entry, resolve }));
    let result: 'joined' | 'full' | 'exists';
    try {
      result = await this.runJoin(roomId, entry, maxMembers);
    } catch (err) {
      this.joinWaiters.delete(connId);
      // It may have been added before the reply was lost: take it out again.
      this.sendLeave(roomId, connId);
      throw err;
    }
    if (result === 'full') {
      this.joinWaiters.delete(connId);
      return 'full';
    }
    if (this.leaving.has(connId)) return 'joined'; // left meanwhile
    this.own.set(connId, { roomId, entry });
    if (result === 'exists') this.joinSeen(roomId, entry);
    await echoed;
    return 'joined';
  }

  leave(roomId: string, connId: number): void {
    this.own.delete(connId);
    this.joinWaiters.get(connId)?.resolve();
    this.joinWaiters.delete(connId);
    // At once here, so reads are right before the event comes back.
    const room = this.rooms.get(roomId);
    if (room?.view) this.tell(() => room.view!.remove(connId));
    this.sendLeave(roomId, connId);
  }

  connections(roomId: string): readonly PresenceEntry[] {
    const view = this.rooms.get(roomId)?.view;
    return view ? [...view.entries.values()] : NONE;
  }

  hasDevice(roomId: string, deviceId: string): boolean {
    return this.rooms.get(roomId)?.view?.hasDevice(deviceId) ?? false;
  }

  count(roomId: string): number {
    return this.rooms.get(roomId)?.view?.entries.size ?? 0;
  }

  async close(): Promise<void> {
    for (const roomId of [...this.rooms.keys()]) this.unwatch(roomId);
    for (const waiter of this.joinWaiters.values()) waiter.resolve();
    this.joinWaiters.clear();
    this.stopWatchingLink();
  }

  private runJoin(
    roomId: string,
    entry: PresenceEntry,
    maxMembers: number,
  ): Promise<'joined' | 'full' | 'exists'> {
    return addRoomConnection(this.link, roomId, this.nodeId, entry, maxMembers);
  }

  private sendLeave(roomId: string, connId: number): void {
    const leaving: Leaving = { roomId, done: false, echoed: false };
    this.dropLeaving(connId);
    this.leaving.set(connId, leaving);
    let leaves = this.leavingByRoom.get(roomId);
    if (!leaves) this.leavingByRoom.set(roomId, (leaves = new Set()));
    leaves.add(connId);
    if (!this.link.connected) return; // sent after the reconnect
    this.runLeave(connId, leaving).catch((err: unknown) =>
      this.log.debug({ err, roomId, connId }, 'presence: leave not sent; sent again after reconnecting'),
    );
  }

  private dropLeaving(connId: number): void {
    const leaving = this.leaving.get(connId);
    if (!leaving) return;
    this.leaving.delete(connId);
    const leaves = this.leavingByRoom.get(leaving.roomId);
    leaves?.delete(connId);
    if (leaves?.size === 0) this.leavingByRoom.delete(leaving.roomId);
  }

  private async runLeave(connId: number, leaving: Leaving): Promise<void> {
    const { roomId } = leaving;
    const removed = await removeRoomConnection(
      this.link,
      roomId,
      connId,
      nodeConnsKey(this.link, this.nodeId),
    );
    leaving.done = true;
    // Nothing was removed, its event came already, or nobody here watches: nothing to wait for.
    const waitForEvent = removed !== undefined && !leaving.echoed && this.rooms.has(roomId);
    if (!waitForEvent && this.leaving.get(connId) === leaving) this.dropLeaving(connId);
  }

  /** watch()'s work: the channel first, then the snapshot, so no event falls between. */
  private async startWatching(room: WatchedRoom): Promise<void> {
    try {
      if (!this.link.connected) throw this.link.unavailable();
      room.buffered = [];
      await this.link.listen(room.keys.channel, (data) => this.onEvent(room, data));
      await this.sync(room);
    } catch (err) {
      if (this.rooms.get(room.roomId) === room) this.unwatch(room.roomId);
      throw err;
    }
  }

  /**
   * Makes the room's view match a snapshot: the first one quietly (the view is new), later ones
   * telling the listener what changed while this node was cut off. Events that came meanwhile and
   * are newer than the snapshot are applied after it.
   */
  private async sync(room: WatchedRoom): Promise<void> {
    room.buffered ??= [];
    let version = -1;
    try {
      const snapshot = await readRoomConnections(this.link, room.roomId);
      version = snapshot.version;
      if (room.unwatched) return;
      const entries = snapshot.entries.filter((entry) => !this.leaving.has(entry.connId));
      const first = room.view === undefined;
      const view = (room.view ??= new PresenceView(room.listener));
      if (!first) {
        const present = new Set(entries.map((entry) => entry.connId));
        for (const connId of [...view.entries.keys()]) {
          if (!present.has(connId)) this.tell(() => view.remove(connId));
        }
      }
      for (const entry of entries) this.tell(() => view.add(entry, first));
    } finally {
      // Events flow again whatever became of the snapshot (a later reconnect syncs anew).
      const buffered = room.buffered ?? [];
      room.buffered = undefined;
      for (const event of buffered) if (event.version > version) this.apply(room, event);
    }
    for (const waiter of [...this.joinWaiters.values()]) {
      if (waiter.roomId === room.roomId && room.view?.entries.has(waiter.entry.connId)) {
        this.joinWaiters.delete(waiter.entry.connId);
        waiter.resolve();
      }
    }
  }

  private onEvent(room: WatchedRoom, data: Buffer): void {
    let event: RoomConnectionEvent;
    try {
      event = parseRoomConnectionEvent(data);
    } catch (err) {
      this.log.error({ err, roomId: room.roomId }, 'presence: unreadable event');
      return;
    }
    if (room.buffered) room.buffered.push(event);
    else this.apply(room, event);
  }

  private apply(room: WatchedRoom, event: RoomConnectionEvent): void {
    const view = room.view;
    if (!view) return;
    if (event.kind === 'leave') {
      const leaving = this.leaving.get(event.connId);
      if (leaving) {
        leaving.echoed = true;
        if (leaving.done) this.dropLeaving(event.connId);
      }
      this.tell(() => view.remove(event.connId));
      return;
    }
    const { connId } = event.entry;
    if (this.leaving.has(connId)) return;
    this.tell(() => view.add(event.entry));
    const waiter = this.joinWaiters.get(connId);
    if (waiter) {
      this.joinWaiters.delete(connId);
      waiter.resolve();
    }
  }

  /** A join this node made whose event will not come (it was there already): seen here. */
  private joinSeen(roomId: string, entry: PresenceEntry): void {
    const view = this.rooms.get(roomId)?.view;
    if (view) this.tell(() => view.add(entry));
    this.joinWaiters.get(entry.connId)?.resolve();
    this.joinWaiters.delete(entry.connId);
  }

  /** Runs a view change; a listener's failure is logged, not thrown into the event dispatch. */
  private tell(change: () => void): void {
    try {
      change();
    } catch (err) {
      this.log.error({ err }, 'presence: a listener failed');
    }
  }

  /**
   * Cut off: the events of joins in flight may never come, so they count as seen here (Redis
   * has them, or is given them again after the reconnect).
   */
  private cutOff(): void {
    for (const waiter of [...this.joinWaiters.values()]) {
      const view = this.rooms.get(waiter.roomId)?.view;
      if (view) this.tell(() => view.add(waiter.entry));
      waiter.resolve();
    }
    this.joinWaiters.clear();
  }

  /** Back after a cut: own entries and leaves first, then every watched room's view. */
  private restore(): void {
    if (this.restoring) {
      this.restoreAgain = true;
      return;
    }
    this.restoring = (async () => {
      do {
        this.restoreAgain = false;
        try {
          // Leaves Redis made before the cut whose events may have been lost: the snapshots
          // below no longer show them.
          const doneBefore = [...this.leaving].filter(([, leaving]) => leaving.done);
          for (const [connId, { roomId, entry }] of [...this.own]) {
            if (!this.leaving.has(connId)) await this.runJoin(roomId, entry, 0);
          }
          for (const [connId, leaving] of [...this.leaving]) {
            if (!leaving.done) await this.runLeave(connId, leaving);
          }
          for (const room of [...this.rooms.values()]) {
            if (room.view && !room.ready && !room.unwatched) await this.sync(room);
          }
          for (const [connId, leaving] of doneBefore) {
            if (this.leaving.get(connId) === leaving) this.dropLeaving(connId);
          }
        } catch (err) {
          // Cut off again: the next reconnect starts over.
          this.log.warn({ err }, 'presence: could not restore after reconnecting');
        }
      } while (this.restoreAgain && this.link.connected);
    })().finally(() => {
      this.restoring = undefined;
    });
  }
}
