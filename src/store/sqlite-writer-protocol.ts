/** Messages between SqliteStore and its writer thread. */
import type { RecordEntry, Timestamp } from './store.js';

export type WriterRequest =
  | { id: number; op: 'write'; entries: readonly RecordEntry[] }
  | { id: number; op: 'insertRoom'; roomId: string; createdAt: Timestamp }
  | { id: number; op: 'closeOpenConnections'; at: Timestamp }
  | { id: number; op: 'close' };

export type WriterResponse =
  { id: number; ok: true; value: number } | { id: number; ok: false; error: string };
