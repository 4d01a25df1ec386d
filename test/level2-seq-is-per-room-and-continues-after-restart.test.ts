import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, tempDir, useServer, type TestServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting } from './helpers/rooms.js';
import { framesBeforePong, joinExistingL2, joinL2, nextEnvelope, newRoomL2 } from './helpers/level2.js';

interface MessageRow {
  seq: number;
  from_device_id: string;
  to_device_id: string | null;
  message_content: string;
}

const byDevice = (a: { device_id: string }, b: { device_id: string }) =>
  a.device_id.localeCompare(b.device_id);

describe('seq: per room, from 1, one per recorded message of any kind', () => {
  const srv = useServer();

  it('a new room starts at seq 0 with the creator as its only member', async () => {
    const { client, reply } = await joinL2(srv.url, 'seq-new', 'New');
    assert.deepEqual(reply, {
      type: 'room',
      room_id: reply.room_id,
      status: 'created_new',
      message: `created_new: joined room ${String(reply.room_id)}`,
      members: [{ device_id: 'seq-new', identity: 'New' }],
      seq: 0,
    });
    await client.close();
  });

  it('broadcasts and directed messages from Level 1 and Level 2 senders take 1, 2, 3 … as recorded', async () => {
    const a = await newRoomL2(srv.url, 'seq-a', 'Alpha');
    const b = await joinExisting(srv.url, 'seq-b', 'Beta', a.roomId); // Level 1
    const c = await joinExistingL2(srv.url, 'seq-c', 'Gamma', a.roomId);
    assert.equal(c.reply.seq, 0);
    await a.client.next(); // member_joined seq-b
    await a.client.next(); // member_joined seq-c

    a.client.send('{"n":1}'); // seq 1, broadcast from Level 2
    assert.equal(await b.nextText(), '{"n":1}');
    assert.equal((await nextEnvelope(c.client)).seq, 1);
    b.send('{"n":2}'); // seq 2, broadcast from Level 1
    assert.equal((await nextEnvelope(a.client)).seq, 2);
    assert.equal((await nextEnvelope(c.client)).seq, 2);
    a.client.send({ type: 'send', to: 'seq-b', data: { n: 3 }, ack_id: 'to-b' }); // seq 3, directed
    assert.deepEqual(await a.client.next(), { type: 'ack', ack_id: 'to-b', seq: 3 });
    assert.equal(await b.nextText(), '{"n":3}');
    c.client.send({ type: 'send', to: 'seq-a', data: { n: 4 } }); // seq 4, directed to a
    const directed = await nextEnvelope(a.client);
    assert.equal(directed.seq, 4);
    assert.equal(directed.to, 'seq-a');
    c.client.send({ n: 5, ack_id: 'five' }); // seq 5
    assert.deepEqual(await c.client.next(), { type: 'ack', ack_id: 'five', seq: 5 });
    assert.equal((await nextEnvelope(a.client)).seq, 5);
    assert.equal(await b.nextText(), '{"n":5}');
    // c saw 1, 2, 5: not the sends to others, not its own messages.
    assert.deepEqual(await framesBeforePong(c.client), []);

    const rows = await srv.rows<MessageRow>(
      'select seq, from_device_id, to_device_id, message_content from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(rows, [
      { seq: 1, from_device_id: 'seq-a', to_device_id: null, message_content: '{"n":1}' },
      { seq: 2, from_device_id: 'seq-b', to_device_id: null, message_content: '{"n":2}' },
      { seq: 3, from_device_id: 'seq-a', to_device_id: 'seq-b', message_content: '{"n":3}' },
      { seq: 4, from_device_id: 'seq-c', to_device_id: 'seq-a', message_content: '{"n":4}' },
      { seq: 5, from_device_id: 'seq-c', to_device_id: null, message_content: '{"n":5}' },
    ]);

    // A joiner's room reply carries the current seq and every member, itself included.
    const d = await joinExistingL2(srv.url, 'seq-d', 'Delta', a.roomId);
    assert.equal(d.reply.seq, 5);
    assert.deepEqual([...(d.reply.members as { device_id: string; identity: string }[])].sort(byDevice), [
      { device_id: 'seq-a', identity: 'Alpha' },
      { device_id: 'seq-b', identity: 'Beta' },
      { device_id: 'seq-c', identity: 'Gamma' },
      { device_id: 'seq-d', identity: 'Delta' },
    ]);
    // The next message is seq 6 for everyone.
    b.send('{"n":6}');
    for (const l2 of [a.client, c.client]) assert.equal((await l2.next()).type, 'member_joined');
    for (const l2 of [a.client, c.client, d.client]) assert.equal((await nextEnvelope(l2)).seq, 6);
    for (const client of [a.client, b, c.client, d.client]) await client.close();
  });

  it('two rooms count independently, whatever the interleaving', async () => {
    const x = await newRoomL2(srv.url, 'seq-x1', 'X1');
    const x2 = await joinExistingL2(srv.url, 'seq-x2', 'X2', x.roomId);
    const y = await newRoomL2(srv.url, 'seq-y1', 'Y1');
    const y2 = await joinExistingL2(srv.url, 'seq-y2', 'Y2', y.roomId);
    assert.equal((await x.client.next()).type, 'member_joined');
    assert.equal((await y.client.next()).type, 'member_joined');
    const xSeqs: number[] = [];
    const ySeqs: number[] = [];
    for (let i = 0; i < 5; i++) {
      x.client.send({ ack_id: i, room: 'x' });
      y.client.send({ ack_id: i, room: 'y' });
      if (i % 2 === 0) y.client.send({ ack_id: `extra-${i}`, room: 'y' });
    }
    const acksX = [];
    for (let i = 0; i < 5; i++) acksX.push(((await x.client.next()) as { seq: number }).seq);
    const acksY = [];
    for (let i = 0; i < 8; i++) acksY.push(((await y.client.next()) as { seq: number }).seq);
    assert.deepEqual(acksX, [1, 2, 3, 4, 5]);
    assert.deepEqual(acksY, [1, 2, 3, 4, 5, 6, 7, 8]);
    for (let i = 0; i < 5; i++) xSeqs.push((await nextEnvelope(x2.client)).seq);
    for (let i = 0; i < 8; i++) ySeqs.push((await nextEnvelope(y2.client)).seq);
    assert.deepEqual(xSeqs, acksX);
    assert.deepEqual(ySeqs, acksY);
    const rows = await srv.rows<{ room_id: string; seq: number }>(
      'select room_id, seq from messages where room_id in (?, ?) order by room_id, seq',
      x.roomId,
      y.roomId,
    );
    assert.deepEqual(
      rows.filter((r) => r.room_id === x.roomId).map((r) => r.seq),
      acksX,
    );
    assert.deepEqual(
      rows.filter((r) => r.room_id === y.roomId).map((r) => r.seq),
      acksY,
    );
    for (const client of [x.client, x2.client, y.client, y2.client]) await client.close();
  });
});

