import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import type { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';

describe('two rooms are isolated from each other', () => {
  const srv = useServer();

  it('messages in room A never reach room B, and the reverse', async () => {
    const a1 = await joinNew(srv.url, 'iso-a1', 'a-screen');
    const a2 = await joinExisting(srv.url, 'iso-a2', 'a-phone', a1.roomId);
    const b1 = await joinNew(srv.url, 'iso-b1', 'b-screen');
    const b2 = await joinExisting(srv.url, 'iso-b2', 'b-phone', b1.roomId);
    assert.notEqual(a1.roomId, b1.roomId);

    const A1 = '{"room":"A","n":1}';
    const A2 = '{"room":"A","n":2}';
    const A3 = '{"room":"A","n":3}';
    const B1 = '{"room":"B","n":1}';
    const B2 = '{"room":"B","n":2}';
    const B3 = '{"room":"B","n":3}';
    const isInfo = async (client: TestClient) => assert.equal((await client.queryRoom()).type, 'room_info');

    // Each step: a message, then the sender's query, whose answer proves the server has handled
    // (and delivered) the message. A receiver's very next frame being its own room's later
    // message proves nothing from the other room reached it in between.
    a1.client.send(A1);
    await isInfo(a1.client);
    b1.client.send(B1);
    assert.equal(await b2.nextText(), B1); // A1 did not reach b2
    await isInfo(b1.client);
    assert.equal(await a2.nextText(), A1);
    b2.send(B2);
    await isInfo(b2);
    assert.equal(await b1.client.nextText(), B2); // A1 did not reach b1
    a2.send(A2);
    await isInfo(a2);
    assert.equal(await a1.client.nextText(), A2); // B1, B2 did not reach a1
    a1.client.send(A3);
    await isInfo(a1.client);
    assert.equal(await a2.nextText(), A3); // B1, B2 did not reach a2
    b1.client.send(B3);
    await isInfo(b1.client);
    assert.equal(await b2.nextText(), B3); // A2, A3 did not reach b2

    // Everything each received, apart from greetings, room replies and room_info answers.
    const traffic = (client: TestClient) =>
      client.received.slice(2).filter((t) => !t.includes('"room_info"'));
    assert.deepEqual(traffic(a1.client), [A2]);
    assert.deepEqual(traffic(a2), [A1, A3]);
    assert.deepEqual(traffic(b1.client), [B2]);
    assert.deepEqual(traffic(b2), [B1, B3]);

    const rows = await srv.rows<{ room_id: string; message_content: string }>(
      'select room_id, message_content from messages where room_id in (?, ?) order by room_id = ?, seq',
      a1.roomId,
      b1.roomId,
      b1.roomId,
    );
    assert.deepEqual(rows, [
      { room_id: a1.roomId, message_content: A1 },
      { room_id: a1.roomId, message_content: A2 },
      { room_id: a1.roomId, message_content: A3 },
      { room_id: b1.roomId, message_content: B1 },
      { room_id: b1.roomId, message_content: B2 },
      { room_id: b1.roomId, message_content: B3 },
    ]);
    for (const c of [a1.client, a2, b1.client, b2]) await c.close();
  });

  it('room_info of each room lists only its own members', async () => {
    const a1 = await joinNew(srv.url, 'isoq-a1', 'a-screen');
    const a2 = await joinExisting(srv.url, 'isoq-a2', 'a-phone', a1.roomId);
    const b1 = await joinNew(srv.url, 'isoq-b1', 'b-screen');
    const b2 = await joinExisting(srv.url, 'isoq-b2', 'b-phone', b1.roomId);
    const b3 = await joinExisting(srv.url, 'isoq-b3', 'b-tablet', b1.roomId);
    assert.deepEqual(await a1.client.queryRoom(), {
      type: 'room_info',
      room_id: a1.roomId,
      total_clients: 2,
      clients: [{ device_id: 'isoq-a2', identity: 'a-phone' }],
    });
    const infoB = await b1.client.queryRoom();
    assert.equal(infoB.room_id, b1.roomId);
    assert.equal(infoB.total_clients, 3);
    assert.deepEqual([...(infoB.clients as { device_id: string }[])].map((c) => c.device_id).sort(), [
      'isoq-b2',
      'isoq-b3',
    ]);
    for (const c of [a1.client, a2, b1.client, b2, b3]) await c.close();
  });
});
