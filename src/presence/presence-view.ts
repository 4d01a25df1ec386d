/**
 * One room's connections as a node sees them, and the join and leave events they make: the
 * state of LocalPresence, and RedisPresence's mirror of a watched room (built from a snapshot,
 * then kept by the room's events in the order Redis published them; applying an event twice
 * changes nothing).
 */
import type { PresenceEntry, PresenceListener } from './presence.js';

export class PresenceView {
  readonly entries = new Map<number, PresenceEntry>();
  /** Connections per device: presence is per device (a replaced connection is no leave). */
  private readonly devices = new Map<string, number>();

  constructor(readonly listener: PresenceListener) {}

  /** Adds a connection; tells the listener when its device was not here yet. */
  add(entry: PresenceEntry, quiet = false): void {
    if (this.entries.has(entry.connId)) return;
    this.entries.set(entry.connId, entry);
    const n = this.devices.get(entry.deviceId) ?? 0;
    this.devices.set(entry.deviceId, n + 1);
    if (n === 0 && !quiet) this.listener.deviceJoined(entry);
  }

  /** Removes a connection; tells the listener when it was its device's last. */
  remove(connId: number): PresenceEntry | undefined {
    const entry = this.entries.get(connId);
    if (!entry) return undefined;
    this.entries.delete(connId);
    const n = (this.devices.get(entry.deviceId) ?? 1) - 1;
    if (n > 0) {
      this.devices.set(entry.deviceId, n);
    } else {
      this.devices.delete(entry.deviceId);
      this.listener.deviceLeft(entry);
    }
    return entry;
  }

  hasDevice(deviceId: string): boolean {
    return this.devices.has(deviceId);
  }

  /** Whether a connection of `deviceId` would find the room full (its own device never does). */
  isFull(deviceId: string, maxMembers: number): boolean {
    return maxMembers > 0 && this.entries.size >= maxMembers && !this.devices.has(deviceId);
  }
}
