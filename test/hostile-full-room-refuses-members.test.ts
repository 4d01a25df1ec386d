import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { newRoomL2 } from './helpers/level2.js';
import { waitFor } from './helpers/wait.js';
import { assertStillServes, countRows, tryHello } from './helpers/hostile.js';

describe('a full room (--max-room-members)', () => {
  const srv = useServer({ maxRoomMembers: 2 });

  it('the third hello gets room_full and 4015, is not recorded, and the members are untouched', async () => {
    const a = await joinNew(srv.url, 'full-a', 'a');
    const b = await joinExisting(srv.url, 'full-b', 'b', a.roomId);
    const third = await tryHello(srv.url, { device_id: 'full-c', identity: 'c', room_id: a.roomId });
    assert.equal(third.reply?.type, 'error');
    assert.equal(third.reply?.code, 'room_full');
    assert.equal((await third.client.closed).code, CloseCode.RoomFull);

    const info = await a.client.queryRoom();
    assert.equal(info.total_clients, 2);
    b.send('{"to":"a"}');
    assert.equal(await a.client.nextText(), '{"to":"a"}');
    assert.equal(await countRows(srv, 'connections', "device_id = 'full-c'"), 0);
    assert.equal(await countRows(srv, 'devices', "device_id = 'full-c'"), 0);

    // A place frees up when a member leaves (the server sees the close a moment after the client).
    await b.close();
    const joined = await waitFor('a free place in the room', async () => {
      const attempt = await tryHello(srv.url, { device_id: 'full-c', identity: 'c', room_id: a.roomId });
      if (attempt.reply?.type === 'room') return attempt.client;
      assert.equal(attempt.reply?.code, 'room_full');
      await attempt.client.closed;
      return undefined;
    });
    assert.equal((await joined.queryRoom()).total_clients, 2);
    await joined.close();
    await a.client.close();
  });

  it('a Level 2 hello into a full room is refused and closed with 4015 too', async () => {
    const a = await joinNew(srv.url, 'full-l2-a', 'a');
    const b = await joinExisting(srv.url, 'full-l2-b', 'b', a.roomId);
    const third = await tryHello(srv.url, {
      device_id: 'full-l2-c',
      identity: 'c',
      room_id: a.roomId,
      protocol: 2,
    });
    assert.equal(third.reply?.type, 'error');
    assert.equal(third.reply?.code, 'room_full');
    assert.equal((await third.client.closed).code, CloseCode.RoomFull);
    assert.equal((await a.client.queryRoom()).total_clients, 2);
    await b.close();
    await a.client.close();
  });

  it('a Level 2 join_room into a full room gets room_full and stays where it was', async () => {
    const a = await joinNew(srv.url, 'full-jr-a', 'a');
    const b = await joinExisting(srv.url, 'full-jr-b', 'b', a.roomId);
    const mover = await newRoomL2(srv.url, 'full-jr-mover', 'mover');
    mover.client.send({ type: 'join_room', room_id: a.roomId, ack_id: 1 });
    const error = await mover.client.next();
    assert.equal(error.type, 'error');
    assert.equal(error.code, 'room_full');
    assert.equal(error.ack_id, 1);
    const info = await mover.client.queryRoom();
    assert.equal(info.room_id, mover.roomId);
    assert.equal((await a.client.queryRoom()).total_clients, 2);
    assert.equal(
      await countRows(srv, 'connections', "device_id = 'full-jr-mover' and room_id = ?", a.roomId),
      0,
    );
    for (const c of [mover.client, b, a.client]) await c.close();
    await assertStillServes(srv, 'full');
  });
});
