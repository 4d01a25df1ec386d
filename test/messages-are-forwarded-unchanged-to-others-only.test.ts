import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';

/** Texts that must arrive exactly as sent. */
const SAMPLES = [
  '{"type":"custom","z":1,"a":2,"m":3}',
  '{"unknown_field":true,"deep":{"a":[1,{"b":[null,{"c":"d"}]}],"e":{}},"n":-1.5e+10}',
  '{"u":"héllo wörld ✓ 日本語 🚀 \u200f","escaped":"\\u00e9\\ud83d\\ude80"}',
  '{"esc":"quote \\" backslash \\\\ slash \\/ nl \\n tab \\t cr \\r bs \\b ff \\f"}',
  '{ "spaced" :  [ 1 , 2 ,3 ] ,\n\t"x"\r\n: { } }',
  '{"dup":1,"dup":2}',
  '{"big":12345678901234567890123,"float":1.000000000000000000001}',
  '{}',
];

describe('messages are forwarded unchanged to every other member, never to the sender', () => {
  const srv = useServer();

  it('every other member (of 4) receives each text byte-identical; the sender gets no echo', async () => {
    const a = await joinNew(srv.url, 'fw-a', 'screen');
    const b = await joinExisting(srv.url, 'fw-b', 'phone', a.roomId);
    const c = await joinExisting(srv.url, 'fw-c', 'tablet', a.roomId);
    const d = await joinExisting(srv.url, 'fw-d', 'watch', a.roomId);
    for (const text of SAMPLES) a.client.send(text);
    // The sender's next frame is the answer to its query: nothing was echoed before it.
    const info = await a.client.queryRoom();
    assert.equal(info.type, 'room_info');
    assert.equal(info.total_clients, 4);
    for (const receiver of [b, c, d]) {
      for (const text of SAMPLES) assert.equal(await receiver.nextText(), text);
    }
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      SAMPLES,
    );
    for (const client of [a.client, b, c, d]) await client.close();
  });

  it('messages from several senders reach all others and none of them echoes back', async () => {
    const a = await joinNew(srv.url, 'fw2-a', 'x');
    const b = await joinExisting(srv.url, 'fw2-b', 'y', a.roomId);
    const c = await joinExisting(srv.url, 'fw2-c', 'z', a.roomId);
    a.client.send('{"from":"a"}');
    assert.equal(await b.nextText(), '{"from":"a"}');
    assert.equal(await c.nextText(), '{"from":"a"}');
    b.send('{"from":"b"}');
    assert.equal(await a.client.nextText(), '{"from":"b"}');
    assert.equal(await c.nextText(), '{"from":"b"}');
    c.send('{"from":"c"}');
    assert.equal(await a.client.nextText(), '{"from":"c"}');
    assert.equal(await b.nextText(), '{"from":"c"}');
    // Each sender's next frame is its room_info: none got its own message back.
    for (const client of [a.client, b, c]) assert.equal((await client.queryRoom()).type, 'room_info');
    for (const client of [a.client, b, c]) await client.close();
  });

  it('a message with a "type" other than query_room is forwarded as is', async () => {
    const a = await joinNew(srv.url, 'fw3-a', 'x');
    const b = await joinExisting(srv.url, 'fw3-b', 'y', a.roomId);
    for (const text of [
      '{"type":"room","room_id":"AAAAAAAA"}',
      '{"type":"error"}',
      '{"type":"room_info"}',
      '{"type":5}',
      '{"type":"QUERY_ROOM"}',
    ]) {
      a.client.send(text);
      assert.equal(await b.nextText(), text);
    }
    assert.equal((await a.client.queryRoom()).type, 'room_info');
    await b.close();
    await a.client.close();
  });

  it('a binary frame carrying UTF-8 JSON is forwarded as a text frame and recorded', async () => {
    const a = await joinNew(srv.url, 'fwbin-a', 'x');
    const b = await joinExisting(srv.url, 'fwbin-b', 'y', a.roomId);
    const c = await joinExisting(srv.url, 'fwbin-c', 'z', a.roomId);
    const kinds: boolean[] = [];
    b.ws.on('message', (_data, isBinary) => kinds.push(isBinary));
    const text = '{"binary":"ünïcødé 🚀","n":[1, 2]}';
    a.client.ws.send(Buffer.from(text, 'utf8'), { binary: true });
    assert.equal(await b.nextText(), text);
    assert.equal(await c.nextText(), text);
    assert.deepEqual(kinds, [false]);
    assert.equal((await a.client.queryRoom()).type, 'room_info');
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: text }]);
    for (const client of [a.client, b, c]) await client.close();
  });

  it('messages sent right after the hello, before the room reply, are not lost', async () => {
    const a = await joinNew(srv.url, 'fwearly-a', 'x');
    const b = await TestClient.connect(srv.url);
    const texts = [1, 2, 3, 4, 5].map((i) => `{"early":${i}}`);
    b.send({ device_id: 'fwearly-b', identity: 'y', room_id: a.roomId });
    for (const text of texts) b.send(text);
    const reply = await b.next();
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'joined_existing');
    for (const text of texts) assert.equal(await a.client.nextText(), text);
    // No echo to b: its next frame is its room_info.
    assert.equal((await b.queryRoom()).type, 'room_info');
    const rows = await srv.rows<{ message_content: string; seq: number }>(
      'select message_content, seq from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(
      rows,
      texts.map((t, i) => ({ message_content: t, seq: i + 1 })),
    );
    await b.close();
    await a.client.close();
  });

  it('a query_room sent right after the hello is answered after the room reply', async () => {
    const b = await TestClient.connect(srv.url);
    b.send({ device_id: 'fwearly-q', identity: 'y' });
    b.send({ type: 'query_room' });
    const reply = await b.next();
    assert.equal(reply.type, 'room');
    const info = await b.next();
    assert.deepEqual(info, { type: 'room_info', room_id: reply.room_id, total_clients: 1, clients: [] });
    await b.close();
  });

  it('a large message (just under the frame limit) is forwarded and recorded whole', async () => {
    const a = await joinNew(srv.url, 'fwbig-a', 'x');
    const b = await joinExisting(srv.url, 'fwbig-b', 'y', a.roomId);
    const base = '{"blob":""}';
    const text = `{"blob":"${'ß'.repeat(Math.floor((65_536 - base.length) / 2))}"}`;
    assert.ok(Buffer.byteLength(text) <= 65_536);
    a.client.send(text);
    assert.equal(await b.nextText(), text);
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: text }]);
    await b.close();
    await a.client.close();
  });
});
