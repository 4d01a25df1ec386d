/** Retention's statements (retention-sql.ts) on a better-sqlite3 connection: the writer thread's. */
import type BetterSqlite3 from 'better-sqlite3';
import { retentionSql } from './retention-sql.js';
import type { WriterRequest } from './writer-thread-protocol.js';

type RetentionRequest = Extract<WriterRequest, { op: 'retention' }>;

export function sqliteRetention(
  db: BetterSqlite3.Database,
): (req: RetentionRequest) => { value: number; rooms?: string[] } {
  const r = retentionSql('sqlite');
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepared = (sql: string) => {
    let s = cache.get(sql);
    if (!s) cache.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const forget = db.transaction((cutoff: string, roomId: string): number => {
    if (!prepared(r.roomIdle.sql).get(...r.roomIdle.params(cutoff, roomId, 0))) return 0;
    for (const s of r.forget) prepared(s.sql).run(...s.params(cutoff, roomId, 0));
    return 1;
  });
  return ({ call, table, cutoff, roomId, limit }) => {
    switch (call) {
      case 'deleteOld': {
        const s = r.deleteOld[table];
        return { value: prepared(s.sql).run(...s.params(cutoff, roomId, limit)).changes };
      }
      case 'countOld': {
        const s = r.countOld[table];
        const row = prepared(s.sql).get(...s.params(cutoff, roomId, limit)) as { n: number };
        return { value: row.n };
      }
      case 'idleRooms': {
        const s = r.idleRooms;
        const rows = prepared(s.sql).all(...s.params(cutoff, roomId, limit)) as { room_id: string }[];
        return { value: rows.length, rooms: rows.map((row) => row.room_id) };
      }
      case 'deleteRoomMessages': {
        const s = r.deleteRoomMessages;
        return { value: prepared(s.sql).run(...s.params(cutoff, roomId, limit)).changes };
      }
      case 'forgetRoom':
        return { value: forget(cutoff, roomId) };
    }
  };
}
