/**
 * Row ids assigned by the server, not the database, so that the batched writer can insert a row
 * without reading anything back (a connection is later closed by its id), and so that a batch
 * written again after an unknown outcome inserts nothing twice (the id is the row's key).
 * They are `milliseconds × 1000 + n`: increasing, unique within a process, above every id already
 * recorded, and exact in a JS number until the year 2255.
 * Used for `connections` and `room_queries`.
 *
 * In a cluster, servers sharing one database each have a `slot` (0 to ID_SLOTS - 1): every id a
 * server hands out is ≡ its slot (mod ID_SLOTS), so two nodes never hand out the same id, even in
 * the same millisecond. A node then hands out at most 1000 / ID_SLOTS ids per millisecond before
 * it runs ahead of the clock (which it then does by 16 per id, as a single server does by 1).
 */
export const ID_SLOTS = 16;

export class ServerIds {
  private last: number;
  private slot: number | undefined;

  /** Without `slot`, ids are unique within this process only (one server per database). */
  constructor(maxRecorded: number, slot?: number) {
    if (slot !== undefined && !(Number.isInteger(slot) && slot >= 0 && slot < ID_SLOTS)) {
      throw new RangeError(`id slot ${String(slot)}: an integer from 0 to ${ID_SLOTS - 1}`);
    }
    this.last = maxRecorded;
    this.slot = slot;
  }

  next(): number {
    const candidate = Date.now() * 1000;
    if (this.slot === undefined) {
      this.last = candidate > this.last ? candidate : this.last + 1;
      return this.last;
    }
    // The first id of our residue at or above both the clock and last + 1.
    const from = candidate > this.last ? candidate : this.last + 1;
    this.last = from + ((this.slot - (from % ID_SLOTS) + ID_SLOTS) % ID_SLOTS);
    return this.last;
  }

  /** A node that lost its slot (cut off past its TTL) continues on another one. */
  useSlot(slot: number): void {
    if (!(Number.isInteger(slot) && slot >= 0 && slot < ID_SLOTS)) {
      throw new RangeError(`id slot ${String(slot)}: an integer from 0 to ${ID_SLOTS - 1}`);
    }
    this.slot = slot;
  }

  /** Makes every later id larger than `maxRecorded` (an id found in the database or a spool). */
  raise(maxRecorded: number): void {
    if (maxRecorded > this.last) this.last = maxRecorded;
  }
}
