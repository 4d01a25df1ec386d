/**
 * A room's reserved seq. A server hands out a room's seqs in blocks it has first made durable
 * here, so that after a crash the room continues above every seq a client may have been sent,
 * even one whose message never reached the record. A clean stop writes the last seq back.
 */
import { type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../store.js';
import { types } from './column-types.js';

export function roomSeqReserved(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('rooms')
        .addColumn('seq_reserved', t.bigint, (c) => c.notNull().defaultTo(0))
        .execute();
    },
  };
}
