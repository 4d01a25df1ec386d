/**
 * Row ids assigned by the server, not the database, so that the batched writer can insert a row
 * without reading anything back (a connection is later closed by its id), and so that a batch
 * written again after an unknown outcome inserts nothing twice (the id is the row's key).
 * They are `milliseconds × 1000 + n`: increasing, unique within a process, above every id already
 * recorded, and exact in a JS number until the year 2255.
 * Used for `connections` and `room_queries`. (A cluster will need a node component here; see
 * docs/architecture.md.)
 */
export class ServerIds {
  private last: number;

  constructor(maxRecorded: number) {
    this.last = maxRecorded;
  }

  next(): number {
    const candidate = Date.now() * 1000;
    this.last = candidate > this.last ? candidate : this.last + 1;
    return this.last;
  }

  /** Makes every later id larger than `maxRecorded` (an id found in the database or a spool). */
  raise(maxRecorded: number): void {
    if (maxRecorded > this.last) this.last = maxRecorded;
  }
}
