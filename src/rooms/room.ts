/** A room live in this process: its members here, its message counter and its recent messages. */
import type { RoomMessage } from '../bus/bus.js';
import { memberEventFrame, type MemberInfo } from '../protocol/encode.js';
import { MessageWindow } from './message-window.js';
import { SEQ_BLOCK } from './seq-reservations.js';
import type { TrafficSink } from './traffic.js';

/** Messages a room holds while it waits for seqs; past it they are refused (unavailable). */
const MAX_HELD = 10_000;

/** A connection in a room, as the room sees it. */
export interface Member {
  /** Connection id (the `connections` row). */
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
}

export class Room {
  readonly members = new Map<number, Member>();
  /** Connections per device here: presence is per device (a replaced connection is no leave). */
  private readonly devices = new Map<string, number>();
  /** Highest seq assigned in this room. */
  seq: number;
  /** Highest seq whose reservation is durable (SeqReservations): seq never passes it. */
  seqLimit: number;
  /** When seq reaches this, the next block is asked for. */
  renewAt: number;
  /** Seqs reserved at a time (grows for a busy room). */
  seqBlock = SEQ_BLOCK;
  /** A reservation is on its way to the record. */
  reserving = false;
  /** False once the room left memory (its last member left). */
  active = true;
  /** Messages accepted while no durable seq was left, in order (undefined when none). */
  private held: (() => void)[] | undefined;
  /**
   * The last messages, kept once a Level 2 member has been here (Level 1 clients cannot resume,
   * so a room of them pays nothing for it). Undefined until then.
   */
  window: MessageWindow | undefined;

  constructor(
    readonly id: string,
    lastSeq: number,
    /** The durable reservation it comes with (0: none). */
    reserved: number,
    private readonly windowSize: number,
    private readonly traffic: TrafficSink,
  ) {
    this.seq = lastSeq;
    this.seqLimit = Math.max(reserved, lastSeq);
    this.renewAt = this.seqLimit;
  }

  /** Whether a message may take the next seq now (else it waits: see hold). */
  get canNumber(): boolean {
    return this.held === undefined && this.seq < this.seqLimit;
  }

  /** Keeps a message until seqs are reserved; false when too many wait already. */
  hold(admit: () => void): boolean {
    this.held ??= [];
    if (this.held.length >= MAX_HELD) return false;
    this.held.push(admit);
    return true;
  }

  /** A block became durable: the held messages go on, in order (some may wait again). */
  releaseHeld(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    for (const admit of held) admit();
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

  /** Whether a device has a connection here. */
  hasDevice(deviceId: string): boolean {
    return this.devices.has(deviceId);
  }

  /** Adds a member; tells the other Level 2 members when its device was not here yet. */
  add(member: Member): void {
    this.members.set(member.id, member);
    if (member.level === 2 && !this.window && this.windowSize > 0) {
      this.window = new MessageWindow(this.windowSize, this.seq);
    }
    const n = this.devices.get(member.deviceId) ?? 0;
    this.devices.set(member.deviceId, n + 1);
    if (n === 0) this.announce('member_joined', member);
  }

  /** Removes a member; tells the other Level 2 members when it was its device's last connection. */
  remove(member: Member): boolean {
    if (!this.members.delete(member.id)) return false;
    const n = (this.devices.get(member.deviceId) ?? 1) - 1;
    if (n > 0) {
      this.devices.set(member.deviceId, n);
    } else {
      this.devices.delete(member.deviceId);
      this.announce('member_left', member);
    }
    return true;
  }

  /** Everyone but `self`, for room_info (per connection, as Level 1 counts). */
  othersOf(self: Member): MemberInfo[] {
    const others: MemberInfo[] = [];
    for (const m of this.members.values()) {
      if (m !== self) others.push({ device_id: m.deviceId, identity: m.identity });
    }
    return others;
  }

  /** Every device here once (its newest connection's identity), for the Level 2 room reply. */
  memberList(): MemberInfo[] {
    const byDevice = new Map<string, string>();
    for (const m of this.members.values()) byDevice.set(m.deviceId, m.identity);
    return [...byDevice].map(([device_id, identity]) => ({ device_id, identity }));
  }

  private announce(type: 'member_joined' | 'member_left', who: Member): void {
    let frame: string | undefined;
    for (const m of this.members.values()) {
      if (m.level !== 2 || m.deviceId === who.deviceId) continue;
      frame ??= memberEventFrame(type, this.id, { device_id: who.deviceId, identity: who.identity });
      m.sendText(frame);
    }
  }
}
