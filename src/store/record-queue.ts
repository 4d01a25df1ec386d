/**
 * The record queue: records waiting for the database, kept as bytes in shared memory rather than
 * as objects on the heap.
 *
 * A record is encoded once, when it is appended (a tag, then its fields: strings as a length and
 * UTF-8 bytes, numbers as float64). Nothing of it stays on the JS heap: a message's text and its
 * record object die young instead of surviving every scavenge until their batch commits. With
 * records queued as objects, relay 500×2 at 20,000 msg/s kept the last ~0.2-0.4 s of records
 * alive, so each young-generation scavenge copied thousands of them (3-4 ms pauses, the relay's
 * p99). A batch is a list of byte ranges of SharedArrayBuffers: handing it to the writer thread
 * copies nothing, and sending it again after a failure costs nothing either. The bytes of a
 * range never change once taken (appends go past it), so both threads may read them at once.
 */
import type { RecordEntry } from './store.js';
import { roomQueryId } from './store.js';

/** A run of whole records in one chunk. */
export interface RecordBytes {
  buffer: SharedArrayBuffer;
  start: number;
  end: number;
}

/** A batch: `count` records, in order, in the byte ranges `parts`. */
export interface EncodedRecords {
  count: number;
  parts: RecordBytes[];
}

/** Calls the visitor's method for each record, in order. */
export interface RecordVisitor {
  message(
    roomId: string,
    seq: number,
    from: string,
    fromIdentity: string,
    to: string | null,
    content: string,
    sentAt: string,
  ): void;
  device(deviceId: string, identity: string, roomId: string, at: string): void;
  connectionOpen(
    id: number,
    deviceId: string,
    roomId: string,
    identity: string,
    clientIp: string,
    at: string,
  ): void;
  connectionClose(id: number, at: string): void;
  roomQuery(id: number, deviceId: string, roomId: string, at: string): void;
  room(roomId: string, at: string, seqReserved: number): void;
  roomSeq(roomId: string, reserved: number): void;
  roomSeqGivenBack(roomId: string, reserved: number): void;
}

const MESSAGE = 0;
const DEVICE = 1;
const CONNECTION_OPEN = 2;
const CONNECTION_CLOSE = 3;
const ROOM_QUERY = 4;
const ROOM = 5;
const ROOM_SEQ = 6;
const ROOM_SEQ_GIVEN_BACK = 7;

/** A string's length field that means null. */
const NULL = 0xffffffff;
/**
 * Bytes of a chunk: a few hundred ms of records at tens of thousands a second. A record larger
 * than this gets a chunk of its own size.
 */
const CHUNK_BYTES = 1 << 20;
/**
 * Spent chunks kept for reuse. Left to the garbage collector instead, chunks outlived their use by
 * minutes: a SharedArrayBuffer is freed only once both threads have collected their handles, and
 * in the 10-minute soak (relay 500×2 at ~27,000 msg/s) RSS went from 260 to 700 MiB.
 */
const POOL_CHUNKS = 16;

interface Chunk {
  buffer: SharedArrayBuffer;
  bytes: Buffer;
  /** Where the next record is written. */
  writeAt: number;
  /** Where the first record not yet taken starts. */
  readAt: number;
  /** Records written, and taken, so far. */
  written: number;
  taken: number;
  /** Parts of this chunk in batches not yet released. */
  lent: number;
  /** No longer written to nor taken from: reusable once nothing is lent. */
  retired: boolean;
}

export class RecordQueue {
  /** Chunks holding records not yet taken; the last one is written to. */
  private chunks: Chunk[] = [];
  private size = 0;
  /** Chunks in use (being filled, waiting, or lent to a batch), by buffer. */
  private readonly inUse = new Map<SharedArrayBuffer, Chunk>();
  private readonly pool: SharedArrayBuffer[] = [];

  /** Records waiting. */
  get length(): number {
    return this.size;
  }

