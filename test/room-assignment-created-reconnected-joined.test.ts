import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew, roomInfoWhenTotal } from './helpers/rooms.js';
import { ROOM_CODE } from './helpers/wait.js';

describe('room assignment: created_new, reconnected, joined_existing', () => {
  const srv = useServer();

  it('a new device without room_id gets a new room (created_new) with the exact reply', async () => {
    const { client, reply } = await TestClient.join(srv.url, { device_id: 'as-new', identity: 'phone' });
    const roomId = String(reply.room_id);
    assert.match(roomId, ROOM_CODE);
    assert.deepEqual(reply, {
      type: 'room',
      room_id: roomId,
      status: 'created_new',
      message: `created_new: joined room ${roomId}`,
    });
    const rows = await srv.rows('select room_id from rooms where room_id = ?', roomId);
    assert.deepEqual(rows, [{ room_id: roomId }]);
    await client.close();
  });

  it('two new devices get two different rooms', async () => {
    const a = await joinNew(srv.url, 'as-two-a', 'x');
    const b = await joinNew(srv.url, 'as-two-b', 'x');
    assert.notEqual(a.roomId, b.roomId);
    await a.client.close();
    await b.client.close();
  });

  it('a known device without room_id goes back to its last room (reconnected)', async () => {
    const first = await joinNew(srv.url, 'as-back', 'phone');
    await first.client.close();
    const { client, reply } = await TestClient.join(srv.url, { device_id: 'as-back', identity: 'phone' });
    assert.deepEqual(reply, {
      type: 'room',
      room_id: first.roomId,
      status: 'reconnected',
      message: `reconnected: joined room ${first.roomId}`,
    });
    await client.close();
  });

  it('a device reconnecting while another member is still in its room comes back into it', async () => {
    const a = await joinNew(srv.url, 'as-stay-a', 'screen');
    const b = await joinExisting(srv.url, 'as-stay-b', 'phone', a.roomId);
    await b.close();
    const { client, reply } = await TestClient.join(srv.url, { device_id: 'as-stay-b', identity: 'phone' });
    assert.equal(reply.status, 'reconnected');
    assert.equal(reply.room_id, a.roomId);
    const info = await a.client.queryRoom();
    assert.deepEqual(info.clients, [{ device_id: 'as-stay-b', identity: 'phone' }]);
    await client.close();
    await a.client.close();
  });

  it('a room_id of an existing room joins it (joined_existing) with the exact reply', async () => {
    const a = await joinNew(srv.url, 'as-owner', 'screen');
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'as-guest',
      identity: 'phone',
      room_id: a.roomId,
    });
    assert.deepEqual(reply, {
      type: 'room',
      room_id: a.roomId,
      status: 'joined_existing',
      message: `joined_existing: joined room ${a.roomId}`,
    });
    await client.close();
    await a.client.close();
  });

  it('a known device that names a room joins it (joined_existing), not its last room', async () => {
    const own = await joinNew(srv.url, 'as-known', 'x');
    await own.client.close();
    const other = await joinNew(srv.url, 'as-other-owner', 'y');
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'as-known',
      identity: 'x',
      room_id: other.roomId,
    });
    assert.equal(reply.status, 'joined_existing');
    assert.equal(reply.room_id, other.roomId);
    await client.close();
    await other.client.close();
  });

  it('a room everyone has left still exists and is joinable by its code', async () => {
    const a = await joinNew(srv.url, 'as-empty-a', 'x');
    const b = await joinExisting(srv.url, 'as-empty-b', 'y', a.roomId);
    await b.close();
    await a.client.close();
    const c = await joinExisting(srv.url, 'as-empty-c', 'z', a.roomId);
    const info = await roomInfoWhenTotal(c, 1);
    assert.deepEqual(info, { type: 'room_info', room_id: a.roomId, total_clients: 1, clients: [] });
    await c.close();
  });

  it('a room whose only member left is joinable again, also in lower case', async () => {
    const a = await joinNew(srv.url, 'as-lonely', 'x');
    await a.client.close();
    const b = await joinExisting(srv.url, 'as-late', 'y', a.roomId.toLowerCase());
    await b.close();
  });
});
