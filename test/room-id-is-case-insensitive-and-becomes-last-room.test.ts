import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinNew } from './helpers/rooms.js';

describe('room_id is case-insensitive and the joined room becomes the last room', () => {
  const srv = useServer();

  it('a lower-case code joins the upper-case room; the reply carries the upper-case code', async () => {
    const owner = await joinNew(srv.url, 'ci-owner', 'screen');
    const lower = owner.roomId.toLowerCase();
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'ci-guest',
      identity: 'phone',
      room_id: lower,
    });
    assert.deepEqual(reply, {
      type: 'room',
      room_id: owner.roomId,
      status: 'joined_existing',
      message: `joined_existing: joined room ${owner.roomId}`,
    });
    // Really the same room: the owner sees the guest.
    const info = await owner.client.queryRoom();
    assert.deepEqual(info, {
      type: 'room_info',
      room_id: owner.roomId,
      total_clients: 2,
      clients: [{ device_id: 'ci-guest', identity: 'phone' }],
    });
    await client.close();
    await owner.client.close();
  });

  it('a mixed-case code joins the room too', async () => {
    const owner = await joinNew(srv.url, 'ci-mixed-owner', 'screen');
    const mixed = [...owner.roomId].map((ch, i) => (i % 2 ? ch.toLowerCase() : ch)).join('');
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'ci-mixed',
      identity: 'p',
      room_id: mixed,
    });
    assert.equal(reply.status, 'joined_existing');
    assert.equal(reply.room_id, owner.roomId);
    await client.close();
    await owner.client.close();
  });

  it('joining a room by (lower-case) code makes it the device’s last room', async () => {
    const own = await joinNew(srv.url, 'ci-mover', 'phone');
    await own.client.close();
    const target = await joinNew(srv.url, 'ci-target-owner', 'screen');
    assert.notEqual(own.roomId, target.roomId);
    const moved = await TestClient.join(srv.url, {
      device_id: 'ci-mover',
      identity: 'phone',
      room_id: target.roomId.toLowerCase(),
    });
    assert.equal(moved.reply.status, 'joined_existing');
    await moved.client.close();
    const back = await TestClient.join(srv.url, { device_id: 'ci-mover', identity: 'phone' });
    assert.deepEqual(back.reply, {
      type: 'room',
      room_id: target.roomId,
      status: 'reconnected',
      message: `reconnected: joined room ${target.roomId}`,
    });
    await back.client.close();
    await target.client.close();
    const rows = await srv.rows('select last_room_id from devices where device_id = ?', 'ci-mover');
    assert.deepEqual(rows, [{ last_room_id: target.roomId }]);
  });
});
