/**
 * The record: rooms, devices, connections, messages and room queries (the seed's five tables).
 *
 * A Store is the database behind the record. Reads happen when a device says hello (not on the
 * message path); writes arrive in batches from the RecordWriter, each batch one transaction,
 * applied in the order the records were made.
 */

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
      toDeviceId: string | null;
      content: string;
      sentAt: Timestamp;
    }
  | { kind: 'room_query'; deviceId: string; roomId: string; at: Timestamp };

export interface Store {
  readonly dialect: Dialect;
  /** Applies pending migrations; returns the names applied now. */
  migrate(): Promise<string[]>;
  getRoom(roomId: string): Promise<RoomRow | undefined>;
  /** Inserts a room; false when the ID is taken (the primary key decides). */
  insertRoom(roomId: string, createdAt: Timestamp): Promise<boolean>;
  getDevice(deviceId: string): Promise<DeviceRow | undefined>;
  /** Highest message seq recorded in a room, 0 for none. */
  lastSeq(roomId: string): Promise<number>;
  /** Highest connection id recorded, 0 for none. */
  maxConnectionId(): Promise<number>;
  /** Records `disconnected_at = at` on every connection still open; returns how many. */
  closeOpenConnections(at: Timestamp): Promise<number>;
  /** Writes the entries in one transaction, in order. */
  write(entries: readonly RecordEntry[]): Promise<void>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
