import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { joinExisting } from './helpers/rooms.js';
import {
  assertEnvelope,
  framesBeforePong,
  joinExistingL2,
  nextEnvelope,
  newRoomL2,
} from './helpers/level2.js';

const INVALID_SEND = 'A send needs "to" (a device_id) and "data" (an object)';

describe('Level 2 directed send reaches only its target', () => {
  const srv = useServer();

  async function count(roomId: string): Promise<number> {
    const rows = await srv.rows<{ n: number | string }>(
      'select count(*) as n from messages where room_id = ?',
      roomId,
    );
    return Number(rows[0]!.n);
  }

  /** A (Level 2, sender), B (Level 2), C (Level 1), D (Level 2) in one room, presence consumed. */
  async function room(prefix: string) {
    const a = await newRoomL2(srv.url, `${prefix}-a`, 'Alpha');
    const b = await joinExistingL2(srv.url, `${prefix}-b`, 'Beta', a.roomId);
    const c = await joinExisting(srv.url, `${prefix}-c`, 'Gamma', a.roomId);
    const d = await joinExistingL2(srv.url, `${prefix}-d`, 'Delta', a.roomId);
    for (let i = 0; i < 3; i++) assert.equal((await a.client.next()).type, 'member_joined');
    for (let i = 0; i < 2; i++) assert.equal((await b.client.next()).type, 'member_joined');
    const close = async () => {
      for (const client of [a.client, b.client, c, d.client]) await client.close();
    };
    return { roomId: a.roomId, a: a.client, b: b.client, c, d: d.client, close };
  }

  it('a Level 2 target gets the envelope with "to"; a Level 1 target the inner JSON; nobody else anything', async () => {
    const r = await room('dir');
    r.a.send({ type: 'send', to: 'dir-b', data: { type: 'volume', level: 30 } });
    const raw = await r.b.nextText();
    const env = assertEnvelope(raw);
    assert.deepEqual(
      { ...env, sent_at: '' },
      {
        type: 'message',
        room_id: r.roomId,
        seq: 1,
        from: { device_id: 'dir-a', identity: 'Alpha' },
        sent_at: '',
        to: 'dir-b',
        data: { type: 'volume', level: 30 },
      },
    );

    r.a.send('{"type":"send","to":"dir-c","data":{"type":"highlight", "id":3}}');
    assert.equal(await r.c.nextText(), '{"type":"highlight","id":3}');

    // No ack without ack_id, no echo, and nothing reached the bystanders.
    assert.deepEqual(await framesBeforePong(r.a), []);
    assert.deepEqual(await framesBeforePong(r.b), []);
    assert.deepEqual(await framesBeforePong(r.d), []);
    assert.equal((await r.c.queryRoom()).type, 'room_info');

    const rows = await srv.rows(
      'select seq, from_device_id, to_device_id, message_content from messages where room_id = ? order by seq',
      r.roomId,
    );
    assert.deepEqual(rows, [
      {
        seq: 1,
        from_device_id: 'dir-a',
        to_device_id: 'dir-b',
        message_content: '{"type":"volume","level":30}',
      },
      {
        seq: 2,
        from_device_id: 'dir-a',
        to_device_id: 'dir-c',
        message_content: '{"type":"highlight","id":3}',
      },
    ]);
    await r.close();
  });

  it('a send with ack_id is acknowledged with its seq; the target does not get the ack_id', async () => {
    const r = await room('dack');
    r.a.send({ type: 'send', to: 'dack-d', data: { k: 'v' }, ack_id: 'x-1' });
    assert.deepEqual(await r.a.next(), { type: 'ack', ack_id: 'x-1', seq: 1 });
    const env = await nextEnvelope(r.d);
    assert.equal(env.seq, 1);
    assert.deepEqual(env.data, { k: 'v' });
    assert.ok(!('ack_id' in env));
    assert.deepEqual(await framesBeforePong(r.b), []);
    await r.close();
  });

  it('an unknown target: error unknown_target (with the ack_id), nothing recorded, no seq used', async () => {
    const r = await room('dunk');
    r.a.send({ type: 'send', to: 'watch-9', data: { x: 1 }, ack_id: 'm-18' });
    assert.deepEqual(await r.a.next(), {
      type: 'error',
      message: `Device watch-9 is not in room ${r.roomId}`,
      code: 'unknown_target',
      ack_id: 'm-18',
    });
    r.a.send({ type: 'send', to: 'watch-9', data: { x: 2 } });
    assert.deepEqual(await r.a.next(), {
      type: 'error',
      message: `Device watch-9 is not in room ${r.roomId}`,
      code: 'unknown_target',
    });
    // A device of another room is not in this one.
    const other = await newRoomL2(srv.url, 'dunk-elsewhere', 'E');
    r.a.send({ type: 'send', to: 'dunk-elsewhere', data: { x: 3 }, ack_id: 3 });
    assert.equal((await r.a.next()).code, 'unknown_target');
    // A device that has left is no longer a target.
    await r.d.close();
    assert.equal((await r.a.next()).type, 'member_left');
    assert.equal((await r.b.next()).type, 'member_left');
    r.a.send({ type: 'send', to: 'dunk-d', data: { x: 4 }, ack_id: 4 });
    assert.deepEqual(await r.a.next(), {
      type: 'error',
      message: `Device dunk-d is not in room ${r.roomId}`,
      code: 'unknown_target',
      ack_id: 4,
    });
    assert.equal(await count(r.roomId), 0);
    // The next accepted message takes seq 1: the refused ones used none.
    r.a.send({ type: 'send', to: 'dunk-b', data: { x: 5 }, ack_id: 5 });
    assert.deepEqual(await r.a.next(), { type: 'ack', ack_id: 5, seq: 1 });
    assert.equal((await nextEnvelope(r.b)).seq, 1);
    assert.deepEqual(await framesBeforePong(r.b), []); // never got the refused ones
    assert.equal((await r.c.queryRoom()).type, 'room_info');
    assert.equal(await count(r.roomId), 1);
    await other.client.close();
    await r.close();
  });

  it('a malformed send is answered invalid_message (with the ack_id) and neither delivered nor recorded', async () => {
    const r = await room('dbad');
    const bad: Record<string, unknown>[] = [
      { type: 'send', data: { x: 1 } },
      { type: 'send', to: '', data: { x: 1 } },
      { type: 'send', to: 5, data: { x: 1 } },
      { type: 'send', to: 'dbad-b' },
      { type: 'send', to: 'dbad-b', data: [1, 2] },
      { type: 'send', to: 'dbad-b', data: 'text' },
      { type: 'send', to: 'dbad-b', data: null },
    ];
    for (const frame of bad) {
      r.a.send(frame);
      assert.deepEqual(await r.a.next(), { type: 'error', message: INVALID_SEND, code: 'invalid_message' });
      r.a.send({ ...frame, ack_id: 'bad' });
      assert.deepEqual(await r.a.next(), {
        type: 'error',
        message: INVALID_SEND,
        code: 'invalid_message',
        ack_id: 'bad',
      });
    }
    assert.deepEqual(await framesBeforePong(r.b), []);
    assert.deepEqual(await framesBeforePong(r.d), []);
    assert.equal((await r.c.queryRoom()).type, 'room_info');
    assert.equal(await count(r.roomId), 0);
    await r.close();
  });

  it('from a Level 1 client a {"type":"send"} is an ordinary broadcast', async () => {
    const r = await room('dl1');
    const text = '{"type":"send","to":"dl1-b","data":{"x":1}}';
    r.c.send(text);
    for (const l2 of [r.a, r.b, r.d]) {
      const raw = await l2.nextText();
      const env = assertEnvelope(raw);
      assert.equal(env.seq, 1);
      assert.ok(!('to' in env));
      assert.ok(raw.endsWith(`"data":${text}}`), raw);
    }
    const rows = await srv.rows(
      'select to_device_id, message_content from messages where room_id = ?',
      r.roomId,
    );
    assert.deepEqual(rows, [{ to_device_id: null, message_content: text }]);
    await r.close();
  });
});

