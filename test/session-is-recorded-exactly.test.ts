import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, type TestServer, useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { ISO_MS } from './helpers/wait.js';

interface RoomRow {
  room_id: string;
  created_at: string;
}
interface DeviceRow {
  device_id: string;
  first_connected_at: string;
  last_connected_at: string;
  last_room_id: string | null;
  last_identity: string;
}
interface ConnectionRow {
  id: number;
  device_id: string;
  room_id: string;
  identity: string;
  client_ip: string;
  connected_at: string;
  disconnected_at: string | null;
}
interface MessageRow {
  from_device_id: string;
  to_device_id: string | null;
  room_id: string;
  message_content: string;
  sent_at: string;
  seq: number;
}
interface QueryRow {
  device_id: string;
  room_id: string;
  queried_at: string;
}

describe('a scripted session is recorded exactly', () => {
  let srv: TestServer;
  const start = new Date().toISOString();
  let end = '';
  let roomId = '';
  let deviceAfterFirstVisit: DeviceRow | undefined;
  const m1 = '{"type":"state","n":1,"z":"last","a":"first"}';
  const m2 = '{"text":"héllo 🚀 \\u00e9","q":"it\'s \\"quoted\\"; DROP TABLE messages; --"}';
  const m3 = '{ "reply" : true ,\n "nested": {"x": [1, 2, 3]} }';
  const m4 = '{"after":"reconnect"}';

  before(async () => {
    srv = await startServer();
    // 1. rec-a creates a room; rec-b joins it.
    const a = await joinNew(srv.url, 'rec-a', 'alpha');
    roomId = a.roomId;
    const b = await joinExisting(srv.url, 'rec-b', 'beta', roomId);
    // 2. Messages: two from a, then one from b once b has them (so the order is known).
    a.client.send(m1);
    a.client.send(m2);
    assert.equal(await b.nextText(), m1);
    assert.equal(await b.nextText(), m2);
    b.send(m3);
    assert.equal(await a.client.nextText(), m3);
    // 3. Queries: a, then b.
    await a.client.queryRoom();
    await b.queryRoom();
    // 4. Both leave.
    await b.close();
    await a.client.close();
    deviceAfterFirstVisit = (await srv.rows<DeviceRow>("select * from devices where device_id = 'rec-a'"))[0];
    // 5. rec-a comes back under a new identity, sends one message and leaves.
    const again = await TestClient.join(srv.url, { device_id: 'rec-a', identity: 'alpha-2' });
    assert.equal(again.reply.status, 'reconnected');
    assert.equal(again.reply.room_id, roomId);
    again.client.send(m4);
    await again.client.queryRoom();
    await again.client.close();
    // 6. Graceful stop writes everything (disconnects included) to the file.
    await srv.stop();
    end = new Date().toISOString();
  });
  after(() => removeDir(srv.dir));

  const rows = <T>(sql: string) => srv.rows<T>(sql);
  const within = (ts: string) => {
    assert.match(ts, ISO_MS);
    assert.ok(ts >= start && ts <= end, `${ts} within the session [${start}, ${end}]`);
  };

  it('rooms: one row, with created_at in ISO with milliseconds', async () => {
    const list = await rows<RoomRow>('select room_id, created_at from rooms');
    assert.equal(list.length, 1);
    assert.equal(list[0]!.room_id, roomId);
    within(list[0]!.created_at);
  });

  it('devices: one row per device; first_connected_at kept across the reconnect, last_identity updated', async () => {
    const list = await rows<DeviceRow>('select * from devices order by device_id');
    assert.deepEqual(
      list.map((d) => ({
        device_id: d.device_id,
        last_room_id: d.last_room_id,
        last_identity: d.last_identity,
      })),
      [
        { device_id: 'rec-a', last_room_id: roomId, last_identity: 'alpha-2' },
        { device_id: 'rec-b', last_room_id: roomId, last_identity: 'beta' },
      ],
    );
    for (const d of list) {
      within(d.first_connected_at);
      within(d.last_connected_at);
      assert.ok(d.first_connected_at <= d.last_connected_at);
    }
    const a = list[0]!;
    assert.ok(deviceAfterFirstVisit, 'rec-a was recorded after its first visit');
    assert.equal(deviceAfterFirstVisit.last_identity, 'alpha');
    assert.equal(
      a.first_connected_at,
      deviceAfterFirstVisit.first_connected_at,
      'first_connected_at preserved',
    );
    assert.ok(a.last_connected_at >= deviceAfterFirstVisit.last_connected_at);
    // last_connected_at moved on to the second visit, which began after the first one.
    const conns = await rows<ConnectionRow>(
      "select * from connections where device_id = 'rec-a' order by id",
    );
    assert.equal(conns.length, 2);
    assert.ok(a.last_connected_at >= conns[0]!.connected_at);
  });

  it('connections: one row per connection with device, room, identity, 127.0.0.1 and both timestamps', async () => {
    const list = await rows<ConnectionRow>('select * from connections order by id');
    assert.deepEqual(
      list.map((c) => ({
        device_id: c.device_id,
        room_id: c.room_id,
        identity: c.identity,
        client_ip: c.client_ip,
      })),
      [
        { device_id: 'rec-a', room_id: roomId, identity: 'alpha', client_ip: '127.0.0.1' },
        { device_id: 'rec-b', room_id: roomId, identity: 'beta', client_ip: '127.0.0.1' },
        { device_id: 'rec-a', room_id: roomId, identity: 'alpha-2', client_ip: '127.0.0.1' },
      ],
    );
    for (const c of list) {
      within(c.connected_at);
      assert.ok(c.disconnected_at !== null, `connection ${c.id} has disconnected_at`);
      within(c.disconnected_at);
      assert.ok(c.connected_at <= c.disconnected_at, 'disconnected after connected');
    }
    // Connections are numbered in the order they opened.
    assert.ok(
      list[0]!.connected_at <= list[1]!.connected_at && list[1]!.connected_at <= list[2]!.connected_at,
    );
    assert.equal(new Set(list.map((c) => c.id)).size, 3);
  });

  it('messages: every message, content exact, to_device_id NULL, seq 1..N in order', async () => {
    const list = await rows<MessageRow>(
      'select from_device_id, to_device_id, room_id, message_content, sent_at, seq from messages order by seq',
    );
    assert.deepEqual(
      list.map(({ sent_at: _sentAt, ...rest }) => rest),
      [
        { from_device_id: 'rec-a', to_device_id: null, room_id: roomId, message_content: m1, seq: 1 },
        { from_device_id: 'rec-a', to_device_id: null, room_id: roomId, message_content: m2, seq: 2 },
        { from_device_id: 'rec-b', to_device_id: null, room_id: roomId, message_content: m3, seq: 3 },
        { from_device_id: 'rec-a', to_device_id: null, room_id: roomId, message_content: m4, seq: 4 },
      ],
    );
    for (const m of list) within(m.sent_at);
    for (let i = 1; i < list.length; i++)
      assert.ok(list[i - 1]!.sent_at <= list[i]!.sent_at, 'sent_at in order');
    // The ids follow the same order.
    const ids = (await rows<{ seq: number }>('select seq from messages order by id')).map((r) => r.seq);
    assert.deepEqual(ids, [1, 2, 3, 4]);
  });

  it('room_queries: every query with device, room and time, in order', async () => {
    const list = await rows<QueryRow>('select device_id, room_id, queried_at from room_queries order by id');
    assert.deepEqual(
      list.map((q) => ({ device_id: q.device_id, room_id: q.room_id })),
      [
        { device_id: 'rec-a', room_id: roomId },
        { device_id: 'rec-b', room_id: roomId },
        { device_id: 'rec-a', room_id: roomId },
      ],
    );
    for (const q of list) within(q.queried_at);
  });
});

