import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { age } from './helpers/old-rows.js';
import { waitFor } from './helpers/wait.js';

const DAY = 86_400_000;

describe('retention forgets rooms that are empty and idle for --retain-rooms', () => {
  const dir = tempDir();
  let srv: TestServer;
  /** Empty, everything in it long ago: forgotten. */
  let idle = '';
  /** Everything long ago, but a member is in it now: stays. */
  let occupied = '';
  let member: TestClient;
  /** Empty, created long ago, a message in it recently: stays. */
  let recent = '';

  before(async () => {
    srv = await startServer({ retainRooms: 30 * DAY }, dir);
    const a = await joinNew(srv.url, 'forget-a', 'screen');
    idle = a.roomId;
    const b = await joinExisting(srv.url, 'forget-b', 'phone', idle);
    a.client.send('{"old":1}');
    assert.equal(await b.nextText(), '{"old":1}');
    await a.client.queryRoom();
    await a.client.close();
    await b.close();

    const m = await joinNew(srv.url, 'forget-m', 'screen');
    occupied = m.roomId;
    member = m.client;

    const r = await joinNew(srv.url, 'forget-r', 'screen');
    recent = r.roomId;
    const r2 = await joinExisting(srv.url, 'forget-r2', 'phone', recent);
    r.client.send('{"recent":1}');
    assert.equal(await r2.nextText(), '{"recent":1}');
    await r.client.close();
    await r2.close();

    await waitFor(
      'every closed connection recorded',
      async () => (await srv.rows('select id from connections where disconnected_at is null')).length === 1,
    );
    for (const room of [idle, occupied, recent])
      await age(srv.databaseUrl, 'rooms', ['created_at'], 'room_id = ?', room);
    for (const room of [idle, occupied]) {
      await age(srv.databaseUrl, 'connections', ['connected_at'], 'room_id = ?', room);
      await age(
        srv.databaseUrl,
        'connections',
        ['disconnected_at'],
        'room_id = ? and disconnected_at is not null',
        room,
      );
      await age(srv.databaseUrl, 'messages', ['sent_at'], 'room_id = ?', room);
      await age(srv.databaseUrl, 'room_queries', ['queried_at'], 'room_id = ?', room);
    }
    await age(srv.databaseUrl, 'connections', ['connected_at', 'disconnected_at'], 'room_id = ?', recent);
  });
  after(async () => {
    await member?.close();
    await srv?.stop();
    removeDir(dir);
  });

  it('forgets the idle empty room with its messages, connections and room queries', async () => {
    await srv.server.retentionPass();
    assert.deepEqual(await srv.rows('select room_id from rooms where room_id = ?', idle), []);
    for (const table of ['messages', 'connections', 'room_queries'])
      assert.deepEqual(await srv.rows(`select room_id from ${table} where room_id = ?`, idle), [], table);
    assert.deepEqual(srv.server.status().retentionDeleted, {
      messages: 0,
      room_queries: 0,
      connections: 0,
      rooms: 1,
    });
  });

  it('keeps a room with a member, and a room with recent activity', async () => {
    const rooms = await srv.rows<{ room_id: string }>('select room_id from rooms order by room_id');
    assert.deepEqual(
      rooms.map((r) => r.room_id),
      [occupied, recent].sort(),
    );
    assert.equal((await srv.rows('select seq from messages where room_id = ?', recent)).length, 1);
  });

  it("the forgotten room's code answers room_not_found", async () => {
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'forget-c',
      identity: 'tablet',
      room_id: idle,
    });
    assert.equal(reply.type, 'error');
    assert.equal(reply.code, 'room_not_found');
    await client.closed;
  });

  it('a device whose last room was forgotten gets a new room, as a new device does', async () => {
    const { client, reply } = await TestClient.join(srv.url, { device_id: 'forget-a', identity: 'screen' });
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    assert.notEqual(reply.room_id, idle);
    await client.close();
  });

  it('the member of the kept room still relays', async () => {
    const other = await joinExisting(srv.url, 'forget-d', 'phone', occupied);
    member.send('{"still":1}');
    assert.equal(await other.nextText(), '{"still":1}');
    await other.close();
  });
});
