/**
 * What retention (store/retention.ts) looks rows up by: the time column of `messages` and
 * `room_queries`, so that each batch of old rows is found without a scan of the table; and, for
 * forgetting a room, the rows that name it (connections, room queries, devices' last room).
 * MySQL made the room_id and last_room_id indexes itself for the foreign keys, so only the time
 * columns are new there. `connections.disconnected_at` has its index since 0001.
 */
import { type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../store.js';

export function retentionIndexes(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('messages_sent_at').on('messages').column('sent_at').execute();
      await db.schema
        .createIndex('room_queries_queried_at')
        .on('room_queries')
        .column('queried_at')
        .execute();
      if (dialect === 'mysql') return;
      await db.schema.createIndex('connections_room').on('connections').column('room_id').execute();
      await db.schema.createIndex('room_queries_room').on('room_queries').column('room_id').execute();
      await db.schema.createIndex('devices_last_room').on('devices').column('last_room_id').execute();
    },
  };
}
