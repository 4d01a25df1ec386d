/**
 * Level 2 envelopes name the sender's identity (`from.identity`) as it was when the message was
 * sent; history read back from the database needs it too, so messages keep it. Rows from before
 * this migration have none: reads fall back to the device's last identity.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../store.js';
import { types } from './column-types.js';

export function messageSenderIdentity(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('messages')
        .addColumn('from_identity', sql.raw(t.varchar(255)))
        .execute();
    },
  };
}
