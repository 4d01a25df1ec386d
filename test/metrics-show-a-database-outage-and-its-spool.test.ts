/**
 * /metrics during a database outage (a TCP proxy in front of MariaDB or PostgreSQL is cut): the
 * database is reported down, the records wait in the spool, messages still relay; once it is
 * back, every message is counted recorded and nothing waits any more.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { proxiedDatabase } from './helpers/chaos.js';
import { TEST_DATABASE, serverDatabasesOnly } from './helpers/db.js';
import { scrape, type Scrape } from './helpers/metrics.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';
import { waitFor } from './helpers/wait.js';

const backend = TEST_DATABASE === 'sqlite' ? 'mysql' : TEST_DATABASE;

describe(`/metrics during a database outage on ${backend}`, serverDatabasesOnly, () => {
  const dir = tempDir();
  let proxy: TcpProxy | undefined;
  let srv: TestServer | undefined;

  after(async () => {
    proxy?.restore();
    await srv?.stop();
    await proxy?.close();
    removeDir(dir);
  });

  it('reports the database down and the spool, then every message recorded', async () => {
    const db = await proxiedDatabase(dir, backend);
    proxy = db.proxy;
    srv = await startServer({ databaseUrl: db.url, dbTimeoutMs: 1000 }, dir);
    const url = `http://127.0.0.1:${srv.port}/metrics`;
    const { client: a, roomId } = await joinNew(srv.url, 'mo-a', 'A');
    const b = await joinExisting(srv.url, 'mo-b', 'B', roomId);
    await srv.server.flushRecords();
    const before = await scrape(url);
    assert.equal(before.value('room_manager_database_up'), 1);
    assert.equal(before.value('room_manager_records_pending'), 0);

    proxy.cut();
    for (let i = 0; i < 20; i++) a.send({ n: i });
    for (let i = 0; i < 20; i++) assert.deepEqual(await b.next(), { n: i });
    const down = await waitFor('the database reported down and records spooled', async () => {
      const s = await scrape(url);
      return s.value('room_manager_database_up') === 0 && s.value('room_manager_records_spooled') >= 20 && s;
    });
    assert.ok(down.value('room_manager_records_pending') >= 20);
    assert.equal(down.since(before, 'room_manager_messages_received_total'), 20);
    assert.equal(down.since(before, 'room_manager_messages_delivered_total'), 20);
    assert.equal(down.since(before, 'room_manager_messages_recorded_total'), 0);

    proxy.restore();
    const back: Scrape = await waitFor('the spool written to the database', async () => {
      const s = await scrape(url);
      return s.value('room_manager_database_up') === 1 && s.value('room_manager_records_pending') === 0 && s;
    });
    assert.equal(back.value('room_manager_records_spooled'), 0);
    assert.equal(back.since(before, 'room_manager_messages_recorded_total'), 20);
    await a.close();
    await b.close();
  });
});
