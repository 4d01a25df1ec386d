/**
 * Connection ids are assigned by the server, not the database, so that the batched writer can
 * insert a connection and later close it without reading anything back. They are
 * `milliseconds × 1000 + n`: increasing, unique within a process, above every id already
 * recorded, and exact in a JS number until the year 2255.
 * (A cluster will need a node component here; see docs/architecture.md.)
 */
export class ConnectionIds {
  private last: number;

  constructor(maxRecorded: number) {
    this.last = maxRecorded;
  }

  next(): number {
    const candidate = Date.now() * 1000;
    this.last = candidate > this.last ? candidate : this.last + 1;
    return this.last;
  }
}
