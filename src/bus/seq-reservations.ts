/**
 * A room's seqs are handed out from blocks reserved in the record first (a `room_seq` record:
 * rooms.seq_reserved), and a block is used only once its reservation is durable. After a crash
 * the room continues above the reservation, so no seq a client was sent is ever used again, not
 * even one whose message never reached the record. The next block is asked for when half of the
 * current one is left, so in steady traffic nothing waits for it; a room that runs out waits
 * (its messages are held in order) and gets blocks twice as large from then on.
 */

/**
 * What reservations need of the record: the RecordWriter, seen through the few members used
 * here (the bus does not look down into the store).
 */
export interface SeqRecord {
  /** Neither the database nor the spool takes records now. */
  readonly stuck: boolean;
  /** The ticket of the last record appended. */
  readonly ticket: number;
  onState(listener: (state: string) => void): void;
  append(entry: { kind: 'room_seq'; roomId: string; reserved: number }): void;
  /** Calls `done` once every record up to `ticket` is durable. */
  whenDurable(ticket: number, done: () => void, urgent?: boolean): void;
}

/** No seq can be made durable now: the record cannot be written. */
export class SeqsUnavailableError extends Error {
  override name = 'SeqsUnavailableError';
  constructor() {
    super('the record cannot be written');
  }
}

/** Seqs reserved at a time at first. */
export const SEQ_BLOCK = 1024;
/** The largest block a busy room grows to. */
export const MAX_SEQ_BLOCK = 1 << 20;
/** Messages a room holds while it waits for seqs; past it they are refused (unavailable). */
export const MAX_HELD = 10_000;

/** A room's seq counter on this node. */
export class RoomSeqs {
  /** Highest seq assigned. */
  seq: number;
  /** Highest seq whose reservation is durable: seq never passes it. */
  limit: number;
  /** When seq reaches this, the next block is asked for. */
  renewAt: number;
  /** Seqs reserved at a time (grows for a busy room). */
  block = SEQ_BLOCK;
  /** A reservation is on its way to the record. */
  reserving = false;
  /** False once the room is closed on this node. */
  active = true;
  /** Messages accepted while no durable seq was left, in order (undefined when none). */
  private held: (() => void)[] | undefined;

  constructor(
    readonly roomId: string,
    last: number,
    /** The durable reservation it comes with (0: none). */
    reserved: number,
  ) {
    this.seq = last;
    this.limit = Math.max(reserved, last);
    this.renewAt = this.limit;
  }

  /** Whether a message may take the next seq now (else it waits: see hold). */
  get canNumber(): boolean {
    return this.held === undefined && this.seq < this.limit;
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
}

export class SeqReservations {
  /** Reservations waited for (room opens among them): refused when the record gets stuck. */
  private readonly loading = new Set<(err: Error) => void>();

  constructor(private readonly writer: SeqRecord) {
    writer.onState((state) => {
      if (state !== 'stuck') return;
      for (const reject of this.loading) reject(new SeqsUnavailableError());
      this.loading.clear();
    });
  }

  /**
   * For a room opening on this node: resolves once it has a durable block ahead of its seq (at
   * once when a quarter of one is left from before); rejects while nothing can be made durable.
   */
  ready(room: RoomSeqs): Promise<void> {
    if (room.limit - room.seq > room.block / 4) {
      room.renewAt = room.limit - Math.floor(room.block / 2);
      return Promise.resolve();
    }
    if (this.writer.stuck) return Promise.reject(new SeqsUnavailableError());
    return new Promise((resolve, reject) => {
      this.loading.add(reject);
      this.reserve(room, true, () => {
        this.loading.delete(reject);
        resolve();
      });
    });
  }

  /**
   * Makes `through` a room's durable reservation (rooms.seq_reserved only rises): resolves once it
   * is; rejects while nothing can be made durable. For a cluster bus, whose counter is in Redis.
   */
  reserveThrough(roomId: string, through: number): Promise<void> {
    if (this.writer.stuck) return Promise.reject(new SeqsUnavailableError());
    const { writer } = this;
    return new Promise((resolve, reject) => {
      this.loading.add(reject);
      writer.append({ kind: 'room_seq', roomId, reserved: through });
      writer.whenDurable(
        writer.ticket,
        () => {
          this.loading.delete(reject);
          resolve();
        },
        true,
      );
    });
  }

  /** The hot path's call when room.seq reached room.renewAt: the next block, unless one is coming. */
  renew(room: RoomSeqs): void {
    if (!room.reserving) this.reserve(room, false);
  }

  /** A room ran out of durable seqs (its messages now wait): larger blocks, and one at once. */
  starved(room: RoomSeqs): void {
    room.block = Math.min(MAX_SEQ_BLOCK, room.block * 2);
    if (!room.reserving) this.reserve(room, true);
  }

  private reserve(room: RoomSeqs, urgent: boolean, then?: () => void): void {
    room.reserving = true;
    const through = room.seq + room.block;
    const { writer } = this;
    writer.append({ kind: 'room_seq', roomId: room.roomId, reserved: through });
    writer.whenDurable(
      writer.ticket,
      () => {
        room.reserving = false;
        if (through > room.limit) room.limit = through;
        room.renewAt = room.limit - Math.floor(room.block / 2);
        then?.();
        if (!room.active) return;
        room.releaseHeld();
        if (room.seq >= room.renewAt && !room.reserving) this.reserve(room, false);
      },
      urgent,
    );
  }
}
