import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExistingL2, newRoomL2, nextEnvelope } from './helpers/level2.js';
import { INVALID_HELLO, assertStillServes, countRows, refusedFirstFrame } from './helpers/hostile.js';

/** Values of every JSON type but string (null is "absent" in a hello, so it is not here). */
const NOT_STRINGS: unknown[] = [0, 123, -1, 1.5, 1e300, true, false, [], ['x'], {}, { a: 1 }];

const RESUME_SHAPE = {
  type: 'error',
  message: 'Field resume must be {"room_id": string, "last_seq": integer >= 0}',
  code: 'invalid_message',
};
const SEND_SHAPE = {
  type: 'error',
  message: 'A send needs "to" (a device_id) and "data" (an object)',
  code: 'invalid_message',
};
const JOIN_SHAPE = { type: 'error', message: 'A join_room needs "room_id"', code: 'invalid_message' };
const HISTORY_SHAPE = {
  type: 'error',
  message: 'A history request takes "before_seq" and "limit", positive integers',
  code: 'invalid_message',
};

describe('wrong field types in a hello are refused with the documented code and close', () => {
  const srv = useServer();

  async function expectRefused(hello: string, frame: Record<string, unknown>, close: number): Promise<void> {
    const got = await refusedFirstFrame(srv.url, hello);
    assert.deepEqual(got.frame, frame, `for ${hello}`);
    assert.equal(got.code, close, `for ${hello}`);
  }

  it('device_id, identity or room_id of any non-string type → invalid_identity, 4000', async () => {
    for (const value of NOT_STRINGS) {
      const v = JSON.stringify(value);
      await expectRefused(`{"device_id":${v},"identity":"x"}`, INVALID_HELLO, CloseCode.InvalidHello);
      await expectRefused(`{"device_id":"wt-dev","identity":${v}}`, INVALID_HELLO, CloseCode.InvalidHello);
      await expectRefused(
        `{"device_id":"wt-dev","identity":"x","room_id":${v}}`,
        INVALID_HELLO,
        CloseCode.InvalidHello,
      );
    }
  });

  it('a protocol other than absent, null, 1 or 2 → unsupported_protocol, 4000', async () => {
    for (const value of ['2', '1', 'two', 3, 0, -1, 1.5, 2.000001, true, [2], { level: 2 }]) {
      await expectRefused(
        JSON.stringify({ device_id: 'wt-proto', identity: 'x', protocol: value }),
        {
          type: 'error',
          message: `Unsupported protocol ${JSON.stringify(value)}: this server speaks 1 and 2`,
          code: 'unsupported_protocol',
        },
        CloseCode.InvalidHello,
      );
    }
  });

  it('a Level 2 resume of the wrong shape → invalid_message, 4000', async () => {
    const room = 'AAAAAAAA';
    for (const resume of [
      'x',
      1,
      true,
      [],
      [room, 0],
      {},
      { room_id: room },
      { last_seq: 0 },
      { room_id: 1, last_seq: 0 },
      { room_id: null, last_seq: 0 },
      { room_id: room, last_seq: -1 },
      { room_id: room, last_seq: 1.5 },
      { room_id: room, last_seq: '3' },
      { room_id: room, last_seq: null },
      { room_id: room, last_seq: 2 ** 53 },
      { room_id: room, last_seq: [0] },
    ]) {
      await expectRefused(
        JSON.stringify({ device_id: 'wt-resume', identity: 'x', protocol: 2, resume }),
        RESUME_SHAPE,
        CloseCode.InvalidHello,
      );
    }
  });

  it('a refused hello records nothing, and the server still serves', async () => {
    assert.equal(await countRows(srv, 'devices', "device_id like 'wt-%'"), 0);
    assert.equal(await countRows(srv, 'connections', "device_id like 'wt-%'"), 0);
    await assertStillServes(srv, 'wt-hello');
  });

  it('a Level 1 hello with a malformed resume is an ordinary hello (unknown fields are ignored)', async () => {
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'wt-l1-resume',
      identity: 'x',
      resume: 'garbage',
    });
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    await client.close();
  });
});