describe('names and messages with SQL metacharacters and unicode are stored byte-exact', () => {
  const srv = useServer();

  const deviceA = `dev'); DROP TABLE devices; -- "x" \\ % _ ü 🚀`;
  const identityA = `Robert'); DELETE FROM rooms;--\t\n 名前 é (e\u0301) \u202eRTL`;
  const deviceB = `' OR '1'='1`;
  const identityB = `"; SELECT * FROM connections; /* 🎉 */`;

  it('device_id and identity come back exactly in room_info and in every table', async () => {
    const a = await joinNew(srv.url, deviceA, identityA);
    const b = await joinExisting(srv.url, deviceB, identityB, a.roomId);
    assert.deepEqual(await b.queryRoom(), {
      type: 'room_info',
      room_id: a.roomId,
      total_clients: 2,
      clients: [{ device_id: deviceA, identity: identityA }],
    });
    assert.deepEqual(await a.client.queryRoom(), {
      type: 'room_info',
      room_id: a.roomId,
      total_clients: 2,
      clients: [{ device_id: deviceB, identity: identityB }],
    });
    const text = `{"sql":"'; DROP TABLE messages; --","pct":"100% _x_","nul":"\\u0000","bs":"\\\\","u":"ß∂ƒ🙂"}`;
    a.client.send(text);
    assert.equal(await b.nextText(), text);

    const devices = await srv.rows('select device_id, last_identity from devices order by device_id');
    assert.deepEqual(
      devices,
      [
        { device_id: deviceA, last_identity: identityA },
        { device_id: deviceB, last_identity: identityB },
      ].sort((x, y) => Buffer.compare(Buffer.from(x.device_id), Buffer.from(y.device_id))),
    );
    const connections = await srv.rows('select device_id, identity from connections order by id');
    assert.deepEqual(connections, [
      { device_id: deviceA, identity: identityA },
      { device_id: deviceB, identity: identityB },
    ]);
    const messages = await srv.rows('select from_device_id, message_content from messages');
    assert.deepEqual(messages, [{ from_device_id: deviceA, message_content: text }]);
    const queries = await srv.rows('select device_id from room_queries order by id');
    assert.deepEqual(queries, [{ device_id: deviceB }, { device_id: deviceA }]);
    // Nothing was dropped or deleted by the metacharacters.
    assert.deepEqual(await srv.rows('select room_id from rooms'), [{ room_id: a.roomId }]);

    // And the device is recognised again by its exact id.
    await b.close();
    const back = await TestClient.join(srv.url, { device_id: deviceB, identity: identityB });
    assert.equal(back.reply.status, 'reconnected');
    assert.equal(back.reply.room_id, a.roomId);
    await back.client.close();
    await a.client.close();
  });
});
