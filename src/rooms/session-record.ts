/**
 * What a session records (through the RecordWriter, so in the order it happened): the device and
 * the opening of each stay in a room, its end, and room_info queries.
 */
import type { RecordWriter } from '../store/record-writer.js';
import { isoNow } from '../store/timestamp.js';
import type { Directory } from './directory.js';

/** The connection a record is about. */
export interface RecordedConnection {
  /** Connection id: one `connections` row per stay in a room. */
  readonly id: number;
  readonly deviceId: string;
  readonly identity: string;
  readonly clientIp: string;
}

/** The connection entered `roomId` at `at`: the device's row, its last room, the connection row. */
export function recordEntered(
  writer: RecordWriter,
  directory: Directory,
  conn: RecordedConnection,
  roomId: string,
  at: string,
): void {
  writer.append({ kind: 'device', deviceId: conn.deviceId, identity: conn.identity, roomId, at });
  directory.setLastRoom(conn.deviceId, roomId); // after its record: see Directory's eviction
  writer.append({
    kind: 'connection_open',
    id: conn.id,
    deviceId: conn.deviceId,
    roomId,
    identity: conn.identity,
    clientIp: conn.clientIp,
    at,
  });
}

/** The stay of connection `id` in its room ended now. */
export function recordLeft(writer: RecordWriter, id: number): void {
  writer.append({ kind: 'connection_close', id, at: isoNow() });
}

/** The device asked who is in its room (query_room). */
export function recordQuery(writer: RecordWriter, deviceId: string, roomId: string, at: string): void {
  writer.append({ kind: 'room_query', deviceId, roomId, at });
}
