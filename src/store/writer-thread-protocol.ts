/**
 * Messages between a store and its writer thread (writer-thread.ts).
 *
 * A batch crosses as flat arrays of primitives (see `encodeRecords`), not as record objects:
 * structured clone copies a flat array several times faster, and the copy runs on the event loop.
 * A large batch is sent as several `stage` chunks, one per event-loop turn, then a `write` with
 * the last chunk that commits them all in one transaction: no single turn stalls on the copy.
 */
import type { RecordEntry, Timestamp } from './store.js';
import { roomQueryId } from './store.js';

/** Records flattened: a kind tag, then that kind's fields in a fixed order (see decodeRecords). */
export type RecordColumns = (string | number | null)[];

export type WriterRequest =
  | { id: number; op: 'stage'; records: RecordColumns }
  | { id: number; op: 'write'; records: RecordColumns; count: number }
  | { id: number; op: 'insertRoom'; roomId: string; createdAt: Timestamp }
  | { id: number; op: 'closeOpenConnections'; at: Timestamp }
  /** Answered once the thread is up (and, for a database server, connected). */
  | { id: number; op: 'ready' }
  | { id: number; op: 'close' };

export type WriterResponse =
  { id: number; ok: true; value: number } | { id: number; ok: false; error: string };

const MESSAGE = 0;
const DEVICE = 1;
const CONNECTION_OPEN = 2;
const CONNECTION_CLOSE = 3;
const ROOM_QUERY = 4;

/** Appends entries[from, to) to `out` in the flat form. */
export function encodeRecords(
  entries: readonly RecordEntry[],
  from: number,
  to: number,
  out: RecordColumns,
): RecordColumns {
  for (let i = from; i < to; i++) {
    const e = entries[i]!;
    switch (e.kind) {
      case 'message':
        out.push(MESSAGE, e.roomId, e.seq, e.fromDeviceId, e.fromIdentity, e.toDeviceId, e.content, e.sentAt);
        break;
      case 'device':
        out.push(DEVICE, e.deviceId, e.identity, e.roomId, e.at);
        break;
      case 'connection_open':
        out.push(CONNECTION_OPEN, e.id, e.deviceId, e.roomId, e.identity, e.clientIp, e.at);
        break;
      case 'connection_close':
        out.push(CONNECTION_CLOSE, e.id, e.at);
        break;
      case 'room_query':
        out.push(ROOM_QUERY, roomQueryId(e), e.deviceId, e.roomId, e.at);
        break;
    }
  }
  return out;
}

/** Calls the visitor's method for each record of the flat form, in order. */
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
}

export function visitRecords(c: RecordColumns, v: RecordVisitor): void {
  const s = c as string[];
  const n = c as number[];
  let i = 0;
  while (i < c.length) {
    switch (c[i]) {
      case MESSAGE:
        v.message(
          s[i + 1]!,
          n[i + 2]!,
          s[i + 3]!,
          s[i + 4]!,
          c[i + 5] as string | null,
          s[i + 6]!,
          s[i + 7]!,
        );
        i += 8;
        break;
      case DEVICE:
        v.device(s[i + 1]!, s[i + 2]!, s[i + 3]!, s[i + 4]!);
        i += 5;
        break;
      case CONNECTION_OPEN:
        v.connectionOpen(n[i + 1]!, s[i + 2]!, s[i + 3]!, s[i + 4]!, s[i + 5]!, s[i + 6]!);
        i += 7;
        break;
      case CONNECTION_CLOSE:
        v.connectionClose(n[i + 1]!, s[i + 2]!);
        i += 3;
        break;
      case ROOM_QUERY:
        v.roomQuery(n[i + 1]!, s[i + 2]!, s[i + 3]!, s[i + 4]!);
        i += 5;
        break;
      default:
        throw new Error(`bad record tag ${String(c[i])} at ${i}`);
    }
  }
}

/** The flat form back into entries, appended to `out` (MySQL's and PostgreSQL's thread). */
export function decodeRecords(c: RecordColumns, out: RecordEntry[]): RecordEntry[] {
  visitRecords(c, {
    message: (roomId, seq, fromDeviceId, fromIdentity, toDeviceId, content, sentAt) =>
      out.push({ kind: 'message', roomId, seq, fromDeviceId, fromIdentity, toDeviceId, content, sentAt }),
    device: (deviceId, identity, roomId, at) => out.push({ kind: 'device', deviceId, identity, roomId, at }),
    connectionOpen: (id, deviceId, roomId, identity, clientIp, at) =>
      out.push({ kind: 'connection_open', id, deviceId, roomId, identity, clientIp, at }),
    connectionClose: (id, at) => out.push({ kind: 'connection_close', id, at }),
    roomQuery: (id, deviceId, roomId, at) => out.push({ kind: 'room_query', id, deviceId, roomId, at }),
  });
  return out;
}
