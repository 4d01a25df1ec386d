/**
 * Messages between a store and its writer thread (writer-thread.ts). A batch crosses as the
 * byte ranges of the record queue's shared buffers (record-queue.ts): posting one copies nothing.
 */
import type { RecordBytes } from './record-queue.js';
import type { RecordConflict, RetainedTable, Timestamp } from './store.js';

export type WriterRequest =
  /** Writes the records in one transaction; answered with their count once committed. */
  | { id: number; op: 'write'; parts: RecordBytes[]; count: number }
  | { id: number; op: 'insertRoom'; roomId: string; createdAt: Timestamp; seqReserved: number }
  | { id: number; op: 'closeOpenConnections'; at: Timestamp }
  /** One of retention's statements (retention-sql.ts), answered with rows changed or counted. */
  | {
      id: number;
      op: 'retention';
      call: 'deleteOld' | 'countOld' | 'idleRooms' | 'deleteRoomMessages' | 'forgetRoom';
      table: RetainedTable;
      cutoff: Timestamp;
      roomId: string;
      limit: number;
    }
  /** Answered once the thread is up (and, for a database server, connected). */
  | { id: number; op: 'ready' }
  | { id: number; op: 'close' };

export type WriterResponse =
  | { id: number; ok: true; value: number; conflicts?: RecordConflict[]; rooms?: string[] }
  | { id: number; ok: false; error: string };
