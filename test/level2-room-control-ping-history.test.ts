import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer, type TestServer } from './helpers/server.js';
import { joinExisting } from './helpers/rooms.js';
import type { Frame, TestClient } from './helpers/client.js';
import {
  assertEnvelope,
  framesBeforePong,
  joinExistingL2,
  nextEnvelope,
  newRoomL2,
  type Envelope,
} from './helpers/level2.js';

const NOT_IN_ROOM = { type: 'error', message: 'Not in a room: join one first', code: 'not_in_room' };
const BAD_HISTORY = 'A history request takes "before_seq" and "limit", positive integers';

async function messageCount(srv: TestServer, roomId: string): Promise<number> {
  const rows = await srv.rows<{ n: number | string }>(
    'select count(*) as n from messages where room_id = ?',
    roomId,
  );
  return Number(rows[0]!.n);
}

/** Asks for history and returns the answer's raw text and its envelopes. */
async function history(
  client: TestClient,
  request: Record<string, unknown>,
): Promise<{ raw: string; frame: Frame; messages: Envelope[] }> {
  client.send({ type: 'history', ...request });
  const raw = await client.nextText();
  const frame = JSON.parse(raw) as Frame;
  assert.equal(frame.type, 'history', raw);
  const messages = (frame.messages as unknown[]).map((m) => assertEnvelope(JSON.stringify(m)));
  return { raw, frame, messages };
}