describe('directed send with --same-device allow: every connection of the target, never the sending one', () => {
  const srv = useServer({ sameDevice: 'allow' });

  it("reaches both connections of the target device, and the sender device's other connection", async () => {
    const a1 = await newRoomL2(srv.url, 'dal-a', 'Alpha');
    const a2 = await joinExistingL2(srv.url, 'dal-a', 'Alpha', a1.roomId);
    const b1 = await joinExistingL2(srv.url, 'dal-b', 'Beta', a1.roomId);
    const b2 = await joinExisting(srv.url, 'dal-b', 'Beta', a1.roomId); // Level 1
    assert.equal((await a1.client.next()).type, 'member_joined'); // dal-b, once
    assert.equal((await a2.client.next()).type, 'member_joined');
    a1.client.send({ type: 'send', to: 'dal-b', data: { x: 1 }, ack_id: 1 });
    assert.deepEqual(await a1.client.next(), { type: 'ack', ack_id: 1, seq: 1 });
    assert.equal((await nextEnvelope(b1.client)).to, 'dal-b');
    assert.equal(await b2.nextText(), '{"x":1}');
    a1.client.send({ type: 'send', to: 'dal-a', data: { x: 2 }, ack_id: 2 });
    assert.deepEqual(await a1.client.next(), { type: 'ack', ack_id: 2, seq: 2 });
    const own = await nextEnvelope(a2.client);
    assert.equal(own.seq, 2);
    assert.equal(own.to, 'dal-a');
    assert.deepEqual(await framesBeforePong(a1.client), []);
    assert.deepEqual(await framesBeforePong(a2.client), []);
    assert.deepEqual(await framesBeforePong(b1.client), []);
    assert.equal((await b2.queryRoom()).type, 'room_info');
    for (const client of [a1.client, a2.client, b1.client, b2]) await client.close();
  });
});
