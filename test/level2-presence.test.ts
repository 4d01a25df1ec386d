import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting } from './helpers/rooms.js';
import { framesBeforePong, joinExistingL2, joinL2, newRoomL2 } from './helpers/level2.js';

/** The exact text of a presence event (keys in this order). */
function presence(type: 'member_joined' | 'member_left', roomId: string, deviceId: string, identity: string) {
  return JSON.stringify({ type, room_id: roomId, device_id: deviceId, identity });
}

const byDevice = (a: { device_id: string }, b: { device_id: string }) =>
  a.device_id.localeCompare(b.device_id);

describe('Level 2 presence: member_joined / member_left per device, to the other Level 2 members', () => {
  const srv = useServer();

  it('joins and leaves of Level 1 and Level 2 devices are announced to the others, never to the joiner', async () => {
    const a = await newRoomL2(srv.url, 'pr-a', 'Alpha');
    const room = a.roomId;
    const b = await joinExistingL2(srv.url, 'pr-b', 'Beta', room);
    assert.equal(await a.client.nextText(), presence('member_joined', room, 'pr-b', 'Beta'));
    // The joiner's reply lists everyone, itself included; no event about itself follows.
    assert.deepEqual([...(b.reply.members as { device_id: string }[])].sort(byDevice), [
      { device_id: 'pr-a', identity: 'Alpha' },
      { device_id: 'pr-b', identity: 'Beta' },
    ]);
    assert.deepEqual(await framesBeforePong(b.client), []);

    // A Level 1 joiner is announced to the Level 2 members; it gets no events itself.
    const c = await joinExisting(srv.url, 'pr-c', 'Gamma', room);
    assert.equal(await a.client.nextText(), presence('member_joined', room, 'pr-c', 'Gamma'));
    assert.equal(await b.client.nextText(), presence('member_joined', room, 'pr-c', 'Gamma'));

    const d = await joinExistingL2(srv.url, 'pr-d', 'Delta', room);
    assert.equal(d.reply.seq, 0);
    assert.deepEqual([...(d.reply.members as { device_id: string }[])].sort(byDevice), [
      { device_id: 'pr-a', identity: 'Alpha' },
      { device_id: 'pr-b', identity: 'Beta' },
      { device_id: 'pr-c', identity: 'Gamma' },
      { device_id: 'pr-d', identity: 'Delta' },
    ]);
    for (const l2 of [a.client, b.client]) {
      assert.equal(await l2.nextText(), presence('member_joined', room, 'pr-d', 'Delta'));
    }
    assert.deepEqual(await framesBeforePong(d.client), []);
    // The Level 1 member heard of none of it.
    assert.equal((await c.queryRoom()).type, 'room_info');

    // The Level 1 member closes: announced as left to every Level 2 member.
    await c.close();
    for (const l2 of [a.client, b.client, d.client]) {
      assert.equal(await l2.nextText(), presence('member_left', room, 'pr-c', 'Gamma'));
    }
    // A Level 2 member leaves by leave_room: announced; it gets "left" and nothing about itself.
    d.client.send({ type: 'leave_room' });
    assert.deepEqual(await d.client.next(), { type: 'left', room_id: room });
    for (const l2 of [a.client, b.client]) {
      assert.equal(await l2.nextText(), presence('member_left', room, 'pr-d', 'Delta'));
    }
    assert.deepEqual(await framesBeforePong(d.client), []);
    // And one that is cut off (no close handshake) is announced too, once the server notices.
    b.client.ws.terminate();
    assert.equal(await a.client.nextText(), presence('member_left', room, 'pr-b', 'Beta'));
    assert.deepEqual(await framesBeforePong(a.client), []);
    for (const client of [a.client, d.client]) await client.close();
  });

  it('a connection replaced by a new one of the same device (close 4009) produces no member_left or member_joined', async () => {
    const a = await newRoomL2(srv.url, 'rep-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'rep-b', 'Beta', a.roomId);
    assert.equal(await a.client.nextText(), presence('member_joined', a.roomId, 'rep-b', 'Beta'));
    const c1 = await joinExisting(srv.url, 'rep-c', 'Gamma', a.roomId);
    assert.equal(await a.client.nextText(), presence('member_joined', a.roomId, 'rep-c', 'Gamma'));
    assert.equal(await b.client.nextText(), presence('member_joined', a.roomId, 'rep-c', 'Gamma'));

    // The same Level 2 device again: the old connection is closed with 4009.
    const b2 = await joinL2(srv.url, 'rep-b', 'Beta', a.roomId);
    assert.equal(b2.reply.status, 'joined_existing');
    assert.equal((await b.client.closed).code, 4009);
    assert.deepEqual([...(b2.reply.members as { device_id: string }[])].sort(byDevice), [
      { device_id: 'rep-a', identity: 'Alpha' },
      { device_id: 'rep-b', identity: 'Beta' },
      { device_id: 'rep-c', identity: 'Gamma' },
    ]);
    // The same Level 1 device again (reconnecting to its last room).
    const { client: c2, reply } = await TestClient.join(srv.url, { device_id: 'rep-c', identity: 'Gamma' });
    assert.equal(reply.status, 'reconnected');
    assert.equal((await c1.closed).code, 4009);
    // Nobody was told of a leave or a join.
    assert.deepEqual(await framesBeforePong(a.client), []);
    assert.deepEqual(await framesBeforePong(b2.client), []);
    const info = await c2.queryRoom();
    assert.equal(info.total_clients, 3);
    for (const client of [a.client, b2.client, c2]) await client.close();
  });

  it('join_room elsewhere: member_left in the old room, member_joined in the new one', async () => {
    const a = await newRoomL2(srv.url, 'mv-a', 'Alpha');
    const x = await newRoomL2(srv.url, 'mv-x', 'Xray');
    const m = await joinExistingL2(srv.url, 'mv-m', 'Mover', a.roomId);
    assert.equal(await a.client.nextText(), presence('member_joined', a.roomId, 'mv-m', 'Mover'));
    m.client.send({ type: 'join_room', room_id: x.roomId.toLowerCase() });
    const reply = await m.client.next();
    assert.equal(reply.type, 'room');
    assert.equal(reply.room_id, x.roomId);
    assert.equal(await a.client.nextText(), presence('member_left', a.roomId, 'mv-m', 'Mover'));
    assert.equal(await x.client.nextText(), presence('member_joined', x.roomId, 'mv-m', 'Mover'));
    assert.deepEqual(await framesBeforePong(m.client), []);
    for (const client of [a.client, x.client, m.client]) await client.close();
  });
});

describe('presence with --same-device allow: per device, not per connection', () => {
  const srv = useServer({ sameDevice: 'allow' });

  it('a second connection of a device is no join; closing one of two is no leave; closing the last is', async () => {
    const a = await newRoomL2(srv.url, 'al-a', 'Alpha');
    const b1 = await joinExistingL2(srv.url, 'al-b', 'Beta', a.roomId);
    assert.equal(await a.client.nextText(), presence('member_joined', a.roomId, 'al-b', 'Beta'));
    const b2 = await joinExistingL2(srv.url, 'al-b', 'Beta', a.roomId);
    // The members list names each device once.
    assert.deepEqual([...(b2.reply.members as { device_id: string }[])].sort(byDevice), [
      { device_id: 'al-a', identity: 'Alpha' },
      { device_id: 'al-b', identity: 'Beta' },
    ]);
    assert.deepEqual(await framesBeforePong(a.client), []);
    await b1.client.close();
    // The server saw the close once room_info counts two connections.
    for (let i = 0; ; i++) {
      const info = await a.client.queryRoom();
      assert.equal(info.type, 'room_info');
      if (info.total_clients === 2) break;
      assert.ok(i < 500, 'the server never saw the close');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(await framesBeforePong(a.client), []);
    await b2.client.close();
    assert.equal(await a.client.nextText(), presence('member_left', a.roomId, 'al-b', 'Beta'));
    await a.client.close();
  });
});
