import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import type { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { age, insertOldMessages } from './helpers/old-rows.js';
import { waitFor } from './helpers/wait.js';
import { scrape } from './helpers/metrics.js';

const DAY = 86_400_000;
/** More than one delete batch (2,000 rows). */
const OLD_MESSAGES = 5_000;

describe('retention deletes rows older than their periods, in batches, and keeps the rest', () => {
  const dir = tempDir();
  let srv: TestServer;
  let stays: TestClient;
  let leaves: TestClient;
  let roomId = '';

  before(async () => {
    srv = await startServer(
      { retainMessages: 30 * DAY, retainRoomQueries: 7 * DAY, retainConnections: 90 * DAY },
      dir,
    );
    const a = await joinNew(srv.url, 'ret-a', 'screen');
    stays = a.client;
    roomId = a.roomId;
    leaves = await joinExisting(srv.url, 'ret-b', 'phone', roomId);
    stays.send('{"n":1}');
    stays.send('{"n":2}');
    assert.equal(await leaves.nextText(), '{"n":1}');
    assert.equal(await leaves.nextText(), '{"n":2}');
    await stays.queryRoom();
    await leaves.close();
    await waitFor(
      'the closed connection recorded',
      async () =>
        (
          await srv.rows(
            'select id from connections where device_id = ? and disconnected_at is not null',
            'ret-b',
          )
        ).length === 1,
    );
    // Made old: the first message, the closed connection, the room query; and the open
    // connection's start (an open connection stays however old).
    await age(srv.databaseUrl, 'messages', ['sent_at'], 'room_id = ? and seq = 1', roomId);
    await age(srv.databaseUrl, 'connections', ['connected_at', 'disconnected_at'], 'device_id = ?', 'ret-b');
    await age(srv.databaseUrl, 'connections', ['connected_at'], 'device_id = ?', 'ret-a');
    await age(srv.databaseUrl, 'room_queries', ['queried_at'], 'device_id = ?', 'ret-a');
    await insertOldMessages(srv.databaseUrl, 'ZZOLD001', OLD_MESSAGES);
  });
  after(async () => {
    await stays?.close();
    await srv?.stop();
    removeDir(dir);
  });

  it('a pass deletes every row older than its period', async () => {
    await srv.server.retentionPass();
    assert.deepEqual(await srv.rows('select count(*) as n from messages where room_id = ?', 'ZZOLD001'), [
      { n: 0 },
    ]);
    assert.deepEqual(await srv.rows('select id from room_queries'), []);
    assert.deepEqual(await srv.rows('select id from connections where device_id = ?', 'ret-b'), []);
  });

  it('keeps newer rows and open connections', async () => {
    const messages = await srv.rows<{ seq: number; message_content: string }>(
      'select seq, message_content from messages order by seq',
    );
    assert.deepEqual(
      messages.map((m) => ({ seq: Number(m.seq), content: m.message_content })),
      [{ seq: 2, content: '{"n":2}' }],
    );
    const open = await srv.rows('select device_id from connections where disconnected_at is null');
    assert.deepEqual(open, [{ device_id: 'ret-a' }]);
  });

  it('counts what it deleted in status, and a second pass finds nothing', async () => {
    assert.deepEqual(await srv.server.retentionPass(), {
      messages: 0,
      room_queries: 0,
      connections: 0,
      rooms: 0,
    });
    assert.deepEqual(srv.server.status().retentionDeleted, {
      messages: OLD_MESSAGES + 1,
      room_queries: 1,
      connections: 1,
      rooms: 0,
    });
    const metrics = await scrape(`http://127.0.0.1:${srv.port}/metrics`);
    assert.equal(
      metrics.value('room_manager_retention_deleted_total', { table: 'messages' }),
      OLD_MESSAGES + 1,
    );
    assert.equal(metrics.value('room_manager_retention_deleted_total', { table: 'connections' }), 1);
  });

  it('the room still relays and records', async () => {
    const again = await joinExisting(srv.url, 'ret-b', 'phone', roomId);
    stays.send('{"n":3}');
    assert.equal(await again.nextText(), '{"n":3}');
    await again.close();
    const rows = await srv.rows('select seq from messages where room_id = ? order by seq', roomId);
    assert.deepEqual(
      rows.map((r) => Number(r.seq)),
      [2, 3],
    );
  });
});
