import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting } from './helpers/rooms.js';
import {
  assertEnvelope,
  framesBeforePong,
  framesUntil,
  joinExistingL2,
  nextEnvelope,
  newRoomL2,
} from './helpers/level2.js';

describe('Level 2 envelopes, and Level 1 and Level 2 clients in the same room', () => {
  const srv = useServer();

  it('the connection frame lists the protocol levels 1 and 2', async () => {
    const client = new TestClient(srv.url);
    await client.opened;
    const first = await client.next();
    assert.equal(first.type, 'connection');
    assert.equal(first.message, 'Connected successfully');
    assert.deepEqual(first.protocols, [1, 2]);
    await client.close();
  });

  for (const protocol of [3, '2', 0, 2.5]) {
    it(`a hello with protocol ${JSON.stringify(protocol)} is refused: unsupported_protocol, close 4000`, async () => {
      const client = await TestClient.connect(srv.url);
      client.send({ device_id: 'env-bad-proto', identity: 'x', protocol });
      assert.deepEqual(await client.next(), {
        type: 'error',
        message: `Unsupported protocol ${JSON.stringify(protocol)}: this server speaks 1 and 2`,
        code: 'unsupported_protocol',
      });
      assert.equal((await client.closed).code, 4000);
    });
  }

  it('a Level 2 member gets the envelope (sender, seq, sent_at, the exact bytes as data); a Level 1 member gets the bytes', async () => {
    const a = await newRoomL2(srv.url, 'env-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'env-b', 'Beta', a.roomId);
    const c = await joinExisting(srv.url, 'env-c', 'Gamma', a.roomId);
    // Presence of the later joiners, to the Level 2 members only (checked in level2-presence).
    assert.equal((await a.client.next()).type, 'member_joined');
    assert.equal((await a.client.next()).type, 'member_joined');
    assert.equal((await b.client.next()).type, 'member_joined');

    // Unusual spacing, key order and escapes: the envelope splices the sender's bytes in as is.
    const fromA = '{ "type" : "chat", "z":1, "a" : [1, {"b":"\\u00e9 ✓"}] }';
    a.client.send(fromA);
    const bRaw = await b.client.nextText();
    const envelope = assertEnvelope(bRaw);
    assert.deepEqual(
      { ...envelope, sent_at: '' },
      {
        type: 'message',
        room_id: a.roomId,
        seq: 1,
        from: { device_id: 'env-a', identity: 'Alpha' },
        sent_at: '',
        data: JSON.parse(fromA),
      },
    );
    assert.ok(bRaw.endsWith(`"data":${fromA}}`), `data is not the sender's bytes: ${bRaw}`);
    assert.equal(await c.nextText(), fromA);

    // A Level 1 sender: Level 2 members get an envelope of its bytes, the Level 1 member nothing back.
    const fromC = '{"type":"key","code":"pause",  "n":  2}';
    c.send(fromC);
    for (const l2 of [a.client, b.client]) {
      const raw = await l2.nextText();
      const env = assertEnvelope(raw);
      assert.equal(env.seq, 2);
      assert.deepEqual(env.from, { device_id: 'env-c', identity: 'Gamma' });
      assert.ok(raw.endsWith(`"data":${fromC}}`), raw);
    }

    // sent_at is the recorded time of the message.
    const rows = await srv.rows<{ seq: number; sent_at: string; message_content: string }>(
      'select seq, sent_at, message_content from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(rows, [
      { seq: 1, sent_at: envelope.sent_at, message_content: fromA },
      { seq: 2, sent_at: rows[1]!.sent_at, message_content: fromC },
    ]);

    // Nothing else reached anyone: no echo, and no Level 2 frame for the Level 1 member.
    assert.deepEqual(await framesBeforePong(a.client), []);
    assert.deepEqual(await framesBeforePong(b.client), []);
    assert.equal((await c.queryRoom()).type, 'room_info');
    for (const client of [a.client, b.client, c]) await client.close();
  });

  it('a Level 2 message with ack_id: the sender gets an ack with its seq; nobody gets the ack_id', async () => {
    const a = await newRoomL2(srv.url, 'ack-a', 'Alpha');
    const b = await joinExistingL2(srv.url, 'ack-b', 'Beta', a.roomId);
    const c = await joinExisting(srv.url, 'ack-c', 'Gamma', a.roomId);
    await a.client.next(); // member_joined ack-b
    await a.client.next(); // member_joined ack-c
    await b.client.next(); // member_joined ack-c

    const ackIds: unknown[] = ['m-17', 42, { k: [1] }];
    for (const [i, ackId] of ackIds.entries()) {
      a.client.send({ type: 'chat', ack_id: ackId, text: `hi ${i}` });
      assert.deepEqual(JSON.parse(await a.client.nextText()), { type: 'ack', ack_id: ackId, seq: i + 1 });
      const env = await nextEnvelope(b.client);
      assert.equal(env.seq, i + 1);
      assert.deepEqual(env.data, { type: 'chat', text: `hi ${i}` });
      // The Level 1 member gets the object without ack_id, re-serialised.
      assert.equal(await c.nextText(), JSON.stringify({ type: 'chat', text: `hi ${i}` }));
    }
    // The ack frame's keys, exactly.
    a.client.send('{"ack_id":"k","x":1}');
    const ackText = await a.client.nextText();
    assert.equal(ackText, '{"type":"ack","ack_id":"k","seq":4}');
    assert.equal(await c.nextText(), '{"x":1}');
    assert.deepEqual((await nextEnvelope(b.client)).data, { x: 1 });

    // The record holds the message without the ack_id.
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => JSON.parse(r.message_content) as unknown),
      [...ackIds.map((_, i) => ({ type: 'chat', text: `hi ${i}` })), { x: 1 }],
    );

    // A Level 1 sender's ack_id is an ordinary field: forwarded, recorded, never acknowledged.
    const fromC = '{"ack_id":"c-1","v":1}';
    c.send(fromC);
    for (const l2 of [a.client, b.client]) {
      const raw = await l2.nextText();
      assert.equal(assertEnvelope(raw).seq, 5);
      assert.ok(raw.endsWith(`"data":${fromC}}`), raw);
    }
    assert.equal((await c.queryRoom()).type, 'room_info');
    assert.deepEqual(await framesBeforePong(a.client), []);
    assert.deepEqual(await framesBeforePong(b.client), []);
    for (const client of [a.client, b.client, c]) await client.close();
  });

  it('a Level 1 member never gets a Level 2 frame: no presence, no envelope, no ack', async () => {
    const a = await newRoomL2(srv.url, 'never-a', 'Alpha');
    const c = await joinExisting(srv.url, 'never-c', 'Gamma', a.roomId);
    assert.equal((await a.client.next()).type, 'member_joined');

    // A Level 2 device joins, sends with and without ack_id and a directed send to the other
    // Level 2 device, then leaves.
    const d = await joinExistingL2(srv.url, 'never-d', 'Delta', a.roomId);
    d.client.send({ type: 'chat', ack_id: 1 });
    assert.equal((await d.client.next()).type, 'ack');
    d.client.send({ type: 'send', to: 'never-a', data: { private: true }, ack_id: 2 });
    assert.equal((await d.client.next()).type, 'ack');
    d.client.send('{"plain":true}');
    assert.deepEqual(await framesBeforePong(d.client), []);
    // The Level 1 member got exactly the two broadcasts, as plain objects.
    assert.equal(await c.nextText(), '{"type":"chat"}');
    assert.equal(await c.nextText(), '{"plain":true}');
    await d.client.close();
    // The Level 2 member saw the leave; the Level 1 member's every answer is a room_info.
    const seen = await framesUntil(a.client, (f) => f.type === 'member_left');
    assert.deepEqual(
      seen.map((f) => f.type),
      ['member_joined', 'message', 'message', 'message', 'member_left'],
    );
    const info = await c.queryRoom();
    assert.equal(info.type, 'room_info');
    assert.equal(info.total_clients, 2);
    for (const client of [a.client, c]) await client.close();
  });
});
