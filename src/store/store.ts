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
   * It comes before every record that names the room, with the room's first seq block reserved
   * (`seqReserved`): a room whose row is durable has its block durable too.
   */
  | { kind: 'room'; roomId: string; at: Timestamp; seqReserved: number }
  /**
   * Seqs up to `reserved` may be handed out in the room (rooms.seq_reserved): a room's next seq
   * after a crash starts above it, so that no seq a client saw is used again. Only ever raises
   * the column (`GREATEST`/`max`): servers sharing a database reserve blocks of one room, and
   * their writes may commit in any order.
   */
  | { kind: 'room_seq'; roomId: string; reserved: number }
  /**
   * An unused reservation handed back (Directory.giveBack: a clean stop, a cache eviction): sets
   * rooms.seq_reserved to `reserved`, the room's last seq, lower than it was. Records are
   * applied in order, so it follows the room_seq records it undoes.
   */
  | { kind: 'room_seq_given_back'; roomId: string; reserved: number }
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

/**
 * A record whose row the database already held in another form (a key written by someone else):
 * not an idempotent rewrite. The writer reports it (log and count); the row stays as it was.
 */
export interface RecordConflict {
  kind: RecordEntry['kind'];
  /** The row's key: `ROOM#seq` for a message, the id for a connection or room query. */
  key: string;
}

/** Where a room's seq stands in the record. */
export interface RoomSeq {
  /** Highest seq in `messages`. */
  recorded: number;
  /** rooms.seq_reserved: every seq a server may have handed out is at most this. */
  reserved: number;
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
  /**
   * Inserts a room with `seqReserved` as its reserved seq; false when the ID is taken (the
   * primary key decides).
   */
  insertRoom(roomId: string, createdAt: Timestamp, seqReserved?: number): Promise<boolean>;
  getDevice(deviceId: string): Promise<DeviceRow | undefined>;
  /** A room's highest recorded message seq and its reserved seq (0 for none). */
  roomSeq(roomId: string): Promise<RoomSeq>;
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
   * entry must carry its id. Returns the records whose keys the database held with other
   * contents (left as they were).
   */
  write(entries: readonly RecordEntry[]): Promise<RecordConflict[]>;
  /** The same for records in the record queue's form (what the RecordWriter hands over). */
  writeEncoded(records: EncodedRecords): Promise<RecordConflict[]>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * One transaction (see writer-lease.ts): takes the writer lease for `me` until `nowMs + ttlMs`
   * when it is free, already ours, expired, or `isHolderDead(holder)`; otherwise names the holder.
   * Two servers trying at once never both get it.
   */
  tryAcquireLease(
    me: LeaseClaimant,
    nowMs: number,
    ttlMs: number,
    isHolderDead: (holder: LeaseHolder) => boolean,
  ): Promise<LeaseAttempt>;
  /** Moves our lease's expiry to `nowMs + ttlMs`; false when the lease is no longer `nodeId`'s. */
  renewLease(nodeId: string, nowMs: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if `nodeId` holds it. */
  releaseLease(nodeId: string): Promise<void>;
  /** Who holds the writer lease now, if anyone. */
  readLease(): Promise<LeaseHolder | undefined>;
  /**
   * Retention (retention.ts): deletes at most `limit` rows of `table` older than `cutoff` (for
   * connections: closed before it; open ones stay), in one short statement; returns how many.
   */
  deleteOlderThan(table: RetainedTable, cutoff: Timestamp, limit: number): Promise<number>;
  /** How many rows deleteOlderThan would delete in all. */
  countOlderThan(table: RetainedTable, cutoff: Timestamp): Promise<number>;
  /**
   * Up to `limit` rooms, in code order after `afterRoomId`, created before `cutoff` with no
   * message, connection (open, or closed since) or room query since then.
   */
  idleRooms(cutoff: Timestamp, afterRoomId: string, limit: number): Promise<string[]>;
  /** Deletes at most `limit` messages of a room; returns how many. */
  deleteRoomMessages(roomId: string, limit: number): Promise<number>;
  /**
   * In one transaction, if the room is still idle since `cutoff`: deletes its messages,
   * connections and room queries, clears it as devices' last room, deletes its row. False if
   * it was not idle (or is gone).
   */
  forgetRoom(roomId: string, cutoff: Timestamp): Promise<boolean>;
}

/** The tables retention deletes old rows from, by their time column. */
export type RetainedTable = 'messages' | 'room_queries' | 'connections';

/** A server asking for the writer lease. */
export interface LeaseClaimant {
  nodeId: string;
  host: string;
  pid: number;
}

/** The writer lease's row: its holder and until when it holds (epoch milliseconds). */
export interface LeaseHolder extends LeaseClaimant {
  acquiredMs: number;
  expiresMs: number;
}

/** `previous`: the holder whose lease was taken over (expired, or its process is gone). */
export type LeaseAttempt =
  { acquired: true; previous?: LeaseHolder } | { acquired: false; holder: LeaseHolder };
