/**
 * A room open on this node: its members here, and what it delivers to them. Who is in the room
 * on every node is Presence's; the room's seq is the Bus's.
 */
import type { Bus, RoomMessage } from '../bus/bus.js';
import { memberEventFrame, type MemberInfo } from '../protocol/encode.js';
import type { Presence, PresenceEntry, PresenceListener } from '../presence/presence.js';
import { MessageWindow } from './message-window.js';
import type { TrafficSink } from './traffic.js';

/** A connection in a room, as the room sees it. */
export interface Member {
  /** Connection id (the `connections` row): unique across nodes. */
  readonly id: number;
  readonly deviceId: string;
  readonly identity: string;
  /** Protocol level: presence events go to Level 2 members only. */
  readonly level: 1 | 2;
  /** Sends a room message to this member. */
  deliver(message: RoomMessage): void;
  /** Sends a text frame (presence events). */
  sendText(text: string): void;
  /** Ends the connection because a newer one of the same device took its place. */
  replace(): void;
  /** Ends the connection: an operator's kick. */
  kick(reason: string): void;
}

export class Room implements PresenceListener {
  /** Its members on this node, by connection id. */
  readonly members = new Map<number, Member>();
  /** False once the room is closed on this node (its last member here left). */
  active = true;
  /**
   * The last messages, kept once a Level 2 member has been here (Level 1 clients cannot resume,
   * so a room of them pays nothing for it). Undefined until then.
   */
  window: MessageWindow | undefined;

  constructor(
    readonly id: string,
    private readonly windowSize: number,
    private readonly bus: Bus,
    private readonly presence: Presence,
    private readonly traffic: TrafficSink,
  ) {}

  /** The room's highest seq as this node knows it. */
  get seq(): number {
    return this.bus.seq(this.id);
  }

  /** Connections in the room, on every node. */
  get memberCount(): number {
    return this.presence.count(this.id);
  }

  /** Bus handler: deliver to every member here except the sender (a `send`: to its target only). */
  readonly deliver = (message: RoomMessage): void => {
    this.window?.push(message);
    const to = message.to;
    let recipients = 0;
    for (const member of this.members.values()) {
      if (member.id !== message.senderId && (to === null || member.deviceId === to)) {
        member.deliver(message);
        recipients++;
      }
    }
    this.traffic.messageDelivered(recipients);
  };

  /** Whether a device has a connection in the room, on any node. */
  hasDevice(deviceId: string): boolean {
    return this.presence.hasDevice(this.id, deviceId);
  }

  /** Adds a member here (Presence has it already). */
  add(member: Member): void {
    this.members.set(member.id, member);
    if (member.level === 2 && !this.window && this.windowSize > 0) {
      this.window = new MessageWindow(this.windowSize, this.seq);
    }
  }

  /** Removes a member here; false when it was not one. */
  remove(member: Member): boolean {
    return this.members.delete(member.id);
  }

  /** Everyone but `self`, for room_info (per connection, as Level 1 counts). */
  othersOf(self: Member): MemberInfo[] {
    const others: MemberInfo[] = [];
    for (const m of this.presence.connections(this.id)) {
      if (m.connId !== self.id) others.push({ device_id: m.deviceId, identity: m.identity });
    }
    return others;
  }

  /** Every device here once (its newest connection's identity), for the Level 2 room reply. */
  memberList(): MemberInfo[] {
    const byDevice = new Map<string, string>();
    for (const m of this.presence.connections(this.id)) byDevice.set(m.deviceId, m.identity);
    return [...byDevice].map(([device_id, identity]) => ({ device_id, identity }));
  }

  deviceJoined(entry: PresenceEntry): void {
    this.announce('member_joined', entry);
  }

  deviceLeft(entry: PresenceEntry): void {
    this.announce('member_left', entry);
  }

  /** Tells the Level 2 members here of another device's join or leave. */
  private announce(type: 'member_joined' | 'member_left', who: PresenceEntry): void {
    let frame: string | undefined;
    for (const m of this.members.values()) {
      if (m.level !== 2 || m.deviceId === who.deviceId) continue;
      frame ??= memberEventFrame(type, this.id, { device_id: who.deviceId, identity: who.identity });
      m.sendText(frame);
    }
  }
}