  /**
   * The hot path's push: a message whose content is `content`'s bytes (the frame's own UTF-8,
   * copied as it is rather than encoded again from the text), without a record object.
   */
  pushMessage(
    roomId: string,
    seq: number,
    fromDeviceId: string,
    fromIdentity: string,
    toDeviceId: string | null,
    content: Buffer,
    sentAt: string,
  ): void {
    const c = this.room(
      1 +
        8 +
        24 +
        content.length +
        3 *
          (roomId.length +
            fromDeviceId.length +
            fromIdentity.length +
            (toDeviceId?.length ?? 0) +
            sentAt.length),
    );
    const b = c.bytes;
    let o = c.writeAt;
    b[o++] = MESSAGE;
    o = str(b, o, roomId);
    o = b.writeDoubleLE(seq, o);
    o = str(b, o, fromDeviceId);
    o = str(b, o, fromIdentity);
    o = toDeviceId === null ? u32(b, o, NULL) : str(b, o, toDeviceId);
    o = u32(b, o, content.length);
    b.set(content, o); // a builtin copy: Buffer#copy's call into C++ costs more for ~100 bytes
    o += content.length;
    o = str(b, o, sentAt);
    c.writeAt = o;
    c.written++;
    this.size++;
  }

  /** Encodes a record at the end of the queue. A room_query must carry its id. */
  push(e: RecordEntry): void {
    if (e.kind === 'message') {
      // One layout for messages: the hot path's (off it, the text's bytes are made here).
      const { roomId, seq, fromDeviceId, fromIdentity, toDeviceId, content, sentAt } = e;
      return this.pushMessage(
        roomId,
        seq,
        fromDeviceId,
        fromIdentity,
        toDeviceId,
        Buffer.from(content),
        sentAt,
      );
    }
    const c = this.room(bound(e));
    const b = c.bytes;
    let o = c.writeAt;
    switch (e.kind) {
      case 'device':
        b[o++] = DEVICE;
        o = str(b, o, e.deviceId);
        o = str(b, o, e.identity);
        o = str(b, o, e.roomId);
        o = str(b, o, e.at);
        break;
      case 'connection_open':
        b[o++] = CONNECTION_OPEN;
        o = b.writeDoubleLE(e.id, o);
        o = str(b, o, e.deviceId);
        o = str(b, o, e.roomId);
        o = str(b, o, e.identity);
        o = str(b, o, e.clientIp);
        o = str(b, o, e.at);
        break;
      case 'connection_close':
        b[o++] = CONNECTION_CLOSE;
        o = b.writeDoubleLE(e.id, o);
        o = str(b, o, e.at);
        break;
      case 'room_query':
        b[o++] = ROOM_QUERY;
        o = b.writeDoubleLE(roomQueryId(e), o);
        o = str(b, o, e.deviceId);
        o = str(b, o, e.roomId);
        o = str(b, o, e.at);
        break;
      case 'room':
        b[o++] = ROOM;
        o = str(b, o, e.roomId);
        o = str(b, o, e.at);
        o = b.writeDoubleLE(e.seqReserved, o);
        break;
      case 'room_seq':
      case 'room_seq_given_back':
        b[o++] = e.kind === 'room_seq' ? ROOM_SEQ : ROOM_SEQ_GIVEN_BACK;
        o = str(b, o, e.roomId);
        o = b.writeDoubleLE(e.reserved, o);
        break;
    }
    c.writeAt = o;
    c.written++;
    this.size++;
  }

  /** Removes and returns the first `max` records (fewer if fewer wait), or undefined if none. */
  take(max: number): EncodedRecords | undefined {
    if (this.size === 0 || max < 1) return undefined;
    const parts: RecordBytes[] = [];
    let count = 0;
    while (count < max) {
      const c = this.chunks[0]!;
      const waiting = c.written - c.taken;
      const n = Math.min(waiting, max - count);
      if (n > 0) {
        const end = n === waiting ? c.writeAt : skip(c.bytes, c.readAt, n);
        parts.push({ buffer: c.buffer, start: c.readAt, end });
        c.lent++;
        c.readAt = end;
        c.taken += n;
        count += n;
      }
      if (c.taken < c.written || this.chunks.length === 1) break;
      this.retire(this.chunks.shift()!);
    }
    this.size -= count;
    return { count, parts };
  }

  /**
   * A batch taken from this queue is done with (committed, or copied elsewhere): its chunks may be
   * reused. Both threads have finished reading it by then (the writer thread answers a batch
   * after reading all of it).
   */
  release(records: EncodedRecords): void {
    for (const part of records.parts) {
      const c = this.inUse.get(part.buffer);
      if (!c) continue; // not this queue's (a batch encoded from the spool)
      c.lent--;
      this.reuse(c);
    }
  }