describe('Level 2 ping, leave_room and join_room', () => {
  const srv = useServer();

  it('ping is answered pong, in a room or not, and never forwarded or recorded; from Level 1 it is a message', async () => {
    const a = await newRoomL2(srv.url, 'png-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'png-b', 'Beta', a.roomId);
    const c = await joinExisting(srv.url, 'png-c', 'Gamma', a.roomId);
    await a.client.next(); // member_joined png-b
    await a.client.next(); // member_joined png-c
    await b.client.next(); // member_joined png-c
    a.client.send({ type: 'ping' });
    assert.equal(await a.client.nextText(), '{"type":"pong"}');
    a.client.send({ type: 'ping', ack_id: 9 });
    assert.equal(await a.client.nextText(), '{"type":"pong"}');
    // Control messages carrying an ack_id are answered by their own reply, not an ack.
    a.client.send({ type: 'query_room', ack_id: 10 });
    assert.equal((await a.client.next()).type, 'room_info');
    assert.deepEqual(await framesBeforePong(a.client), []);
    assert.deepEqual(await framesBeforePong(b.client), []);
    assert.equal((await c.queryRoom()).type, 'room_info');
    assert.equal(await messageCount(srv, a.roomId), 0);
    // A Level 1 client's {"type":"ping"} is an ordinary message, with seq 1.
    c.send('{"type":"ping"}');
    const env = await nextEnvelope(a.client);
    assert.equal(env.seq, 1);
    assert.deepEqual(env.data, { type: 'ping' });
    assert.equal((await c.queryRoom()).type, 'room_info'); // no pong for Level 1
    for (const client of [a.client, b.client, c]) await client.close();
  });

  it('leave_room answers "left"; in no room, messages get not_in_room until a join_room', async () => {
    const a = await newRoomL2(srv.url, 'lv-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'lv-b', 'Beta', a.roomId);
    await a.client.next(); // member_joined lv-b
    b.client.send({ type: 'leave_room' });
    assert.equal(await b.client.nextText(), JSON.stringify({ type: 'left', room_id: a.roomId }));
    assert.equal((await a.client.next()).type, 'member_left');

    b.client.send('{"hello":1}');
    assert.deepEqual(await b.client.next(), NOT_IN_ROOM);
    b.client.send({ hello: 2, ack_id: 'h2' });
    assert.deepEqual(await b.client.next(), { ...NOT_IN_ROOM, ack_id: 'h2' });
    b.client.send({ type: 'send', to: 'lv-a', data: {} });
    assert.deepEqual(await b.client.next(), NOT_IN_ROOM);
    b.client.send({ type: 'query_room' });
    assert.deepEqual(await b.client.next(), NOT_IN_ROOM);
    b.client.send({ type: 'history' });
    assert.deepEqual(await b.client.next(), NOT_IN_ROOM);
    b.client.send({ type: 'leave_room' });
    assert.deepEqual(await b.client.next(), { type: 'error', message: 'Not in a room', code: 'not_in_room' });
    b.client.send({ type: 'ping' });
    assert.deepEqual(await b.client.next(), { type: 'pong' });
    // Nothing reached the room, nothing was recorded.
    assert.deepEqual(await framesBeforePong(a.client), []);
    assert.equal(await messageCount(srv, a.roomId), 0);
    // Its stay in the room was closed in the record.
    const stays = await srv.rows<{ room_id: string; disconnected_at: string | null }>(
      "select room_id, disconnected_at from connections where device_id = 'lv-b' order by id",
    );
    assert.equal(stays.length, 1);
    assert.notEqual(stays[0]!.disconnected_at, null);

    // join_room puts it back: a room reply, and messages flow again.
    b.client.send({ type: 'join_room', room_id: a.roomId });
    const reply = await b.client.next();
    assert.deepEqual(reply, {
      type: 'room',
      room_id: a.roomId,
      status: 'joined_existing',
      message: `joined_existing: joined room ${a.roomId}`,
      members: reply.members,
      seq: 0,
    });
    assert.deepEqual((reply.members as { device_id: string }[]).map((m) => m.device_id).sort(), [
      'lv-a',
      'lv-b',
    ]);
    assert.equal((await a.client.next()).type, 'member_joined');
    b.client.send('{"back":true}');
    assert.equal((await nextEnvelope(a.client)).seq, 1);
    await a.client.close();
    await b.client.close();
  });

  it('join_room to another existing room: a Level 2 room reply, and the connection now belongs there', async () => {
    const x = await newRoomL2(srv.url, 'jr-x', 'Xray');
    const x1 = await joinExisting(srv.url, 'jr-x1', 'X1', x.roomId); // Level 1, so its frames are plain
    const y = await newRoomL2(srv.url, 'jr-y', 'Yankee');
    await x.client.next(); // member_joined jr-x1
    // Room y has a history of 2 messages, so its reply says seq 2.
    const y1 = await joinExistingL2(srv.url, 'jr-y1', 'Y1', y.roomId);
    await y.client.next(); // member_joined jr-y1
    y.client.send({ n: 1, ack_id: 1 });
    y.client.send({ n: 2, ack_id: 2 });
    await y.client.next();
    await y.client.next();
    assert.equal((await nextEnvelope(y1.client)).seq, 1);
    assert.equal((await nextEnvelope(y1.client)).seq, 2);

    x.client.send({ type: 'join_room', room_id: y.roomId.toLowerCase() });
    const reply = await x.client.next();
    assert.equal(reply.type, 'room');
    assert.equal(reply.room_id, y.roomId);
    assert.equal(reply.status, 'joined_existing');
    assert.equal(reply.message, `joined_existing: joined room ${y.roomId}`);
    assert.equal(reply.seq, 2);
    assert.deepEqual([...(reply.members as { device_id: string }[])].map((m) => m.device_id).sort(), [
      'jr-x',
      'jr-y',
      'jr-y1',
    ]);
    // Its messages now go to room y (seq 3 there), not to room x.
    x.client.send({ moved: true, ack_id: 'm' });
    assert.deepEqual(await x.client.next(), { type: 'ack', ack_id: 'm', seq: 3 });
    for (const l2 of [y.client, y1.client]) {
      assert.equal((await l2.next()).type, 'member_joined');
      const env = await nextEnvelope(l2);
      assert.equal(env.seq, 3);
      assert.equal(env.room_id, y.roomId);
    }
    assert.equal((await x1.queryRoom()).total_clients, 1);
    const devices = await srv.rows("select last_room_id from devices where device_id = 'jr-x'");
    assert.deepEqual(devices, [{ last_room_id: y.roomId }]);
    const stays = await srv.rows<{ room_id: string; closed: number }>(
      "select room_id, case when disconnected_at is null then 0 else 1 end as closed from connections where device_id = 'jr-x' order by id",
    );
    assert.deepEqual(
      stays.map((s) => [s.room_id, Number(s.closed)]),
      [
        [x.roomId, 1],
        [y.roomId, 0],
      ],
    );

    // join_room to the room it is in: the same reply, nothing moves, nobody is told.
    x.client.send({ type: 'join_room', room_id: y.roomId });
    const again = await x.client.next();
    assert.deepEqual({ ...again, members: [] }, { ...reply, seq: 3, members: [] });
    assert.deepEqual(await framesBeforePong(y.client), []);
    for (const client of [x.client, x1, y.client, y1.client]) await client.close();
  });

  it('join_room to an unknown room: error room_not_found, and the connection stays, open, in its room', async () => {
    const a = await newRoomL2(srv.url, 'jr404-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'jr404-b', 'Beta', a.roomId);
    await a.client.next(); // member_joined
    b.client.send({ type: 'join_room', room_id: 'ZZZZZZZZ' });
    assert.deepEqual(await b.client.next(), {
      type: 'error',
      message: 'Room ZZZZZZZZ does not exist',
      code: 'room_not_found',
    });
    b.client.send({ type: 'join_room', room_id: 'not a code', ack_id: 'j' });
    const malformed = await b.client.next();
    assert.equal(malformed.code, 'room_not_found');
    assert.equal(malformed.ack_id, 'j');
    b.client.send({ type: 'join_room' });
    assert.deepEqual(await b.client.next(), {
      type: 'error',
      message: 'A join_room needs "room_id"',
      code: 'invalid_message',
    });
    b.client.send({ type: 'ping' });
    assert.deepEqual(await b.client.next(), { type: 'pong' });
    // Still in the same room: its message reaches a, and a was told of no leave.
    b.client.send('{"still":"here"}');
    const env = await nextEnvelope(a.client);
    assert.equal(env.room_id, a.roomId);
    assert.deepEqual(env.data, { still: 'here' });
    assert.equal(b.client.ws.readyState, b.client.ws.OPEN);
    await a.client.close();
    await b.client.close();
  });
});

describe('Level 2 history', () => {
  const srv = useServer();

  it('newest L visible messages before before_seq, oldest first, as the envelopes delivered live', async () => {
    const a = await newRoomL2(srv.url, 'hi-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'hi-b', 'Beta', a.roomId);
    const c = await joinExisting(srv.url, 'hi-c', 'Gamma', a.roomId);
    await a.client.next();
    await a.client.next();
    await b.client.next();
    // Raw envelope text per seq, as some Level 2 member received it live.
    const live = new Map<number, string>();
    const fromA = async () => {
      const raw = await b.client.nextText();
      live.set(assertEnvelope(raw).seq, raw);
    };
    const fromB = async () => {
      const raw = await a.client.nextText();
      live.set(assertEnvelope(raw).seq, raw);
    };
    a.client.send('{"n":1,  "spaced" : true}');
    await fromA(); // 1
    b.client.send('{"n":2}');
    await fromB(); // 2
    a.client.send({ type: 'send', to: 'hi-c', data: { n: 3 } }); // 3: directed to c
    assert.equal(await c.nextText(), '{"n":1,  "spaced" : true}');
    assert.equal(await c.nextText(), '{"n":2}');
    assert.equal(await c.nextText(), '{"n":3}');
    c.send('{"n":4}');
    await fromA(); // 4 (to b)
    assert.equal(assertEnvelope(await a.client.nextText()).seq, 4);
    a.client.send({ type: 'send', to: 'hi-b', data: { n: 5 } }); // 5: directed to b
    await fromA();
    b.client.send('{"n":6}');
    await fromB();
    for (let n = 7; n <= 10; n++) {
      a.client.send(`{"n":${n}}`);
      await fromA();
    }
    for (let n = 6; n <= 10; n++) assert.equal(await c.nextText(), `{"n":${n}}`);
    const seqsOf = (ms: Envelope[]) => ms.map((m) => m.seq);

    // b may see broadcasts (its own too) and what was sent to it; not the send to c.
    const all = await history(b.client, {});
    assert.equal(all.frame.room_id, a.roomId);
    assert.deepEqual(seqsOf(all.messages), [1, 2, 4, 5, 6, 7, 8, 9, 10]);
    for (const m of all.messages) {
      assert.ok(all.raw.includes(live.get(m.seq)!), `history envelope ${m.seq} differs from the live one`);
    }
    assert.deepEqual(seqsOf((await history(b.client, { limit: 3 })).messages), [8, 9, 10]);
    assert.deepEqual(seqsOf((await history(b.client, { before_seq: 6, limit: 2 })).messages), [4, 5]);
    assert.deepEqual(seqsOf((await history(b.client, { before_seq: 4, limit: 10 })).messages), [1, 2]);
    assert.deepEqual(seqsOf((await history(b.client, { before_seq: 1 })).messages), []);
    assert.deepEqual(
      seqsOf((await history(b.client, { before_seq: 1000, limit: 5000 })).messages),
      [1, 2, 4, 5, 6, 7, 8, 9, 10],
    );
    // a sees neither directed message: 3 went to c, 5 to b.
    assert.deepEqual(seqsOf((await history(a.client, {})).messages), [1, 2, 4, 6, 7, 8, 9, 10]);

    // Malformed requests.
    for (const bad of [{ limit: 0 }, { limit: -1 }, { limit: '5' }, { before_seq: 0 }, { before_seq: 1.5 }]) {
      b.client.send({ type: 'history', ...bad });
      assert.deepEqual(await b.client.next(), {
        type: 'error',
        message: BAD_HISTORY,
        code: 'invalid_message',
      });
    }
    // History is no message: nobody else got anything, nothing was recorded.
    assert.deepEqual(await framesBeforePong(a.client), []);
    assert.equal((await c.queryRoom()).type, 'room_info');
    assert.equal(await messageCount(srv, a.roomId), 10);
    for (const client of [a.client, b.client, c]) await client.close();
  });
});

describe('Level 2 history limits: default 50, at most 1000', () => {
  const srv = useServer();

  it('without a limit the newest 50 come back; a limit above 1000 returns the newest 1000', async () => {
    const a = await newRoomL2(srv.url, 'hl-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'hl-b', 'Beta', a.roomId);
    await a.client.next(); // member_joined
    const total = 1005;
    for (let n = 1; n <= total; n++) a.client.send(`{"n":${n}}`);
    a.client.send({ last: true, ack_id: 'end' });
    assert.deepEqual(await a.client.next(), { type: 'ack', ack_id: 'end', seq: total + 1 });
    const seqs = async (request: Record<string, unknown>) =>
      (await history(b.client, request)).messages.map((m) => m.seq);
    // b's queue holds the live envelopes first; history answers come after them.
    for (let n = 1; n <= total + 1; n++) assert.equal((await nextEnvelope(b.client)).seq, n);
    const expectRange = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => from + i);
    assert.deepEqual(await seqs({}), expectRange(total + 2 - 50, total + 1));
    assert.deepEqual(await seqs({ limit: 5000 }), expectRange(total + 2 - 1000, total + 1));
    assert.deepEqual(await seqs({ limit: 5000, before_seq: 1001 }), expectRange(1, 1000));
    await a.client.close();
    await b.client.close();
  });
});

describe('Level 2 history beyond the in-memory window comes from the database', () => {
  const srv = useServer({ historyWindow: 4 });

  it('with a window of 4, the older messages are read back from the database, identical', async () => {
    const a = await newRoomL2(srv.url, 'hw-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'hw-b', 'Beta', a.roomId);
    await a.client.next(); // member_joined
    const live = new Map<number, string>();
    for (let n = 1; n <= 10; n++) a.client.send(`{ "n" : ${n}, "pad": "${'é'.repeat(n)}" }`);
    for (let n = 1; n <= 10; n++) {
      const raw = await b.client.nextText();
      live.set(assertEnvelope(raw).seq, raw);
    }
    const check = async (request: Record<string, unknown>, seqs: number[]) => {
      const h = await history(b.client, request);
      assert.deepEqual(
        h.messages.map((m) => m.seq),
        seqs,
        JSON.stringify(request),
      );
      for (const m of h.messages) assert.ok(h.raw.includes(live.get(m.seq)!), `envelope ${m.seq} differs`);
    };
    await check({}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await check({ limit: 3 }, [8, 9, 10]); // in the window
    await check({ before_seq: 9, limit: 2 }, [7, 8]); // in the window
    await check({ before_seq: 5, limit: 3 }, [2, 3, 4]); // only in the database
    await check({ before_seq: 9, limit: 6 }, [3, 4, 5, 6, 7, 8]); // across both
    await a.client.close();
    await b.client.close();
  });
});
