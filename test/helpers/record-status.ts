/**
 * The record writer as a user sees it: the `/` status fields about the database, and the
 * `messages` of a room, checked against what was sent.
 */
import assert from 'node:assert/strict';
import type { TestServer } from './server.js';
import { waitFor } from './wait.js';

export interface RecordStatus {
  databaseWrites: 'ok' | 'behind' | 'failing' | 'unknown';
  pendingRecords: number;
  spooledRecords: number;
}

export async function recordStatus(srv: TestServer): Promise<RecordStatus> {
  const res = await fetch(`http://127.0.0.1:${srv.port}/`);
  assert.equal(res.status, 200);
  return (await res.json()) as RecordStatus;
}

/** Waits for `databaseWrites: ok` with nothing pending; returns that status. */
export function waitForRecordsWritten(srv: TestServer): Promise<RecordStatus> {
  return waitFor(
    'the status to say ok with nothing pending',
    async () => {
      const s = await recordStatus(srv);
      return s.databaseWrites === 'ok' && s.pendingRecords === 0 && s;
    },
    3000,
    10,
  );
}

/** Asserts that `messages` holds exactly `sent` for the room, once each, as seq 1..N, from `from`. */
export async function assertMessagesRecorded(
  srv: TestServer,
  roomId: string,
  sent: readonly string[],
  from: string,
): Promise<void> {
  const rows = await srv.rows<{ seq: number; message_content: string; from_device_id: string }>(
    'select seq, message_content, from_device_id from messages where room_id = ? order by seq',
    roomId,
  );
  assert.equal(rows.length, sent.length);
  assert.deepEqual(
    rows.map((r) => r.seq),
    sent.map((_, i) => i + 1),
    'seq 1..N without gaps',
  );
  assert.deepEqual(
    rows.map((r) => r.message_content),
    sent,
  );
  assert.ok(rows.every((r) => r.from_device_id === from));
}