  private retire(c: Chunk): void {
    c.retired = true;
    this.reuse(c);
  }

  private reuse(c: Chunk): void {
    if (!c.retired || c.lent > 0) return;
    this.inUse.delete(c.buffer);
    if (c.bytes.length === CHUNK_BYTES && this.pool.length < POOL_CHUNKS) this.pool.push(c.buffer);
  }

  /** A chunk with room for `bytes` more, the current one if it has it. */
  private room(bytes: number): Chunk {
    const last = this.chunks[this.chunks.length - 1];
    if (last && last.bytes.length - last.writeAt >= bytes) return last;
    // A chunk whose records are all taken is left to the batches that still refer to it.
    if (last && last.taken === last.written) this.retire(this.chunks.pop()!);
    const buffer =
      (bytes <= CHUNK_BYTES && this.pool.pop()) || new SharedArrayBuffer(Math.max(CHUNK_BYTES, bytes));
    const chunk: Chunk = {
      buffer,
      bytes: Buffer.from(buffer),
      writeAt: 0,
      readAt: 0,
      written: 0,
      taken: 0,
      lent: 0,
      retired: false,
    };
    this.chunks.push(chunk);
    this.inUse.set(buffer, chunk);
    return chunk;
  }
}

/** The records of `entries` as one batch (a spool's batch, a store's write). */
export function encodeEntries(entries: readonly RecordEntry[]): EncodedRecords {
  const q = new RecordQueue();
  for (const e of entries) q.push(e);
  return q.take(entries.length) ?? { count: 0, parts: [] };
}

/** The batch back into entries (for the spool, and stores that write entries). */
export function decodeEntries(records: EncodedRecords): RecordEntry[] {
  const out: RecordEntry[] = [];
  visitRecords(records, {
    message: (roomId, seq, fromDeviceId, fromIdentity, toDeviceId, content, sentAt) =>
      out.push({ kind: 'message', roomId, seq, fromDeviceId, fromIdentity, toDeviceId, content, sentAt }),
    device: (deviceId, identity, roomId, at) => out.push({ kind: 'device', deviceId, identity, roomId, at }),
    connectionOpen: (id, deviceId, roomId, identity, clientIp, at) =>
      out.push({ kind: 'connection_open', id, deviceId, roomId, identity, clientIp, at }),
    connectionClose: (id, at) => out.push({ kind: 'connection_close', id, at }),
    roomQuery: (id, deviceId, roomId, at) => out.push({ kind: 'room_query', id, deviceId, roomId, at }),
    room: (roomId, at, seqReserved) => out.push({ kind: 'room', roomId, at, seqReserved }),
    roomSeq: (roomId, reserved) => out.push({ kind: 'room_seq', roomId, reserved }),
    roomSeqGivenBack: (roomId, reserved) => out.push({ kind: 'room_seq_given_back', roomId, reserved }),
  });
  return out;
}

/** How many of the batch's records are messages (read from their tags: nothing is decoded). */
export function countMessages(records: EncodedRecords): number {
  let messages = 0;
  for (const part of records.parts) {
    const b = Buffer.from(part.buffer, part.start, part.end - part.start);
    for (let o = 0; o < b.length; o = skip(b, o, 1)) if (b[o] === MESSAGE) messages++;
  }
  return messages;
}

/** `beforeEach`, if given, is called before each record is visited (the SQLite writer paces itself there). */
export function visitRecords(records: EncodedRecords, v: RecordVisitor, beforeEach?: () => void): void {
  for (const part of records.parts) {
    const b = Buffer.from(part.buffer, part.start, part.end - part.start);
    const r = new Reader(b);
    while (r.at < b.length) {
      beforeEach?.();
      switch (b[r.at++]) {
        case MESSAGE:
          v.message(r.str(), r.num(), r.str(), r.str(), r.strOrNull(), r.str(), r.str());
          break;
        case DEVICE:
          v.device(r.str(), r.str(), r.str(), r.str());
          break;
        case CONNECTION_OPEN:
          v.connectionOpen(r.num(), r.str(), r.str(), r.str(), r.str(), r.str());
          break;
        case CONNECTION_CLOSE:
          v.connectionClose(r.num(), r.str());
          break;
        case ROOM_QUERY:
          v.roomQuery(r.num(), r.str(), r.str(), r.str());
          break;
        case ROOM:
          v.room(r.str(), r.str(), r.num());
          break;
        case ROOM_SEQ:
          v.roomSeq(r.str(), r.num());
          break;
        case ROOM_SEQ_GIVEN_BACK:
          v.roomSeqGivenBack(r.str(), r.num());
          break;
        default:
          throw new Error(`bad record tag ${String(b[r.at - 1])} at ${r.at - 1}`);
      }
    }
  }
}

