/**
 * MySQL 5.7+ and MariaDB 10.6+ through mysql2's pool. Timestamps are DATETIME(3) holding UTC:
 * written as `YYYY-MM-DD HH:MM:SS.mmm`, read back as Dates in UTC (`timezone: 'Z'`).
 * The pool reconnects by itself: a broken connection is dropped from it, and the next request
 * opens a new one (failing within the connect timeout while the server is away).
 */
import { createPool, escape, format, type Pool } from 'mysql2';
import { Kysely, MysqlDialect } from 'kysely';
import type { Database } from './schema.js';
import { SqlStore } from './sql-store.js';
import type { RecordEntry, Timestamp } from './store.js';
import { urlParts, type PoolOptions } from './pool-options.js';

export class MysqlStore extends SqlStore {
  private constructor(private readonly pool: Pool) {
    super('mysql', new Kysely<Database>({ dialect: new MysqlDialect({ pool }) }));
  }

  /** `url`: mysql://user:password@host:port/database (mariadb:// too). */
  static open(url: string, options: PoolOptions): MysqlStore {
    const u = urlParts(url);
    if (!u.database) throw new Error('the MySQL URL names no database (mysql://user:password@host/database)');
    const pool = createPool({
      host: u.host,
      port: u.port ?? 3306,
      user: u.user,
      password: u.password,
      database: u.database,
      socketPath: u.params.get('socket') ?? undefined,
      connectionLimit: options.max,
      maxIdle: Math.min(options.idle, options.max),
      idleTimeout: 60_000,
      connectTimeout: options.connectTimeoutMs,
      enableKeepAlive: true,
      charset: 'utf8mb4_bin',
      timezone: 'Z',
      supportBigNumbers: true,
      bigNumberStrings: false,
      // mysql2 inlines parameters client-side, scanning the whole statement for placeholders even
      // when there are none: a statement built with its values already escaped (the messages
      // INSERT, mysqlMessagesInsert) is sent as it is. Otherwise mysql2's own format, as configured.
      queryFormat: (sql: string, values: unknown) =>
        Array.isArray(values) && values.length === 0 ? sql : format(sql, values as never, false, 'Z'),
    });
    return new MysqlStore(pool);
  }

  /** ISO 8601 → DATETIME(3) text in UTC. */
  protected override toDb(ts: Timestamp): string {
    return ts.slice(0, 10) + ' ' + ts.slice(11, 23);
  }

  protected override mysqlMessagesInsert(run: Extract<RecordEntry, { kind: 'message' }>[]): string {
    let text =
      'insert into `messages` (`from_device_id`, `from_identity`, `to_device_id`, `room_id`, ' +
      '`message_content`, `sent_at`, `seq`) values ';
    for (let i = 0; i < run.length; i++) {
      const e = run[i]!;
      text +=
        (i ? ',(' : '(') +
        escape(e.fromDeviceId) +
        ',' +
        escape(e.fromIdentity) +
        ',' +
        (e.toDeviceId === null ? 'NULL' : escape(e.toDeviceId)) +
        ',' +
        escape(e.roomId) +
        ',' +
        escape(e.content) +
        ',' +
        escape(this.toDb(e.sentAt)) +
        ',' +
        String(e.seq) +
        ')';
    }
    // Written twice (a batch whose commit outcome was unknown), a row stays as it is.
    return text + ' on duplicate key update `seq` = `seq`';
  }

  protected override fromDb(value: unknown): Timestamp {
    if (value instanceof Date) return value.toISOString();
    const s = String(value);
    return /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(s) ? new Date(s.replace(' ', 'T') + 'Z').toISOString() : s;
  }

  /** For tests and tools: the raw pool. */
  get rawPool(): Pool {
    return this.pool;
  }
}
