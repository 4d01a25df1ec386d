/**
 * The record: rooms, devices, connections, messages and room queries (the seed's five tables).
 *
 * A Store is the database behind the record. Reads happen when a device says hello (not on the
 * message path); writes arrive in batches from the RecordWriter, each batch one transaction,
 * applied in the order the records were made.
 */
import type { EncodedRecords } from './record-queue.js';

export type Dialect = 'sqlite' | 'mysql' | 'postgres';

/** Timestamps travel as ISO 8601 UTC strings with milliseconds: `2026-11-26T10:00:00.123Z`. */
export type Timestamp = string;

export interface RoomRow {
  roomId: string;
  createdAt: Timestamp;
}

export interface DeviceRow {
  deviceId: string;
  firstConnectedAt: Timestamp;
  lastConnectedAt: Timestamp;
  lastRoomId: string | null;
  lastIdentity: string;
}

export type RecordEntry =
  /**
   * A room was created (Store.claimsRoomsByRead): insert it, or nothing if the row is there.
   * It comes before every record that names the room.
   */
  | { kind: 'room'; roomId: string; at: Timestamp }
  /** A device was assigned to a room: upsert `devices` (first_connected_at kept). */
  | { kind: 'device'; deviceId: string; identity: string; roomId: string; at: Timestamp }
  | {
      kind: 'connection_open';
      id: number;
      deviceId: string;
      roomId: string;
      identity: string;
      clientIp: string;
      at: Timestamp;
    }
  | { kind: 'connection_close'; id: number; at: Timestamp }
  | {
      kind: 'message';
      roomId: string;
      seq: number;
      fromDeviceId: string;
      fromIdentity: string;
      toDeviceId: string | null;
      content: string;
      sentAt: Timestamp;
    }
  /**
   * A query_room. `id` is server-assigned (ServerIds) by the RecordWriter before the record is
   * first written or spooled, so that writing it again inserts nothing twice.
   */
  | { kind: 'room_query'; id?: number; deviceId: string; roomId: string; at: Timestamp };

/** A room_query's id; the RecordWriter assigns it before the record is first written. */
export function roomQueryId(e: Extract<RecordEntry, { kind: 'room_query' }>): number {
  if (e.id === undefined) throw new Error('room_query record without an id');
  return e.id;
}

/** A recorded room message, as history and resume read it back. */
export interface MessageRow {
  seq: number;
  fromDeviceId: string;
  fromIdentity: string;
  toDeviceId: string | null;
  content: string;
  sentAt: Timestamp;
}

/**
 * Messages of one room that `deviceId` may see (broadcasts, and directed messages to it), in
 * seq order. `afterSeq` < seq < `beforeSeq`; with `newest`, the last `limit` of that range
 * (still returned oldest first), else the first `limit`.
 */
export interface MessageQuery {
  roomId: string;
  deviceId: string;
  afterSeq: number;
  beforeSeq: number;
  limit: number;
  newest: boolean;
}

export interface Store {
  readonly dialect: Dialect;
  /**
   * This server is the database's only writer (embedded SQLite): a new room code is checked with
   * a read and its row goes out with the next batch (a `room` record), not an INSERT on the hello
   * path. False where several servers may share the database: there the primary key decides at
   * once (insertRoom).
   */
  readonly claimsRoomsByRead: boolean;
  /** Applies pending migrations; returns the names applied now. */
  migrate(): Promise<string[]>;
  getRoom(roomId: string): Promise<RoomRow | undefined>;
  /** Inserts a room; false when the ID is taken (the primary key decides). */
  insertRoom(roomId: string, createdAt: Timestamp): Promise<boolean>;
  getDevice(deviceId: string): Promise<DeviceRow | undefined>;
  /** Highest message seq recorded in a room, 0 for none. */
  lastSeq(roomId: string): Promise<number>;
  /** Recorded messages for history and resume (see MessageQuery). */
  readMessages(query: MessageQuery): Promise<MessageRow[]>;
  /** Highest connection id recorded, 0 for none. */
  maxConnectionId(): Promise<number>;
  /** Highest room_queries id recorded, 0 for none. */
  maxRoomQueryId(): Promise<number>;
  /** Records `disconnected_at = at` on every connection still open; returns how many. */
  closeOpenConnections(at: Timestamp): Promise<number>;
  /**
   * Writes the entries in one transaction, in order. Idempotent: a batch written again (after a
   * failure whose outcome was unknown, or from the spool) inserts no row twice. Every room_query
   * entry must carry its id.
   */
  write(entries: readonly RecordEntry[]): Promise<void>;
  /** The same for records in the record queue's form (what the RecordWriter hands over). */
  writeEncoded(records: EncodedRecords): Promise<void>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
