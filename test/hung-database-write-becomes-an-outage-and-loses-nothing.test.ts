/**
 * A record write that the database never answers (here: `messages` is locked by another session,
 * and neither PostgreSQL nor MariaDB gives up on such a lock for a very long time) must not keep
 * the server's reading paused for as long as the lock lasts. Once a write has gone unanswered for
 * --writer-timeout-ms it counts as failed and the outage rules apply: the status says `failing`,
 * clients are read again and every message reaches the other member while the lock is still held,
 * and the records past --writer-queue-max go to the spool. When the lock ends, everything is
 * written exactly once, in seq order, and the spool file is gone.
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
const MESSAGES = 500;

function message(n: number): string {
  return JSON.stringify({ n, text: `hung write ${n}; `.repeat(20) });
}

describe(`a hung database write (${TEST_DATABASE}) becomes an outage after --writer-timeout-ms; nothing is lost`, () => {
  const dir = tempDir();
  const logLines: string[] = [];
  let srv: TestServer;
  let a: TestClient;
  let b: TestClient;
  let roomId = '';
  let lock: Lock | undefined;
  const sent: string[] = [];
  let mark = 0;
  const during = {
    status: undefined as RecordStatus | undefined,
    spoolExists: false,
    receivedByB: -1,
    recordedMessages: -1,
  };

  before(async () => {
    srv = await startServer(
      {
        writerQueueMax: QUEUE_MAX,
        writerFlushMs: 10,
        writerTimeoutMs: 500,
        ...NO_RATE_LIMIT,
      },
      dir,
      { logLines },
    );
    const joined = await joinNew(srv.url, 'hung-a', 'alpha');
    a = joined.client;
    roomId = joined.roomId;
    b = await joinExisting(srv.url, 'hung-b', 'beta', roomId);
    mark = b.received.length;
    await srv.server.flushRecords();

    lock = await lockMessages(srv);
    try {
      for (let n = 1; n <= MESSAGES; n++) {
        const text = message(n);
        sent.push(text);
        a.send(text);
      }
      // Reading is not left paused: B gets everything while the database still holds the lock.
      await waitFor(
        'B to receive every message while the lock is held',
        () => b.received.length - mark >= MESSAGES,
        3000,
        10,
      );
      during.status = await waitFor(
        'the status to say the writes are failing, with records spooled',
        async () => {
          const s = await recordStatus(srv);
          return s.databaseWrites === 'failing' && s.spooledRecords > 0 && s;
        },
        3000,
        10,
      );
      during.receivedByB = b.received.length - mark;
      during.spoolExists = existsSync(srv.server.spoolPath!);
      during.recordedMessages = await lock.countMessages();
    } finally {
      await lock.release();
    }
  });

  after(async () => {
    await lock?.release();
    await a?.close();
    await b?.close();
    await srv?.stop();
    removeDir(dir);
  });

  it('while the lock is held: B has every message, the writes count as failing, records spool', () => {
    assert.equal(during.receivedByB, MESSAGES);
    assert.equal(during.status?.databaseWrites, 'failing');
    assert.ok((during.status?.spooledRecords ?? 0) > 0);
    assert.equal(during.spoolExists, true, 'the spool file exists');
    assert.equal(during.recordedMessages, 0, 'nothing got past the lock');
  });

  it('B received every message exactly once, in order, byte-identical', () => {
    assert.deepEqual(b.received.slice(mark), sent);
  });

  it('once the lock ends: status ok, nothing pending, the spool file gone', async () => {
    const s = await waitForRecordsWritten(srv);
    assert.equal(s.spooledRecords, 0);
    assert.equal(existsSync(srv.server.spoolPath!), false);
  });

  it('`messages` holds every message exactly once, in seq order', async () => {
    await assertMessagesRecorded(srv, roomId, sent, 'hung-a');
  });

  it('the log: one outage, named as a write that was not answered in time, then writes resumed', () => {
    const lines = logLines.map((l) => JSON.parse(l) as { msg: string; err?: string });
    const failed = lines.filter((l) => l.msg.startsWith('record writer: database write failed'));
    assert.equal(failed.length, 1, 'logged once per outage');
    assert.match(failed[0]!.err ?? '', /did not answer a write within 500 ms/);
    assert.equal(lines.filter((l) => l.msg === 'record writer: database writes resumed').length, 1);
  });
});
