/**
 * Retention's statements (retention.ts), written once for every backend with `?` placeholders:
 * SqlStore runs them on MySQL/PostgreSQL (and an in-memory SQLite), the SQLite writer thread on
 * its own connection. Each delete takes at most `limit` rows, found through the time column's
 * index (migration 0006): MySQL deletes with ORDER BY … LIMIT (it refuses a LIMIT in a subquery
 * of the same table); the others by primary key from a limited subquery (SQLite: the rowid).
 */
import type { Dialect, RetainedTable } from './store.js';

/** Each table's time column: a row older than the cutoff by it goes. */
export const TIME_COLUMN: Record<RetainedTable, string> = {
  messages: 'sent_at',
  room_queries: 'queried_at',
  // Null while open: `<` never holds for null, so open connections stay.
  connections: 'disconnected_at',
};

/** A statement and the order of its parameters. */
export interface RetentionStatement {
  sql: string;
  params: (cutoff: string, roomId: string, limit: number) => (string | number)[];
}

/**
 * A room idle since the cutoff (`?` = the cutoff, four times): created before it, and no
 * connection open or closed since, no room query since, and its last message (highest seq)
 * older. The last message is read through the (room_id, seq) index, not the room's every row.
 */
const IDLE = `r.created_at < ?
  and not exists (select 1 from connections c where c.room_id = r.room_id
                  and (c.disconnected_at is null or c.disconnected_at >= ?))
  and not exists (select 1 from room_queries q where q.room_id = r.room_id and q.queried_at >= ?)
  and coalesce((select m.sent_at from messages m where m.room_id = r.room_id order by m.seq desc limit 1),
               r.created_at) < ?`;

function limitedDelete(dialect: Dialect, table: string, where: string, order: string): string {
  return dialect === 'mysql'
    ? `delete from ${table} where ${where} order by ${order} limit ?`
    : `delete from ${table} where id in (select id from ${table} where ${where} limit ?)`;
}

export interface RetentionSql {
  deleteOld: Record<RetainedTable, RetentionStatement>;
  countOld: Record<RetainedTable, RetentionStatement>;
  idleRooms: RetentionStatement & {
    params: (cutoff: string, after: string, limit: number) => (string | number)[];
  };
  deleteRoomMessages: RetentionStatement;
  /** Selects the room (one row) if it is still idle. */
  roomIdle: RetentionStatement;
  /** Run in order in one transaction, once roomIdle found the room idle. */
  forget: RetentionStatement[];
}

export function retentionSql(dialect: Dialect): RetentionSql {
  const byTable = (make: (table: RetainedTable, column: string) => RetentionStatement) =>
    Object.fromEntries(
      (Object.keys(TIME_COLUMN) as RetainedTable[]).map((t) => [t, make(t, TIME_COLUMN[t])]),
    ) as Record<RetainedTable, RetentionStatement>;
  const room = (sql: string): RetentionStatement => ({ sql, params: (_c, roomId) => [roomId] });
  return {
    deleteOld: byTable((table, column) => ({
      sql: limitedDelete(dialect, table, `${column} < ?`, column),
      params: (cutoff, _r, limit) => [cutoff, limit],
    })),
    countOld: byTable((table, column) => ({
      sql: `select count(*) as n from ${table} where ${column} < ?`,
      params: (cutoff) => [cutoff],
    })),
    idleRooms: {
      sql: `select r.room_id as room_id from rooms r where r.room_id > ? and ${IDLE} order by r.room_id limit ?`,
      params: (cutoff, after, limit) => [after, cutoff, cutoff, cutoff, cutoff, limit],
    },
    deleteRoomMessages: {
      sql: limitedDelete(dialect, 'messages', 'room_id = ?', 'seq'),
      params: (_c, roomId, limit) => [roomId, limit],
    },
    roomIdle: {
      sql: `select r.room_id as room_id from rooms r where r.room_id = ? and ${IDLE}`,
      params: (cutoff, roomId) => [roomId, cutoff, cutoff, cutoff, cutoff],
    },
    forget: [
      room('delete from messages where room_id = ?'),
      room('delete from room_queries where room_id = ?'),
      room('delete from connections where room_id = ?'),
      room('update devices set last_room_id = null where last_room_id = ?'),
      room('delete from rooms where room_id = ?'),
    ],
  };
}

/** `?` placeholders → PostgreSQL's `$1`, `$2`, … */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
