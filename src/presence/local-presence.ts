/** Presence in this process: one node, so every room's view is the whole truth. */
import type { Presence, PresenceEntry, PresenceListener } from './presence.js';
import { PresenceView } from './presence-view.js';

const NONE: readonly PresenceEntry[] = [];

export class LocalPresence implements Presence {
  private readonly rooms = new Map<string, PresenceView>();

  async watch(roomId: string, listener: PresenceListener): Promise<void> {
    if (!this.rooms.has(roomId)) this.rooms.set(roomId, new PresenceView(listener));
  }

  unwatch(roomId: string): void {
    this.rooms.delete(roomId);
  }

  async join(roomId: string, entry: PresenceEntry, maxMembers: number): Promise<'joined' | 'full'> {
    return this.joinNow(roomId, entry, maxMembers);
  }

  /** join, synchronously: the local registry's path (nothing can come between check and add). */
  joinNow(roomId: string, entry: PresenceEntry, maxMembers: number): 'joined' | 'full' {
    const view = this.rooms.get(roomId);
    if (!view) throw new Error(`presence: room ${roomId} is not watched`);
    if (view.isFull(entry.deviceId, maxMembers)) return 'full';
    view.add(entry);
    return 'joined';
  }

  leave(roomId: string, connId: number): void {
    this.rooms.get(roomId)?.remove(connId);
  }

  connections(roomId: string): readonly PresenceEntry[] {
    const view = this.rooms.get(roomId);
    return view ? [...view.entries.values()] : NONE;
  }

  hasDevice(roomId: string, deviceId: string): boolean {
    return this.rooms.get(roomId)?.hasDevice(deviceId) ?? false;
  }

  count(roomId: string): number {
    return this.rooms.get(roomId)?.entries.size ?? 0;
  }

  async close(): Promise<void> {
    this.rooms.clear();
  }
}
