/**
 * When a resume or a history request needs the database and it is away (a TCP proxy in front of
 * the real MariaDB/PostgreSQL server is cut), the answer says so instead of skipping messages:
 * the resume is `recovered: false` with a reason and the device is live from the current seq;
 * history is an `unavailable` error and the connection stays open. Once the database is back,
 * both work again and nothing is missing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_URL,
  TEST_DATABASE,
  createDatabase,
  databaseUrl,
  serverDatabasesOnly,
  testDatabaseName,
} from './helpers/db.js';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { framesBeforePong, joinExistingL2, nextEnvelope, newRoomL2, resumeL2 } from './helpers/level2.js';
import type { TestClient } from './helpers/client.js';

const backend = TEST_DATABASE === 'sqlite' ? 'mysql' : TEST_DATABASE;

describe('Level 2 resume and history while the database is away', serverDatabasesOnly, () => {
  const dir = tempDir();
  let proxy: TcpProxy;
  let srv: TestServer;

  before(async () => {
    const name = testDatabaseName(dir);
    await createDatabase(backend, name);
    const target = new URL(ADMIN_URL[backend]);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || (backend === 'mysql' ? 3306 : 5432)));
    // historyWindow 0: every resume and history needs the database.
    srv = await startServer(
      { databaseUrl: databaseUrl(backend, name, proxy.port), historyWindow: 0, dbTimeoutMs: 1000 },
      dir,
    );
  });
  after(async () => {
    proxy?.restore();
    await srv?.stop();
    await proxy?.close();
    removeDir(dir);
  });

  it('resume: recovered false with the reason, then live; history: unavailable; both work once it is back', async () => {
    const r = await newRoomL2(srv.url, 'dbaway-r', 'Receiver');
    const s = await joinExistingL2(srv.url, 'dbaway-s', 'Sender', r.roomId);
    assert.equal((await r.client.next()).type, 'member_joined');
    s.client.send({ n: 1, ack_id: 1 });
    assert.deepEqual(await s.client.next(), { type: 'ack', ack_id: 1, seq: 1 });
    assert.equal((await nextEnvelope(r.client)).seq, 1);
    await srv.server.flushRecords();

    proxy.cut();
    // A message during the outage: accepted and relayed (its record waits), seq 2.
    s.client.send({ n: 2, ack_id: 2 });
    assert.deepEqual(await s.client.next(), { type: 'ack', ack_id: 2, seq: 2 });
    const r2 = await resumeL2(srv.url, 'dbaway-r', 'Receiver', r.roomId, 0);
    assert.deepEqual(
      { ...r2.reply, members: [] },
      {
        type: 'room',
        room_id: r.roomId,
        status: 'reconnected',
        message: `reconnected: joined room ${r.roomId}`,
        members: [],
        seq: 2,
        recovered: false,
        reason: 'history is unavailable: the database is not answering',
      },
    );
    // Nothing replayed; live from seq 3.
    assert.deepEqual(await framesBeforePong(r2.client), []);
    s.client.send('{"n":3}');
    assert.equal((await nextEnvelope(r2.client)).seq, 3);
    r2.client.send({ type: 'history', ack_id: 'h' });
    assert.deepEqual(await r2.client.next(), {
      type: 'error',
      message: 'History is unavailable right now, try again later',
      code: 'unavailable',
      ack_id: 'h',
    });
    assert.deepEqual(await ping(r2.client), { type: 'pong' });

    proxy.restore();
    await srv.server.flushRecords();
    r2.client.send({ type: 'history' });
    const h = await r2.client.next();
    assert.equal(h.type, 'history');
    assert.deepEqual(
      (h.messages as { seq: number }[]).map((m) => m.seq),
      [1, 2, 3],
    );
    const r3 = await resumeL2(srv.url, 'dbaway-r', 'Receiver', r.roomId, 1);
    assert.equal(r3.reply.recovered, true);
    assert.equal((await nextEnvelope(r3.client)).seq, 2);
    assert.equal((await nextEnvelope(r3.client)).seq, 3);
    assert.deepEqual(await framesBeforePong(r3.client), []);
    await r3.client.close();
    await s.client.close();
  });
});

async function ping(client: TestClient) {
  client.send({ type: 'ping' });
  return client.next();
}
