/**
 * SQLite writes through prepared statements: used by the writer thread, and inline for an
 * in-memory database (which another thread cannot open).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { visitRecords, type EncodedRecords, type RecordVisitor } from './record-queue.js';
import type { RecordConflict, Timestamp } from './store.js';

export interface SqliteWrites {
  /** The records in one transaction, in order; returns the rows found there in another form. */
  writeAll(records: EncodedRecords): RecordConflict[];
  /** true if inserted, false if the code is taken. */
  insertRoom(roomId: string, createdAt: Timestamp, seqReserved: number): boolean;
  /** Closes every open connection row; returns how many. */
  closeOpenConnections(at: Timestamp): number;
}

/**
 * Every insert is idempotent, as in SqlStore: a batch written twice inserts no row twice. A row
 * that is already there is compared with the record: the same is a rewrite, anything else a
 * conflict, returned to be reported (never dropped without a word).
 * `pace`, if given, runs before each record of a batch (inside its transaction).
 */
export function sqliteWrites(db: BetterSqlite3.Database, pace?: () => void): SqliteWrites {
  const s = {
    device: db.prepare(
      `insert into devices (device_id, first_connected_at, last_connected_at, last_room_id, last_identity)
       values (?, ?, ?, ?, ?)
       on conflict (device_id) do update set last_connected_at = excluded.last_connected_at,
         last_room_id = excluded.last_room_id, last_identity = excluded.last_identity`,
    ),
    connectionOpen: db.prepare(
      `insert into connections (id, device_id, room_id, identity, connected_at, disconnected_at, client_ip)
       values (?, ?, ?, ?, ?, null, ?) on conflict (id) do nothing`,
    ),
    connectionClose: db.prepare(`update connections set disconnected_at = ? where id = ?`),
    message: db.prepare(
      `insert into messages (from_device_id, from_identity, to_device_id, room_id, message_content, sent_at, seq)
       values (?, ?, ?, ?, ?, ?, ?) on conflict (room_id, seq) do nothing`,
    ),
    roomQuery: db.prepare(
      `insert into room_queries (id, device_id, room_id, queried_at) values (?, ?, ?, ?)
       on conflict (id) do nothing`,
    ),
    room: db.prepare(
      `insert into rooms (room_id, created_at, seq_reserved) values (?, ?, ?) on conflict (room_id) do nothing`,
    ),
    // Only ever raised (see RecordEntry room_seq); a reservation given back sets it.
    roomSeq: db.prepare(`update rooms set seq_reserved = max(seq_reserved, ?) where room_id = ?`),
    roomSeqGivenBack: db.prepare(`update rooms set seq_reserved = ? where room_id = ?`),
    closeOpen: db.prepare(`update connections set disconnected_at = ? where disconnected_at is null`),
    messageAt: db.prepare(
      `select from_device_id, to_device_id, message_content from messages where room_id = ? and seq = ?`,
    ),
    connectionById: db.prepare(`select device_id, room_id, connected_at from connections where id = ?`),
    roomQueryById: db.prepare(`select device_id, room_id, queried_at from room_queries where id = ?`),
  };
  let conflicts: RecordConflict[] = [];
  const visitor: RecordVisitor = {
    message: (roomId, seq, from, fromIdentity, to, content, sentAt) => {
      if (s.message.run(from, fromIdentity, to, roomId, content, sentAt, seq).changes === 1) return;
      const row = s.messageAt.get(roomId, seq) as
        { from_device_id: string; to_device_id: string | null; message_content: string } | undefined;
      if (!row || row.from_device_id !== from || row.to_device_id !== to || row.message_content !== content) {
        conflicts.push({ kind: 'message', key: `${roomId}#${seq}` });
      }
    },
    device: (deviceId, identity, roomId, at) => s.device.run(deviceId, at, at, roomId, identity),
    connectionOpen: (id, deviceId, roomId, identity, clientIp, at) => {
      if (s.connectionOpen.run(id, deviceId, roomId, identity, at, clientIp).changes === 1) return;
      const row = s.connectionById.get(id) as { device_id: string; room_id: string; connected_at: string };
      if (row.device_id !== deviceId || row.room_id !== roomId || row.connected_at !== at) {
        conflicts.push({ kind: 'connection_open', key: String(id) });
      }
    },
    connectionClose: (id, at) => s.connectionClose.run(at, id),
    roomQuery: (id, deviceId, roomId, at) => {
      if (s.roomQuery.run(id, deviceId, roomId, at).changes === 1) return;
      const row = s.roomQueryById.get(id) as { device_id: string; room_id: string; queried_at: string };
      if (row.device_id !== deviceId || row.room_id !== roomId || row.queried_at !== at) {
        conflicts.push({ kind: 'room_query', key: String(id) });
      }
    },
    room: (roomId, at, seqReserved) => s.room.run(roomId, at, seqReserved),
    roomSeq: (roomId, reserved) => s.roomSeq.run(reserved, roomId),
    roomSeqGivenBack: (roomId, reserved) => s.roomSeqGivenBack.run(reserved, roomId),
  };
  const transaction = db.transaction((records: EncodedRecords) => visitRecords(records, visitor, pace));
  const writeAll = (records: EncodedRecords): RecordConflict[] => {
    conflicts = [];
    transaction(records);
    return conflicts;
  };
  return {
    writeAll,
    insertRoom: (roomId, createdAt, seqReserved) => s.room.run(roomId, createdAt, seqReserved).changes === 1,
    closeOpenConnections: (at) => s.closeOpen.run(at).changes,
  };
}

/** Opens a SQLite file (or `:memory:`) with the pragmas every connection of ours uses. */
export function configure(db: BetterSqlite3.Database): BetterSqlite3.Database {
  // WAL: readers never wait for the writer. NORMAL: a committed transaction survives a crash of
  // the process (the WAL is fsynced at checkpoints, which the writer thread runs off the event loop).
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Measured on the relay's write pattern (rows spread over many rooms' index pages): a 64 MiB
  // page cache and a checkpoint every ~40 MiB of WAL instead of ~4 MiB halve the cost of a row
  // (14 → 6 µs); the WAL file is cut back to 64 MiB after each checkpoint.
  db.pragma('cache_size = -65536');
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma('journal_size_limit = 67108864');
  return db;
}