describe('seq continues after a restart on the same database', () => {
  const dir = tempDir();
  let first: TestServer | undefined;
  let second: TestServer | undefined;
  let roomId = '';

  before(async () => {
    first = await startServer({}, dir);
    const a = await newRoomL2(first.url, 'rseq-a', 'Alpha');
    roomId = a.roomId;
    const b = await joinExisting(first.url, 'rseq-b', 'Beta', roomId);
    await a.client.next(); // member_joined rseq-b
    a.client.send({ n: 1, ack_id: 1 });
    assert.deepEqual(await a.client.next(), { type: 'ack', ack_id: 1, seq: 1 });
    b.send('{"n":2}');
    assert.equal((await nextEnvelope(a.client)).seq, 2);
    a.client.send({ type: 'send', to: 'rseq-b', data: { n: 3 }, ack_id: 3 });
    assert.deepEqual(await a.client.next(), { type: 'ack', ack_id: 3, seq: 3 });
    assert.equal(await b.nextText(), '{"n":1}');
    assert.equal(await b.nextText(), '{"n":3}');
    await first.stop();
    assert.equal((await a.client.closed).code, 1012);
    assert.equal((await b.closed).code, 1012);
    second = await startServer({}, dir);
  });
  after(async () => {
    await first?.stop();
    await second?.stop();
    removeDir(dir);
  });

  it('the room reply says the last recorded seq, and the next messages take the next ones', async () => {
    const a = await joinL2(second!.url, 'rseq-a', 'Alpha', roomId);
    assert.equal(a.reply.status, 'joined_existing');
    assert.equal(a.reply.seq, 3);
    assert.deepEqual(a.reply.members, [{ device_id: 'rseq-a', identity: 'Alpha' }]);
    const { client: b, reply } = await TestClient.join(second!.url, {
      device_id: 'rseq-b',
      identity: 'Beta',
    });
    assert.equal(reply.status, 'reconnected');
    assert.equal(reply.room_id, roomId);
    assert.equal((await a.client.next()).type, 'member_joined');
    b.send('{"n":4}');
    assert.equal((await nextEnvelope(a.client)).seq, 4);
    a.client.send({ type: 'send', to: 'rseq-b', data: { n: 5 }, ack_id: 5 });
    assert.deepEqual(await a.client.next(), { type: 'ack', ack_id: 5, seq: 5 });
    assert.equal(await b.nextText(), '{"n":5}');
    const rows = await second!.rows<{ seq: number; message_content: string }>(
      'select seq, message_content from messages where room_id = ? order by seq',
      roomId,
    );
    assert.deepEqual(
      rows,
      [1, 2, 3, 4, 5].map((n) => ({ seq: n, message_content: `{"n":${n}}` })),
    );
    await b.close();
    await a.client.close();
  });
});
