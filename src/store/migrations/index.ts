/**
 * Versioned migrations, one list for every backend. Column types that differ per backend come
 * from `types(dialect)` (column-types.ts); everything else is written once.
 */
import type { Migration } from 'kysely';
import type { Dialect } from '../store.js';
import { initial } from './0001-initial.js';
import { messageSenderIdentity } from './0002-message-sender-identity.js';
import { messagesWithoutForeignKeys } from './0003-messages-without-foreign-keys.js';
import { writerLease } from './0004-writer-lease.js';
import { roomSeqReserved } from './0005-room-seq-reserved.js';
import { retentionIndexes } from './0006-retention-indexes.js';

/** Name → migration, in order. Names sort lexically, as Kysely's Migrator requires. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001-initial': initial(dialect),
    '0002-message-sender-identity': messageSenderIdentity(dialect),
    '0003-messages-without-foreign-keys': messagesWithoutForeignKeys(dialect),
    '0004-writer-lease': writerLease(dialect),
    '0005-room-seq-reserved': roomSeqReserved(dialect),
    '0006-retention-indexes': retentionIndexes(dialect),
  };
}
