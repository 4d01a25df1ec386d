import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew, roomInfoWhenTotal } from './helpers/rooms.js';
import { waitFor } from './helpers/wait.js';
import { assertStillServes, countRows } from './helpers/hostile.js';

const LIMIT = 4096;
const HARD_CAP = LIMIT * 4;

/** `{"pad":"xxx…"}` of exactly `bytes` bytes. */
function padded(bytes: number): string {
  return `{"pad":"${'x'.repeat(bytes - '{"pad":""}'.length)}"}`;
}

/** Sends `text` as one message cut into fragments of `size` bytes (a continuation frame each). */
function sendFragmented(client: TestClient, text: string, size = 1): number {
  const bytes = Buffer.from(text);
  let fragments = 0;
  for (let at = 0; at < bytes.length; at += size) {
    const end = Math.min(at + size, bytes.length);
    client.ws.send(bytes.subarray(at, end), { binary: false, fin: end === bytes.length });
    fragments++;
  }
  return fragments;
}

describe('a message sent as thousands of tiny fragments', () => {
  const srv = useServer({ maxFrameBytes: LIMIT });

  it('4,000 one-byte fragments under the limit are one message: forwarded and recorded once', async () => {
    const a = await joinNew(srv.url, 'frag-ok-s', 'sender');
    const receiver = await joinExisting(srv.url, 'frag-ok-r', 'receiver', a.roomId);
    const text = padded(4000);
    assert.equal(sendFragmented(a.client, text), 4000);
    assert.equal(await receiver.nextText(), text);
    a.client.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by id',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      [text, '{"marker":true}'],
    );
    await receiver.close();
    await a.client.close();
  });

  it('a hello sent one byte per fragment is an ordinary hello', async () => {
    const client = await TestClient.connect(srv.url);
    const hello = JSON.stringify({
      device_id: 'frag-hello',
      identity: 'f'.repeat(200),
      extra: 'e'.repeat(300),
    });
    sendFragmented(client, hello);
    const reply = await client.next();
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    await client.close();
  });

  it('fragments adding up to more than the limit (under the hard cap) → payload_too_large, connection open', async () => {
    const a = await joinNew(srv.url, 'frag-over-s', 'sender');
    const receiver = await joinExisting(srv.url, 'frag-over-r', 'receiver', a.roomId);
    const bytes = LIMIT * 3;
    sendFragmented(a.client, padded(bytes), 2);
    assert.deepEqual(await a.client.next(), {
      type: 'error',
      message: `Message of ${bytes} bytes exceeds the limit of ${LIMIT} bytes`,
      code: 'payload_too_large',
    });
    a.client.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', a.roomId), 1);
    await receiver.close();
    await a.client.close();
  });

  it('fragments adding up past the hard cap are cut with 1009; the member is recorded as gone', async () => {
    const a = await joinNew(srv.url, 'frag-cut-s', 'sender');
    const receiver = await joinExisting(srv.url, 'frag-cut-r', 'receiver', a.roomId);
    // 20,000 one-byte fragments: the server must stop buffering at the cap, not at the end.
    sendFragmented(a.client, padded(HARD_CAP + 3600));
    assert.equal((await a.client.closed).code, CloseCode.MessageTooBig);
    await roomInfoWhenTotal(receiver, 1);
    await waitFor('the cut connection closed in the record', async () => {
      const rows = await srv.rows<{ disconnected_at: string | null }>(
        "select disconnected_at from connections where device_id = 'frag-cut-s'",
      );
      return rows[0]?.disconnected_at ? rows : undefined;
    });
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', a.roomId), 0);
    await receiver.close();
    await assertStillServes(srv, 'frag-cut');
  });

  it('a fragmented hello past the hard cap is cut with 1009 and records nothing', async () => {
    const client = await TestClient.connect(srv.url);
    sendFragmented(
      client,
      JSON.stringify({ device_id: 'frag-big-hello', identity: 'x', pad: 'p'.repeat(HARD_CAP) }),
      16,
    );
    assert.equal((await client.closed).code, CloseCode.MessageTooBig);
    assert.equal(await countRows(srv, 'devices', "device_id = 'frag-big-hello'"), 0);
  });

  it('many senders fragmenting at once all get their messages through, each intact', async () => {
    const a = await joinNew(srv.url, 'frag-many-r', 'receiver');
    const senders: TestClient[] = [];
    for (let i = 0; i < 8; i++)
      senders.push(await joinExisting(srv.url, `frag-many-${i}`, 'sender', a.roomId));
    // Fragments of different messages interleave on the wire only across connections; each
    // connection's message must arrive whole.
    const texts = senders.map((_, i) => JSON.stringify({ from: i, pad: String(i).repeat(1500) }));
    for (const [i, s] of senders.entries()) sendFragmented(s, texts[i]!, 3);
    const got: string[] = [];
    for (let i = 0; i < senders.length; i++) got.push(await a.client.nextText());
    assert.deepEqual([...got].sort(), [...texts].sort());
    for (const s of senders) await s.close();
    await a.client.close();
    await assertStillServes(srv, 'frag-many');
  });
});
