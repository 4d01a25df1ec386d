import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { CloseCode } from '../src/protocol/codes.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { newRoomL2 } from './helpers/level2.js';
import { countRows, tryHello } from './helpers/hostile.js';

const FAILED_JOINS = 3;
/** Well-formed codes of no room (a room code is 8 of A-Z0-9 from a CSPRNG; these are never drawn in a test run). */
const GUESSES = ['ZZZZZZZ1', 'ZZZZZZZ2', 'ZZZZZZZ3', 'ZZZZZZZ4', 'ZZZZZZZ5'];

const TOO_MANY = 'too_many_failed_joins';

/** A hello naming `roomId`; returns the one answer and the close code. */
async function guess(url: string, deviceId: string, roomId: string) {
  const { client, reply } = await tryHello(url, {
    device_id: deviceId,
    identity: 'guesser',
    room_id: roomId,
  });
  return { reply, code: (await client.closed).code };
}

describe('room-code guessing by hello (--failed-joins-per-minute, loopback limited)', () => {
  const srv = useServer({ failedJoinsPerMinute: FAILED_JOINS, limitLoopback: true });

  it('past the limit a guess gets too_many_failed_joins and 4029, even for a code that exists', async () => {
    // An honest pair shares a room before any guessing (joining by code is what the limit blocks).
    const owner = await joinNew(srv.url, 'guess-owner', 'owner');
    const friend = await joinExisting(srv.url, 'guess-friend', 'friend', owner.roomId);
    await friend.close();

    for (const roomId of GUESSES.slice(0, FAILED_JOINS)) {
      const got = await guess(srv.url, 'guess-attacker', roomId);
      assert.deepEqual(got.reply, {
        type: 'error',
        message: `Room ${roomId} does not exist`,
        code: 'room_not_found',
      });
      assert.equal(got.code, CloseCode.RoomNotFound);
    }
    const fourth = await guess(srv.url, 'guess-attacker', GUESSES[FAILED_JOINS]!);
    assert.equal(fourth.reply?.type, 'error');
    assert.equal(fourth.reply?.code, TOO_MANY);
    assert.equal(fourth.code, CloseCode.RateLimited);
    // A right guess is no use now: the answer must not tell a live code from a dead one.
    const right = await guess(srv.url, 'guess-attacker', owner.roomId);
    assert.equal(right.reply?.code, TOO_MANY);
    assert.equal(right.code, CloseCode.RateLimited);
    // Another device from the same IP is limited as well: the limit is per IP, not per device_id.
    const other = await guess(srv.url, 'guess-attacker-2', owner.roomId);
    assert.equal(other.reply?.code, TOO_MANY);

    // Nothing of the guesser was recorded, and no guessed room was created.
    assert.equal(await countRows(srv, 'connections', "device_id like 'guess-attacker%'"), 0);
    assert.equal(await countRows(srv, 'devices', "device_id like 'guess-attacker%'"), 0);
    assert.equal(await countRows(srv, 'rooms', "room_id like 'ZZZZZZZ%'"), 0);

    // Hellos that name no room still work from that IP: a device goes back to its last room, and
    // the honest pair talks.
    const back = await TestClient.join(srv.url, { device_id: 'guess-friend', identity: 'friend' });
    assert.equal(back.reply.status, 'reconnected');
    assert.equal(back.reply.room_id, owner.roomId);
    owner.client.send('{"still":"here"}');
    assert.equal(await back.client.nextText(), '{"still":"here"}');
    const created = await TestClient.join(srv.url, { device_id: 'guess-newcomer', identity: 'new' });
    assert.equal(created.reply.status, 'created_new');
    for (const c of [back.client, owner.client, created.client]) await c.close();
  });
});

describe('room-code guessing by Level 2 join_room (--failed-joins-per-minute, loopback limited)', () => {
  const srv = useServer({ failedJoinsPerMinute: FAILED_JOINS, limitLoopback: true });

  it('past the limit join_room gets too_many_failed_joins and the connection stays in its room', async () => {
    const target = await joinNew(srv.url, 'jr-target', 'target');
    const guesser = await newRoomL2(srv.url, 'jr-guesser', 'guesser');
    const mate = await joinExisting(srv.url, 'jr-mate', 'mate', guesser.roomId);
    assert.equal((await guesser.client.next()).type, 'member_joined');

    for (const roomId of GUESSES.slice(0, FAILED_JOINS)) {
      guesser.client.send({ type: 'join_room', room_id: roomId });
      assert.deepEqual(await guesser.client.next(), {
        type: 'error',
        message: `Room ${roomId} does not exist`,
        code: 'room_not_found',
      });
    }
    for (const roomId of [GUESSES[FAILED_JOINS]!, target.roomId]) {
      guesser.client.send({ type: 'join_room', room_id: roomId, ack_id: roomId });
      const error = await guesser.client.next();
      assert.equal(error.type, 'error');
      assert.equal(error.code, TOO_MANY);
      assert.equal(error.ack_id, roomId);
    }
    // Still open, still in its own room, still talking; the target room never saw it.
    const info = await guesser.client.queryRoom();
    assert.equal(info.room_id, guesser.roomId);
    guesser.client.send('{"still":"here"}');
    assert.equal(await mate.nextText(), '{"still":"here"}');
    assert.equal((await target.client.queryRoom()).total_clients, 1);
    assert.equal(await countRows(srv, 'connections', 'room_id = ?', target.roomId), 1);
    for (const c of [mate, guesser.client, target.client]) await c.close();
  });
});

describe('loopback peers are limited in failed joins by default too', () => {
  const srv = useServer({ failedJoinsPerMinute: FAILED_JOINS });

  it('past the limit, bad codes from loopback get too_many_failed_joins', async () => {
    for (const roomId of GUESSES.slice(0, FAILED_JOINS)) {
      const got = await guess(srv.url, 'guess-local', roomId);
      assert.equal(got.reply?.code, 'room_not_found');
      assert.equal(got.code, CloseCode.RoomNotFound);
    }
    const got = await guess(srv.url, 'guess-local', GUESSES[FAILED_JOINS]!);
    assert.equal(got.reply?.code, 'too_many_failed_joins');
    assert.equal(got.code, CloseCode.RateLimited);
    // Room codes are refused to this address for the minute; creating a room is not.
    const fresh = await tryHello(srv.url, { device_id: 'guess-local-new', identity: 'honest' });
    assert.equal(fresh.reply?.status, 'created_new');
    await fresh.client.close();
  });
});
