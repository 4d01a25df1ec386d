import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { ISO_MS, waitFor } from './helpers/wait.js';

type Member = { device_id: string; identity: string };
const sorted = (list: unknown) =>
  [...(list as Member[])].sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));

describe('same device twice in a room: replace (default)', () => {
  const srv = useServer();

  it('the older connection is closed with 4009 and the newer is the only one of that device', async () => {
    const old = await joinNew(srv.url, 'dup', 'first');
    const newer = await TestClient.join(srv.url, {
      device_id: 'dup',
      identity: 'second',
      room_id: old.roomId,
    });
    assert.equal(newer.reply.status, 'joined_existing');
    assert.equal((await old.client.closed).code, CloseCode.Replaced);

    const third = await joinExisting(srv.url, 'dup-watcher', 'third', old.roomId);
    assert.deepEqual(await third.queryRoom(), {
      type: 'room_info',
      room_id: old.roomId,
      total_clients: 2,
      clients: [{ device_id: 'dup', identity: 'second' }],
    });
    // The newer connection is the one that is live.
    third.send('{"to":"dup"}');
    assert.equal(await newer.client.nextText(), '{"to":"dup"}');
    assert.deepEqual(await newer.client.queryRoom(), {
      type: 'room_info',
      room_id: old.roomId,
      total_clients: 2,
      clients: [{ device_id: 'dup-watcher', identity: 'third' }],
    });

    // The replaced connection is recorded as disconnected.
    const rows = await waitFor('the replaced connection closed in the record', async () => {
      const r = await srv.rows<{ identity: string; disconnected_at: string | null }>(
        "select identity, disconnected_at from connections where device_id = 'dup' order by id",
      );
      return r[0]?.disconnected_at ? r : undefined;
    });
    assert.equal(rows.length, 2);
    assert.equal(rows[0]!.identity, 'first');
    assert.match(rows[0]!.disconnected_at!, ISO_MS);
    assert.equal(rows[1]!.identity, 'second');
    assert.equal(rows[1]!.disconnected_at, null);
    await third.close();
    await newer.client.close();
  });

  it('reconnecting without room_id also replaces the older connection', async () => {
    const old = await joinNew(srv.url, 'dup-re', 'first');
    const newer = await TestClient.join(srv.url, { device_id: 'dup-re', identity: 'again' });
    assert.equal(newer.reply.status, 'reconnected');
    assert.equal(newer.reply.room_id, old.roomId);
    assert.equal((await old.client.closed).code, CloseCode.Replaced);
    assert.deepEqual(await newer.client.queryRoom(), {
      type: 'room_info',
      room_id: old.roomId,
      total_clients: 1,
      clients: [],
    });
    await newer.client.close();
  });

  it('the same device in two different rooms is not replaced', async () => {
    const first = await joinNew(srv.url, 'dup-two-rooms', 'x');
    const otherRoom = await joinNew(srv.url, 'dup-other-owner', 'y');
    const second = await joinExisting(srv.url, 'dup-two-rooms', 'x', otherRoom.roomId);
    // Both still answer.
    assert.equal((await first.client.queryRoom()).total_clients, 1);
    assert.equal((await second.queryRoom()).total_clients, 2);
    for (const c of [first.client, otherRoom.client, second]) await c.close();
  });
});

describe('same device twice in a room: allow', () => {
  const srv = useServer({ sameDevice: 'allow' });

  it('both connections stay; a third client sees total 3 and both of them', async () => {
    const old = await joinNew(srv.url, 'dup', 'first');
    const newer = await joinExisting(srv.url, 'dup', 'second', old.roomId);
    const third = await joinExisting(srv.url, 'dup-watcher', 'third', old.roomId);
    const info = await third.queryRoom();
    assert.equal(info.type, 'room_info');
    assert.equal(info.room_id, old.roomId);
    assert.equal(info.total_clients, 3);
    assert.deepEqual(sorted(info.clients), [
      { device_id: 'dup', identity: 'first' },
      { device_id: 'dup', identity: 'second' },
    ]);
    // Each receives what the others send, including the other connection of the same device.
    third.send('{"from":"third"}');
    assert.equal(await old.client.nextText(), '{"from":"third"}');
    assert.equal(await newer.nextText(), '{"from":"third"}');
    old.client.send('{"from":"old"}');
    assert.equal(await newer.nextText(), '{"from":"old"}');
    assert.equal(await third.nextText(), '{"from":"old"}');
    assert.equal((await old.client.queryRoom()).total_clients, 3);
    assert.equal((await newer.queryRoom()).total_clients, 3);
    for (const c of [old.client, newer, third]) await c.close();
  });
});
