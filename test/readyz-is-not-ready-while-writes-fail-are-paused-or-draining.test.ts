/**
 * /readyz says "not ready" whenever the server cannot take messages as it should, not only when
 * the database does not answer a ping:
 *  - record writes failing (a write lock held by another session past --writer-timeout-ms, while
 *    a ping still succeeds; or, on MariaDB / PostgreSQL, the database cut): 503,
 *    `records.writes: "failing"`; 200 `ok` again once writes succeed;
 *  - reading paused because the database is slower than the traffic (lock held, small
 *    --writer-queue-max): 503 (`behind`, or `failing` if the server gave up on the write);
 *  - at stop(): 503 `"status": "draining"` while clients are closed in batches, `"stopping"`
 *    after — or no answer at all once the port is closed; all are accepted, which one is logged
 *    (the CLI's drain is tested in sigterm-drains-clients-in-batches-and-loses-nothing).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AckedPeer,
  isReadyzStatus,
  openPairs,
  proxiedDatabase,
  readyz,
  readyzOnOpenConnection,
  waitForNewAcks,
  waitForReadyz,
  writesOf,
  type ReadyzAnswer,
} from './helpers/chaos.js';
import { TEST_DATABASE, serverDatabasesOnly } from './helpers/db.js';
import { lockMessages, type Lock } from './helpers/lock-messages.js';
import { NO_RATE_LIMIT, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const backend = TEST_DATABASE === 'sqlite' ? 'mysql' : TEST_DATABASE;

/** A server in its own folder, a pair of acked peers, and cleanup. */
function serverWithPeers(overrides: Parameters<typeof startServer>[0], proxied = false) {
  const state = {
    dir: tempDir('rm-readyz-'),
    srv: undefined as TestServer | undefined,
    peers: [] as AckedPeer[],
    lock: undefined as Lock | undefined,
    proxy: undefined as TcpProxy | undefined,
    /** /readyz before the test's trouble. */
    ready: undefined as ReadyzAnswer | undefined,
  };
  before(async () => {
    let databaseUrl: string | undefined;
    if (proxied) {
      const db = await proxiedDatabase(state.dir, backend);
      state.proxy = db.proxy;
      databaseUrl = db.url;
    }
    state.srv = await startServer(
      { ...NO_RATE_LIMIT, ...overrides, ...(databaseUrl && { databaseUrl }) },
      state.dir,
    );
    state.peers = await openPairs(state.srv.url, 1, 'rz');
    // Warm: acks flow and the status is ready.
    for (const p of state.peers) p.sendOne();
    await waitForNewAcks(
      state.peers,
      state.peers.map(() => 0),
      1,
      'a first ack each',
    );
    state.ready = await waitForReadyz(state.srv.port, '200', (a) => isReadyzStatus(a, 200));
  });
  after(async () => {
    for (const p of state.peers) p.stop();
    await state.lock?.release();
    state.proxy?.restore();
    await state.srv?.stop();
    for (const p of state.peers) await p.close().catch(() => undefined);
    await state.proxy?.close();
    removeDir(state.dir);
  });
  return state;
}

describe(`/readyz while record writes fail under a held lock (${TEST_DATABASE})`, () => {
  const s = serverWithPeers({ writerTimeoutMs: 500, writerFlushMs: 10 });

  it('503 with records.writes "failing" although the database answers a ping; 200 "ok" after the release', async () => {
    assert.equal(writesOf(s.ready!), 'ok', `at rest: ${JSON.stringify(s.ready)}`);
    s.lock = await lockMessages(s.srv!);
    for (const p of s.peers) p.stream(20);
    const failing = await waitForReadyz(s.srv!.port, '503 failing', (a) => isReadyzStatus(a, 503, 'failing'));
    assert.ok('status' in failing);
    assert.equal(failing.body.status, 'not_ready');
    assert.equal(
      failing.body.database,
      'up',
      `the lock leaves the ping answered: ${JSON.stringify(failing.body)}`,
    );
    await s.lock.release();
    const back = await waitForReadyz(s.srv!.port, '200 ok', (a) => isReadyzStatus(a, 200, 'ok'));
    assert.ok('status' in back);
    assert.equal(back.body.status, 'ready');
    for (const p of s.peers) p.stop();
  });
});

describe(`/readyz while the database is cut (${backend})`, serverDatabasesOnly, () => {
  const s = serverWithPeers({ dbTimeoutMs: 1000, writerFlushMs: 10 }, true);

  it('503 "failing" with database "down"; 200 "ok" once it is back', async () => {
    assert.equal(writesOf(s.ready!), 'ok', `at rest: ${JSON.stringify(s.ready)}`);
    for (const p of s.peers) p.stream(20);
    s.proxy!.cut();
    const failing = await waitForReadyz(s.srv!.port, '503 failing', (a) => isReadyzStatus(a, 503, 'failing'));
    assert.ok('status' in failing);
    assert.equal(failing.body.database, 'down');
    s.proxy!.restore();
    await waitForReadyz(s.srv!.port, '200 ok', (a) => isReadyzStatus(a, 200, 'ok'));
    for (const p of s.peers) p.stop();
  });
});

describe(`/readyz while reading is paused for a slow database (${TEST_DATABASE})`, () => {
  const s = serverWithPeers({ writerQueueMax: 20, writerTimeoutMs: 60_000, writerFlushMs: 10 });

  it('503 (records.writes "behind", or "failing") while the lock holds the writes; 200 after the release', async () => {
    assert.equal(writesOf(s.ready!), 'ok', `at rest: ${JSON.stringify(s.ready)}`);
    s.lock = await lockMessages(s.srv!);
    // Far more than the queue bound, at once.
    for (let i = 0; i < 200; i++) for (const p of s.peers) p.sendOne();
    const paused = await waitForReadyz(s.srv!.port, 'not 200', (a) => 'status' in a && a.status !== 200);
    assert.ok('status' in paused);
    assert.equal(paused.status, 503, JSON.stringify(paused));
    assert.ok(
      ['behind', 'failing'].includes(writesOf(paused) ?? ''),
      `records.writes: ${JSON.stringify(paused.body)}`,
    );
    console.log(`# paused: ${JSON.stringify(paused.body)}`);
    await s.lock.release();
    await waitForReadyz(s.srv!.port, '200 ok', (a) => isReadyzStatus(a, 200, 'ok'));
  });
});

describe(`/readyz during stop() with a client connected (${TEST_DATABASE})`, () => {
  const dir = tempDir('rm-readyz-stop-');
  let srv: TestServer | undefined;
  after(async () => {
    await srv?.stop();
    removeDir(dir);
  });

  it('answers 503 "draining" or "stopping", or no longer answers once the port is closed', async () => {
    srv = await startServer({}, dir);
    const [peer] = await openPairs(srv.url, 1, 'rzs');
    assert.ok(isReadyzStatus(await readyz(srv.port), 200));
    // A request begun before the stop, finished during it; and one begun during it.
    const early = await readyzOnOpenConnection(srv.port);
    const stopping = srv.stop();
    const answers: ReadyzAnswer[] = [await early.finish(), await readyz(srv.port)];
    await stopping;
    console.log(`# readyz during stop: ${JSON.stringify(answers)}`);
    for (const a of answers) {
      if ('refused' in a) continue;
      assert.equal(a.status, 503, JSON.stringify(a));
      assert.ok(['draining', 'stopping'].includes(String(a.body.status)), JSON.stringify(a));
    }
    assert.equal((await peer!.client!.closed).code, 1012);
  });
});
