/**
 * Past messages of a room for resume and `history` (PROTOCOL.md Level 2): from the room's
 * in-memory window when it reaches back far enough, else from the database once every record
 * queued so far is committed (so the database is at least as fresh as the room's seq).
 */
import type { Bus, RoomMessage } from '../bus/bus.js';
import type { RecordWriter } from '../store/record-writer.js';
import type { MessageRow, Store } from '../store/store.js';
import type { Room } from './room.js';

/** Whether a device may see a message: broadcasts, and directed messages to it. */
export function visibleTo(deviceId: string): (m: RoomMessage) => boolean {
  return (m) => m.to === null || m.to === deviceId;
}

export class RoomHistory {
  constructor(
    private readonly store: Store,
    private readonly writer: RecordWriter,
    private readonly bus: Bus,
  ) {}

  /**
   * Every message with `after` < seq ≤ `upTo` that `deviceId` may see, oldest first (at most
   * `limit`). Rejects when the database is needed and unavailable.
   */
  async since(
    room: Room,
    deviceId: string,
    after: number,
    upTo: number,
    limit: number,
  ): Promise<RoomMessage[]> {
    const visible = visibleTo(deviceId);
    if (room.window?.reachesBack(after)) return room.window.since(after, upTo, visible).slice(0, limit);
    // A cluster: the window every node shares holds what other nodes may not have recorded yet.
    const recent = await this.bus.recent(room.id, after, upTo);
    if (recent) return recent.filter(visible).slice(0, limit);
    return this.read({
      roomId: room.id,
      deviceId,
      afterSeq: after,
      beforeSeq: upTo + 1,
      limit,
      newest: false,
    });
  }

  /** The newest `limit` messages with seq < `before` that `deviceId` may see, oldest first. */
  async before(room: Room, deviceId: string, before: number, limit: number): Promise<RoomMessage[]> {
    const fromWindow = room.window?.newestBefore(before, limit, visibleTo(deviceId));
    if (fromWindow) return fromWindow;
    return this.read({ roomId: room.id, deviceId, afterSeq: 0, beforeSeq: before, limit, newest: true });
  }

  private async read(query: Parameters<Store['readMessages']>[0]): Promise<RoomMessage[]> {
    await this.writer.until(this.writer.ticket);
    const rows = await this.store.readMessages(query);
    return rows.map((row) => fromRow(query.roomId, row));
  }
}

function fromRow(roomId: string, row: MessageRow): RoomMessage {
  return {
    roomId,
    seq: row.seq,
    node: '',
    senderId: 0,
    fromDeviceId: row.fromDeviceId,
    fromIdentity: row.fromIdentity,
    sentAt: row.sentAt,
    to: row.toDeviceId,
    payload: Buffer.from(row.content),
    text: row.content,
  };
}
