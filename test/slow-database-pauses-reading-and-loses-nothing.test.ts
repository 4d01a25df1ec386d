/**
 * A database that still answers but cannot keep up (here: its `messages` table is locked by
 * another session, so the server's record writes wait instead of failing) makes the server stop
 * reading from its clients once --writer-queue-max records wait in memory: the status says
 * `databaseWrites: behind`, the spool is not touched, and the frames a sender keeps sending wait
 * in the socket buffers, so the other member receives only what was read before the pause. When
 * the database moves again, reading resumes: every message reaches the other member exactly once,
 * in order and byte-identical, the status is `ok` again, and `messages` holds each message once,
 * in seq order, without the spool ever having been used.
 *
 * The lock: SQLite, a write transaction (BEGIN IMMEDIATE) from a second connection — the server's
 * writer thread waits for it (busy timeout 5 s; the lock is released as soon as the paused state
 * has been observed); PostgreSQL, LOCK TABLE … IN EXCLUSIVE MODE; MariaDB, LOCK TABLES … WRITE
 * (the lock lasts far less than --writer-timeout-ms, past which a write counts as failed: see
 * hung-database-write-becomes-an-outage-and-loses-nothing.test.ts). The locking session
 * counts `messages` while it holds the lock, which shows the writes were held there.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { TestClient } from './helpers/client.js';
import { TEST_DATABASE } from './helpers/db.js';
import { lockMessages, type Lock } from './helpers/lock-messages.js';
import {
  assertMessagesRecorded,
  recordStatus,
  waitForRecordsWritten,
  type RecordStatus,
} from './helpers/record-status.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { NO_RATE_LIMIT, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const QUEUE_MAX = 50;
const MESSAGES = 2000;

/** Message `n`: about 1 KB of JSON that carries its number (2000 of them: about 2 MB). */
function message(n: number): string {
  return JSON.stringify({ n, text: `message ${n}; `.repeat(80).slice(0, 1000) });
}

describe(`a slow database (${TEST_DATABASE}) pauses reading from clients; no message is lost or spooled`, () => {
  const dir = tempDir();
  const logLines: string[] = [];
  let srv: TestServer;
  let a: TestClient;
  let b: TestClient;
  let roomId = '';
  let lock: Lock | undefined;
  const sent: string[] = [];
  /** Frames B had received before A's burst. */
  let mark = 0;
  /** What was observed while the database was locked. */
  const during = {
    status: undefined as RecordStatus | undefined,
    ready: undefined as
      { status: number; body: { database: string; records: Record<string, unknown> } } | undefined,
    spoolExists: true,
    receivedByB: -1,
    /** Rows in `messages` then (none was there before A's burst). */
    recordedMessages: -1,
    lockedMs: -1,
  };

  before(async () => {
    srv = await startServer(
      {
        writerQueueMax: QUEUE_MAX,
        writerFlushMs: 10,
        // A's burst is not the flood these limits are for; B must not be cut for reading slowly.
        ...NO_RATE_LIMIT,
        maxBufferedBytes: 256 * 1024 * 1024,
      },
      dir,
      { logLines },
    );
    const joined = await joinNew(srv.url, 'slow-a', 'alpha');
    a = joined.client;
    roomId = joined.roomId;
    b = await joinExisting(srv.url, 'slow-b', 'beta', roomId);
    mark = b.received.length;
    await srv.server.flushRecords(); // the writer is idle: the lock below is granted at once

    lock = await lockMessages(srv);
    const lockedAt = Date.now();
    try {
      for (let n = 1; n <= MESSAGES; n++) {
        const text = message(n);
        sent.push(text);
        a.send(text);
      }
      during.status = await waitFor(
        'the status to say the database is behind',
        async () => {
          const s = await recordStatus(srv);
          if (s.databaseWrites === 'failing') throw new Error(`writes failed instead: ${JSON.stringify(s)}`);
          return s.databaseWrites === 'behind' && s;
        },
        1000,
        5,
      );
      during.spoolExists = existsSync(srv.server.spoolPath!);
      during.receivedByB = b.received.length - mark;
      during.recordedMessages = await lock.countMessages();
      const ready = await fetch(`http://127.0.0.1:${srv.port}/readyz`);
      during.ready = {
        status: ready.status,
        body: (await ready.json()) as { database: string; records: Record<string, unknown> },
      };
    } finally {
      during.lockedMs = Date.now() - lockedAt;
      await lock.release();
    }
    const { databaseWrites, pendingRecords, spooledRecords } = during.status;
    console.log(
      `# ${srv.backend}: locked for ${during.lockedMs} ms, B then had ${during.receivedByB} of ${MESSAGES}; ` +
        JSON.stringify({ databaseWrites, pendingRecords, spooledRecords }),
    );
  });

  after(async () => {
    await lock?.release();
    await a?.close();
    await b?.close();
    await srv?.stop();
    removeDir(dir);
  });

  it('while the database is locked: status behind, nothing spooled, B has not received everything', () => {
    const s = during.status!;
    assert.equal(s.databaseWrites, 'behind');
    assert.equal(s.spooledRecords, 0);
    assert.ok(s.pendingRecords > 0, `pending records: ${s.pendingRecords}`);
    assert.equal(during.recordedMessages, 0, 'the writes were waiting on the database');
    assert.equal(during.spoolExists, false, 'no spool file');
    assert.ok(during.receivedByB < MESSAGES, `B received ${during.receivedByB} of ${MESSAGES}`);
  });

  it('/readyz: not ready (records behind, none spooled), though the database still answers', () => {
    assert.equal(during.ready?.status, 503);
    assert.equal(during.ready?.body.database, 'up');
    assert.equal(during.ready?.body.records.behind, true);
    assert.equal(during.ready?.body.records.writes, 'behind');
    assert.equal(during.ready?.body.records.spooled, 0);
  });

  it('once the database moves, B receives every message exactly once, in order, byte-identical', async () => {
    await waitFor('B to receive every message', () => b.received.length - mark >= MESSAGES, 3000, 10);
    assert.deepEqual(b.received.slice(mark), sent);
  });

  it('the status is ok again, with nothing pending and nothing spooled', async () => {
    const s = await waitForRecordsWritten(srv);
    assert.equal(s.spooledRecords, 0);
  });

  it('`messages` holds every message exactly once, in seq order; the spool was never used', async () => {
    await assertMessagesRecorded(srv, roomId, sent, 'slow-a');
    assert.equal(existsSync(srv.server.spoolPath!), false, 'no spool file');
    assert.equal(srv.server.status().spooledRecords, 0);
  });

  it('the log: reading paused and resumed as often, no write failure, no spooling', () => {
    const messages = logLines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    const paused = messages.filter(
      (m) => m === 'the database is behind the record: reading from clients paused',
    );
    const resumed = messages.filter((m) => m === 'the database caught up: reading from clients resumed');
    console.log(`# ${srv.backend}: reading paused ${paused.length} time(s) in all`);
    assert.ok(paused.length >= 1, 'reading was paused');
    assert.equal(resumed.length, paused.length, 'each pause was followed by a resume');
    assert.deepEqual(
      messages.filter((m) => /database write failed|spooling records/.test(m)),
      [],
    );
  });
});