class Reader {
  at = 0;
  constructor(private readonly b: Buffer) {}

  num(): number {
    const n = this.b.readDoubleLE(this.at);
    this.at += 8;
    return n;
  }

  str(): string {
    const s = this.strOrNull();
    if (s === null) throw new Error(`null string at ${this.at - 4}`);
    return s;
  }

  strOrNull(): string | null {
    const len = this.b.readUInt32LE(this.at);
    this.at += 4;
    if (len === NULL) return null;
    const s = this.b.toString('utf8', this.at, this.at + len);
    this.at += len;
    return s;
  }
}

/** Longest string written byte by byte when it is ASCII (ids, timestamps, addresses). */
const SHORT = 64;

/** Writes a string's length and UTF-8 bytes at `o` (room for both was made); returns the end. */
function str(b: Buffer, o: number, s: string): number {
  const n = s.length;
  if (n <= SHORT) {
    // Most fields are short ASCII: a loop the JIT inlines beats Buffer#write's call overhead.
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[o + 4 + i] = c;
    }
    if (i === n) return u32(b, o, n) + n;
  }
  const len = b.write(s, o + 4, 'utf8');
  return u32(b, o, len) + len;
}

/** Writes `n` as a little-endian uint32 at `o`; returns the end. */
function u32(b: Buffer, o: number, n: number): number {
  b[o] = n;
  b[o + 1] = n >>> 8;
  b[o + 2] = n >>> 16;
  b[o + 3] = n >>> 24;
  return o + 4;
}

/** Most bytes a record can take: 3 UTF-8 bytes per UTF-16 unit, fixed fields and lengths. */
function bound(e: Exclude<RecordEntry, { kind: 'message' }>): number {
  switch (e.kind) {
    case 'device':
      return 1 + 16 + 3 * (e.deviceId.length + e.identity.length + e.roomId.length + e.at.length);
    case 'connection_open':
      return (
        1 +
        8 +
        20 +
        3 * (e.deviceId.length + e.roomId.length + e.identity.length + e.clientIp.length + e.at.length)
      );
    case 'connection_close':
      return 1 + 8 + 4 + 3 * e.at.length;
    case 'room_query':
      return 1 + 8 + 12 + 3 * (e.deviceId.length + e.roomId.length + e.at.length);
    case 'room':
      return 1 + 8 + 8 + 3 * (e.roomId.length + e.at.length);
    case 'room_seq':
    case 'room_seq_given_back':
      return 1 + 4 + 8 + 3 * e.roomId.length;
  }
}

/** The offset just past the `n` records that start at `o`. */
function skip(b: Buffer, o: number, n: number): number {
  for (let i = 0; i < n; i++) {
    switch (b[o++]) {
      case MESSAGE:
        o = skipStrings(b, o, 1) + 8;
        o = skipStrings(b, o, 5);
        break;
      case DEVICE:
        o = skipStrings(b, o, 4);
        break;
      case CONNECTION_OPEN:
        o = skipStrings(b, o + 8, 5);
        break;
      case CONNECTION_CLOSE:
        o = skipStrings(b, o + 8, 1);
        break;
      case ROOM_QUERY:
        o = skipStrings(b, o + 8, 3);
        break;
      case ROOM:
        o = skipStrings(b, o, 2) + 8;
        break;
      case ROOM_SEQ:
      case ROOM_SEQ_GIVEN_BACK:
        o = skipStrings(b, o, 1) + 8;
        break;
      default:
        throw new Error(`bad record tag ${String(b[o - 1])} at ${o - 1}`);
    }
  }
  return o;
}

/**
 * The offset just past the `count` strings that start at `o`. Not a closure inside skip: one was
 * made per call, and countMessages calls skip once per record.
 */
function skipStrings(b: Buffer, o: number, count: number): number {
  for (let i = 0; i < count; i++) {
    const len = b.readUInt32LE(o);
    o += 4 + (len === NULL ? 0 : len);
  }
  return o;
}
