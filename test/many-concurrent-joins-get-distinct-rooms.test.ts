import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { ROOM_CODE } from './helpers/wait.js';

const COUNT = 200;

describe('many concurrent joins', () => {
  const srv = useServer();

  it(`${COUNT} new devices joining at once get ${COUNT} distinct new rooms`, async () => {
    const joins = await Promise.all(
      Array.from({ length: COUNT }, (_, i) =>
        TestClient.join(srv.url, { device_id: `many-${i}`, identity: `user-${i}` }),
      ),
    );
    const ids = joins.map((j) => {
      assert.equal(j.reply.type, 'room', JSON.stringify(j.reply));
      assert.equal(j.reply.status, 'created_new');
      return String(j.reply.room_id);
    });
    for (const id of ids) assert.match(id, ROOM_CODE);
    assert.equal(new Set(ids).size, COUNT);
    const rooms = await srv.rows<{ room_id: string }>('select room_id from rooms');
    assert.equal(rooms.length, COUNT);
    assert.deepEqual(rooms.map((r) => r.room_id).sort(), [...ids].sort());
    const devices = await srv.rows<{ device_id: string; last_room_id: string }>(
      'select device_id, last_room_id from devices',
    );
    assert.equal(devices.length, COUNT);
    for (const d of devices) assert.equal(d.last_room_id, ids[Number(d.device_id.slice('many-'.length))]);
    // Each is alone in its room.
    const infos = await Promise.all(joins.map((j) => j.client.queryRoom()));
    infos.forEach((info, i) =>
      assert.deepEqual(info, { type: 'room_info', room_id: ids[i], total_clients: 1, clients: [] }),
    );
    await Promise.all(joins.map((j) => j.client.close()));
  });

  it(`${COUNT / 4} devices joining one room at once all end up in it`, async () => {
    const owner = await TestClient.join(srv.url, { device_id: 'crowd-owner', identity: 'screen' });
    const roomId = String(owner.reply.room_id);
    const n = COUNT / 4;
    const joins = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        TestClient.join(srv.url, { device_id: `crowd-${i}`, identity: 'phone', room_id: roomId }),
      ),
    );
    for (const j of joins) assert.equal(j.reply.status, 'joined_existing');
    const info = await owner.client.queryRoom();
    assert.equal(info.total_clients, n + 1);
    assert.equal((info.clients as unknown[]).length, n);
    owner.client.send('{"to":"all"}');
    for (const j of joins) assert.equal(await j.client.nextText(), '{"to":"all"}');
    await Promise.all([owner.client.close(), ...joins.map((j) => j.client.close())]);
  });
});
