/**
 * Room assignment for a hello (PROTOCOL.md, Level 1 rule 3): join the named room, go back to the
 * device's last room, or create a new one.
 */
import { isRoomId } from '../protocol/frames.js';
import type { RoomStatus } from '../protocol/encode.js';
import type { RoomPolicy } from '../auth/room-policy.js';
import type { Directory } from './directory.js';
import { randomRoomId } from './room-id.js';
import { SEQ_BLOCK } from '../bus/seq-reservations.js';

export type Assignment = { roomId: string; status: RoomStatus } | { notFound: string };
/** The assignment a RoomPolicy forbids, with the reason said to the client. */
export type Refusal = { refused: string };

/** Attempts at a fresh room code before giving up (a collision is ~1 in 2.8 × 10^12 per try). */
const CREATE_ATTEMPTS = 16;

export class Lobby {
  constructor(private readonly directory: Directory) {}

  /** `requested` is the hello's room_id, already upper-cased. */
  assign(deviceId: string, requested: string | undefined, now: string): Promise<Assignment>;
  /** The same, refused where `policy` (if any) does not allow it. */
  assign(
    deviceId: string,
    requested: string | undefined,
    now: string,
    policy: RoomPolicy | undefined,
  ): Promise<Assignment | Refusal>;
  async assign(
    deviceId: string,
    requested: string | undefined,
    now: string,
    policy?: RoomPolicy,
  ): Promise<Assignment | Refusal> {
    if (requested !== undefined) {
      // Before the lookup: a forbidden code is refused whether or not it exists.
      if (policy && !policy.mayEnter(requested)) return { refused: `Token does not allow room ${requested}` };
      if (!isRoomId(requested) || !(await this.directory.roomExists(requested)))
        return { notFound: requested };
      return { roomId: requested, status: 'joined_existing' };
    }
    const last = await this.directory.lastRoomOf(deviceId);
    if (last !== undefined && (await this.directory.roomExists(last))) {
      if (policy && !policy.mayEnter(last))
        return { refused: "Token does not allow the device's last room; name a room it allows" };
      return { roomId: last, status: 'reconnected' };
    }
    if (policy && !policy.mayCreate) return { refused: 'Token does not allow creating a room' };
    for (let i = 0; i < CREATE_ATTEMPTS; i++) {
      const roomId = randomRoomId();
      // The primary key decides uniqueness; a taken code just means another draw.
      if (await this.directory.createRoom(roomId, now, SEQ_BLOCK)) return { roomId, status: 'created_new' };
    }
    throw new Error(`no free room code after ${CREATE_ATTEMPTS} attempts`);
  }
}
