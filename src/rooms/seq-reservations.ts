/**
 * A room's seqs are handed out from blocks reserved in the record first (a `room_seq` record:
 * rooms.seq_reserved), and a block is used only once its reservation is durable. After a crash
 * the room continues above the reservation, so no seq a client was sent is ever used again, not
 * even one whose message never reached the record. The next block is asked for when half of the
 * current one is left, so in steady traffic nothing waits for it; a room that runs out waits
 * (its messages are held in order) and gets blocks twice as large from then on.
 */
import { DatabaseUnavailableError, type RecordWriter } from '../store/record-writer.js';
import type { Room } from './room.js';

/** Seqs reserved at a time at first. */
export const SEQ_BLOCK = 1024;
/** The largest block a busy room grows to. */
const MAX_SEQ_BLOCK = 1 << 20;

export class SeqReservations {
  /** Room loads waiting for their first block: refused when the record gets stuck. */
  private readonly loading = new Set<(err: Error) => void>();

  constructor(private readonly writer: RecordWriter) {
    writer.onState((state) => {
      if (state !== 'stuck') return;
      for (const reject of this.loading) reject(new DatabaseUnavailableError('the record cannot be written'));
      this.loading.clear();
    });
  }

  /**
   * For a room entering memory: resolves once it has a durable block ahead of its seq (at once
   * when a quarter of one is left from before); rejects while nothing can be made durable.
   */
  ready(room: Room): Promise<void> {
    if (room.seqLimit - room.seq > room.seqBlock / 4) {
      room.renewAt = room.seqLimit - Math.floor(room.seqBlock / 2);
      return Promise.resolve();
    }
    if (this.writer.stuck)
      return Promise.reject(new DatabaseUnavailableError('the record cannot be written'));
    return new Promise((resolve, reject) => {
      this.loading.add(reject);
      this.reserve(room, true, () => {
        this.loading.delete(reject);
        resolve();
      });
    });
  }

  /** The hot path's call when room.seq reached room.renewAt: the next block, unless one is coming. */
  renew(room: Room): void {
    if (!room.reserving) this.reserve(room, false);
  }

  /** A room ran out of durable seqs (its messages now wait): larger blocks, and one at once. */
  starved(room: Room): void {
    room.seqBlock = Math.min(MAX_SEQ_BLOCK, room.seqBlock * 2);
    if (!room.reserving) this.reserve(room, true);
  }

  private reserve(room: Room, urgent: boolean, then?: () => void): void {
    room.reserving = true;
    const through = room.seq + room.seqBlock;
    const { writer } = this;
    writer.append({ kind: 'room_seq', roomId: room.id, reserved: through });
    writer.whenDurable(
      writer.ticket,
      () => {
        room.reserving = false;
        if (through > room.seqLimit) room.seqLimit = through;
        room.renewAt = room.seqLimit - Math.floor(room.seqBlock / 2);
        then?.();
        if (!room.active) return;
        room.releaseHeld();
        if (room.seq >= room.renewAt && !room.reserving) this.reserve(room, false);
      },
      urgent,
    );
  }
}
