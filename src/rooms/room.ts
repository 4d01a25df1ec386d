/** A room live in this process: its members here and its message counter. */
import type { RoomMessage } from '../bus/bus.js';
import type { MemberInfo } from '../protocol/encode.js';

/** A connection in a room, as the room sees it. */
export interface Member {
  /** Connection id (the `connections` row). */
  readonly id: number;
  readonly deviceId: string;
  readonly identity: string;
  /** Sends a room message to this member. */
  deliver(message: RoomMessage): void;
  /** Ends the connection because a newer one of the same device took its place. */
  replace(): void;
}

export class Room {
  readonly members = new Map<number, Member>();
  /** Highest seq assigned in this room. */
  seq: number;

  constructor(
    readonly id: string,
    lastSeq: number,
  ) {
    this.seq = lastSeq;
  }

  /** Bus handler: deliver to every member here except the sender. */
  readonly deliver = (message: RoomMessage): void => {
    for (const member of this.members.values()) {
      if (member.id !== message.senderId) member.deliver(message);
    }
  };

  /** Everyone but `self`, for room_info. */
  othersOf(self: Member): MemberInfo[] {
    const others: MemberInfo[] = [];
    for (const m of this.members.values()) {
      if (m !== self) others.push({ device_id: m.deviceId, identity: m.identity });
    }
    return others;
  }
}
