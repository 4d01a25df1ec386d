/**
 * The writer lease (store/writer-lease.ts): one row, `name` = 'writer', naming the server that
 * writes this database and until when its lease holds. Times are epoch milliseconds as plain
 * numbers, so that no backend's timestamp type comes into it.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../store.js';
import { types } from './column-types.js';

export function writerLease(dialect: Dialect): Migration {
  const t = types(dialect);
  const name = sql.raw(t.varchar(255));
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('writer_lease')
        .addColumn('name', sql.raw(t.varchar(32)), (c) => c.primaryKey())
        .addColumn('node_id', name, (c) => c.notNull())
        .addColumn('host', name, (c) => c.notNull())
        .addColumn('pid', t.bigint, (c) => c.notNull())
        .addColumn('acquired_ms', t.bigint, (c) => c.notNull())
        .addColumn('expires_ms', t.bigint, (c) => c.notNull())
        .$call((b) => (t.tableOptions ? b.modifyEnd(sql.raw(t.tableOptions)) : b))
        .execute();
    },
  };
}