describe('wrong field types in Level 2 control messages are answered; the connection stays', () => {
  const srv = useServer();

  /** A sender and a Level 2 receiver in one room. */
  async function pair(tag: string) {
    const a = await newRoomL2(srv.url, `${tag}-s`, 'sender');
    const b = await joinExistingL2(srv.url, `${tag}-r`, 'receiver', a.roomId);
    assert.equal((await a.client.next()).type, 'member_joined');
    return { sender: a.client, receiver: b.client, roomId: a.roomId };
  }

  it('send with a non-string/empty "to" or a non-object "data" → invalid_message (with the ack_id)', async () => {
    const { sender, receiver, roomId } = await pair('wt-send');
    let ack = 0;
    for (const to of [...NOT_STRINGS, null, '']) {
      sender.send({ type: 'send', to, data: { a: 1 }, ack_id: ++ack });
      assert.deepEqual(await sender.next(), { ...SEND_SHAPE, ack_id: ack });
    }
    for (const data of ['x', 1, true, null, [], [{ a: 1 }]]) {
      sender.send({ type: 'send', to: 'wt-send-r', data, ack_id: ++ack });
      assert.deepEqual(await sender.next(), { ...SEND_SHAPE, ack_id: ack });
    }
    sender.send({ type: 'send', to: 'wt-send-r' });
    assert.deepEqual(await sender.next(), SEND_SHAPE);
    // No seq was used and nothing was recorded: the next message is seq 1.
    sender.send({ marker: true });
    const envelope = await nextEnvelope(receiver);
    assert.equal(envelope.seq, 1);
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', roomId), 1);
    await receiver.close();
    await sender.close();
  });

  it('join_room with a missing or non-string room_id → invalid_message; SQL in it → room_not_found', async () => {
    const { sender, receiver, roomId } = await pair('wt-join');
    for (const room_id of [...NOT_STRINGS, null, '', undefined]) {
      sender.send({ type: 'join_room', room_id });
      assert.deepEqual(await sender.next(), JOIN_SHAPE, `for ${JSON.stringify(room_id)}`);
    }
    const sql = "'; DROP TABLE rooms; --";
    sender.send({ type: 'join_room', room_id: sql });
    assert.deepEqual(await sender.next(), {
      type: 'error',
      message: `Room ${sql.toUpperCase()} does not exist`,
      code: 'room_not_found',
    });
    // Still in its room, and the rooms table is intact.
    const info = await sender.queryRoom();
    assert.equal(info.room_id, roomId);
    assert.equal(info.total_clients, 2);
    assert.equal(await countRows(srv, 'rooms', 'room_id = ?', roomId), 1);
    await receiver.close();
    await sender.close();
  });

  it('history with a non-positive-integer before_seq or limit → invalid_message', async () => {
    const { sender, receiver, roomId } = await pair('wt-history');
    const bad = ['1', 0, -1, 1.5, null, true, [], {}, 2 ** 53];
    for (const value of bad) {
      sender.send({ type: 'history', before_seq: value });
      assert.deepEqual(await sender.next(), HISTORY_SHAPE, `before_seq ${JSON.stringify(value)}`);
      sender.send({ type: 'history', limit: value });
      assert.deepEqual(await sender.next(), HISTORY_SHAPE, `limit ${JSON.stringify(value)}`);
    }
    // 1e999 is valid JSON for Infinity: not an integer either.
    sender.send('{"type":"history","limit":1e999}');
    assert.deepEqual(await sender.next(), HISTORY_SHAPE);
    sender.send({ type: 'history' });
    assert.deepEqual(await sender.next(), { type: 'history', room_id: roomId, messages: [] });
    await receiver.close();
    await sender.close();
  });

  it('a "type" that is not a string is no control message: an ordinary broadcast, delivered and recorded', async () => {
    const { sender, receiver, roomId } = await pair('wt-type');
    const texts = ['{"type":1}', '{"type":null}', '{"type":["ping"]}', '{"type":{"join_room":"AAAAAAAA"}}'];
    for (const [i, text] of texts.entries()) {
      sender.send(text);
      const envelope = await nextEnvelope(receiver);
      assert.equal(envelope.seq, i + 1);
      assert.deepEqual(envelope.data, JSON.parse(text));
    }
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by seq',
      roomId,
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      texts,
    );
    await receiver.close();
    await sender.close();
    await assertStillServes(srv, 'wt-control');
  });
});
