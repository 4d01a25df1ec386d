/**
 * A room's last N messages, in seq order, for resume and history without a database read. It
 * holds every message since it was created (consecutive seqs: every message of the room passes
 * through this process), up to its size; older ones are only in the database.
 */
import type { RoomMessage } from '../bus/bus.js';

export class MessageWindow {
  private readonly ring: (RoomMessage | undefined)[];
  private start = 0;
  private count = 0;

  /** `afterSeq`: the room's seq when the window was made; it holds what comes after. */
  constructor(
    readonly size: number,
    private afterSeq: number,
  ) {
    this.ring = new Array<RoomMessage | undefined>(size);
  }

  push(message: RoomMessage): void {
    if (this.count < this.size) {
      this.ring[(this.start + this.count++) % this.size] = message;
    } else {
      this.afterSeq = this.ring[this.start]!.seq;
      this.ring[this.start] = message;
      this.start = (this.start + 1) % this.size;
    }
  }

  /** Whether every message with seq > `seq` is here. */
  reachesBack(seq: number): boolean {
    return seq >= this.afterSeq;
  }

  /** Messages with `after` < seq ≤ `upTo` that pass `visible`, oldest first (reachesBack(after) assumed). */
  since(after: number, upTo: number, visible: (m: RoomMessage) => boolean): RoomMessage[] {
    const out: RoomMessage[] = [];
    for (let i = 0; i < this.count; i++) {
      const m = this.ring[(this.start + i) % this.size]!;
      if (m.seq > after && m.seq <= upTo && visible(m)) out.push(m);
    }
    return out;
  }

  /**
   * The newest `limit` messages with seq < `before` that pass `visible`, oldest first; undefined
   * when the window cannot tell (fewer than `limit` here and older ones exist in the database).
   */
  newestBefore(
    before: number,
    limit: number,
    visible: (m: RoomMessage) => boolean,
  ): RoomMessage[] | undefined {
    const out: RoomMessage[] = [];
    for (let i = this.count - 1; i >= 0 && out.length < limit; i--) {
      const m = this.ring[(this.start + i) % this.size]!;
      if (m.seq < before && visible(m)) out.push(m);
    }
    if (out.length < limit && this.afterSeq > 0) return undefined;
    return out.reverse();
  }
}
