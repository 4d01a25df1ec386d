/**
 * The seed's five tables, plus `messages.seq` (per-room order). Indexes only for the queries the
 * server makes (every index costs each insert on the message path); MySQL adds its own for
 * foreign keys (those of `messages` are dropped again by 0003). Column types per backend come from column-types.ts.
 */
import {
  sql,
  type ColumnDefinitionBuilder,
  type CreateTableBuilder,
  type Kysely,
  type Migration,
} from 'kysely';
import type { Dialect } from '../store.js';
import { types } from './column-types.js';

export function initial(dialect: Dialect): Migration {
  const t = types(dialect);
  const ts = sql.raw(t.timestamp);
  const name = sql.raw(t.varchar(255));
  const code = sql.raw(t.varchar(8));
  const ip = sql.raw(t.varchar(45));
  // An id the database assigns on insert. On SQLite an INTEGER PRIMARY KEY is the rowid and is
  // assigned increasing without AUTOINCREMENT, whose bookkeeping table costs every insert (~25 %
  // of a message row; rows are never deleted, so ids are never reused).
  const serialId = (c: ColumnDefinitionBuilder) =>
    dialect === 'postgres'
      ? c.primaryKey().generatedByDefaultAsIdentity()
      : dialect === 'mysql'
        ? c.primaryKey().autoIncrement()
        : c.primaryKey();
  let tableOptions = t.tableOptions;
  const options = <T extends string, C extends string>(b: CreateTableBuilder<T, C>) =>
    tableOptions ? b.modifyEnd(sql.raw(tableOptions)) : b;
  return {
    async up(db: Kysely<unknown>) {
      if (dialect === 'mysql') tableOptions = await mysqlTableOptions(db);
      await db.schema
        .createTable('rooms')
        .addColumn('room_id', code, (c) => c.primaryKey())
        .addColumn('created_at', ts, (c) => c.notNull())
        .$call(options)
        .execute();

      await db.schema
        .createTable('devices')
        .addColumn('device_id', name, (c) => c.primaryKey())
        .addColumn('first_connected_at', ts, (c) => c.notNull())
        .addColumn('last_connected_at', ts, (c) => c.notNull())
        .addColumn('last_room_id', code, (c) => c.references('rooms.room_id'))
        .addColumn('last_identity', name, (c) => c.notNull())
        .$call(options)
        .execute();

      await db.schema
        .createTable('connections')
        // Assigned by the server (see ServerIds) so that the batched writer can close the row later.
        .addColumn('id', t.bigint, (c) => c.primaryKey())
        .addColumn('device_id', name, (c) => c.notNull().references('devices.device_id'))
        .addColumn('room_id', code, (c) => c.notNull().references('rooms.room_id'))
        .addColumn('identity', name, (c) => c.notNull())
        .addColumn('connected_at', ts, (c) => c.notNull())
        .addColumn('disconnected_at', ts)
        .addColumn('client_ip', ip, (c) => c.notNull())
        .$call(options)
        .execute();
      // Finding connections left open by a crash.
      await db.schema.createIndex('connections_open').on('connections').column('disconnected_at').execute();

      await db.schema
        .createTable('messages')
        .addColumn('id', t.bigint, serialId)
        .addColumn('from_device_id', name, (c) => c.notNull().references('devices.device_id'))
        .addColumn('to_device_id', name)
        .addColumn('room_id', code, (c) => c.notNull().references('rooms.room_id'))
        .addColumn('message_content', sql.raw(t.content), (c) => c.notNull())
        .addColumn('sent_at', ts, (c) => c.notNull())
        .addColumn('seq', t.bigint, (c) => c.notNull())
        .$call(options)
        .execute();
      // Order within a room, history and resume; also what makes a replayed batch insert nothing twice.
      await db.schema
        .createIndex('messages_room_seq')
        .on('messages')
        .columns(['room_id', 'seq'])
        .unique()
        .execute();

      await db.schema
        .createTable('room_queries')
        // Assigned by the server (see ServerIds): a replayed batch inserts nothing twice.
        .addColumn('id', t.bigint, (c) => c.primaryKey())
        .addColumn('device_id', name, (c) => c.notNull().references('devices.device_id'))
        .addColumn('room_id', code, (c) => c.notNull().references('rooms.room_id'))
        .addColumn('queried_at', ts, (c) => c.notNull())
        .$call(options)
        .execute();
    },
  };
}

/**
 * `utf8mb4_bin` is a PAD SPACE collation: 'pad' and 'pad ' would be one device_id. The tables
 * take the server's NO PAD binary collation instead (MariaDB `utf8mb4_nopad_bin`, MySQL 8
 * `utf8mb4_0900_bin`), so keys compare byte for byte as on SQLite and PostgreSQL; MySQL 5.7 has
 * none and keeps utf8mb4_bin.
 */
async function mysqlTableOptions(db: Kysely<unknown>): Promise<string> {
  const { rows } = await sql<{ v: string }>`select version() as v`.execute(db);
  const version = rows[0]?.v ?? '';
  const collation = /mariadb/i.test(version)
    ? 'utf8mb4_nopad_bin'
    : Number.parseInt(version, 10) >= 8
      ? 'utf8mb4_0900_bin'
      : 'utf8mb4_bin';
  return `engine=InnoDB default character set utf8mb4 collate ${collation}`;
}
