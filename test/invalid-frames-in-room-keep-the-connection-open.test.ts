import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import type { TestClient } from './helpers/client.js';
import { joinExisting, joinNew, roomInfoWhenTotal } from './helpers/rooms.js';

const MAX_FRAME = 1024;
const INVALID_JSON = '{"type":"error","message":"Invalid JSON format","code":"invalid_json"}';

describe('invalid frames in a room are answered and the connection stays open', () => {
  const srv = useServer({ maxFrameBytes: MAX_FRAME });

  /** A room with a sender and a receiver. */
  async function pair(name: string): Promise<{ sender: TestClient; receiver: TestClient; roomId: string }> {
    const a = await joinNew(srv.url, `${name}-s`, 'sender');
    const receiver = await joinExisting(srv.url, `${name}-r`, 'receiver', a.roomId);
    return { sender: a.client, receiver, roomId: a.roomId };
  }

  /**
   * The sender still works after the bad frames: its query is answered, and the receiver's next
   * frame is the marker sent after them (the bad frames were not forwarded); nothing recorded but
   * the marker.
   */
  async function stillWorks(sender: TestClient, receiver: TestClient, roomId: string): Promise<void> {
    const info = await sender.queryRoom();
    assert.equal(info.type, 'room_info');
    assert.equal(info.total_clients, 2);
    sender.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    const rows = await srv.rows('select message_content from messages where room_id = ?', roomId);
    assert.deepEqual(rows, [{ message_content: '{"marker":true}' }]);
    await receiver.close();
    await sender.close();
  }

  it('invalid JSON → the exact invalid_json error text; the connection stays open', async () => {
    const { sender, receiver, roomId } = await pair('ij');
    sender.send('not json at all');
    assert.equal(await sender.nextText(), INVALID_JSON);
    sender.send('{"unterminated":');
    assert.equal(await sender.nextText(), INVALID_JSON);
    sender.send('');
    assert.equal(await sender.nextText(), INVALID_JSON);
    await stillWorks(sender, receiver, roomId);
  });

  it('JSON that is not an object (array, number, string, null, boolean) is invalid JSON', async () => {
    const { sender, receiver, roomId } = await pair('nonobj');
    for (const text of ['[1,2,3]', '[]', '42', '-0.5', '"a string"', 'null', 'true', 'false']) {
      sender.send(text);
      assert.equal(await sender.nextText(), INVALID_JSON, `for ${text}`);
    }
    await stillWorks(sender, receiver, roomId);
  });

  it('a binary frame that is not UTF-8 is invalid JSON; the connection stays open', async () => {
    const { sender, receiver, roomId } = await pair('badutf');
    sender.ws.send(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), {
      binary: true,
    });
    assert.equal(await sender.nextText(), INVALID_JSON);
    sender.ws.send(Buffer.from([0xc3, 0x28]), { binary: true });
    assert.equal(await sender.nextText(), INVALID_JSON);
    await stillWorks(sender, receiver, roomId);
  });

  it('a message larger than maxFrameBytes → payload_too_large, not forwarded, not recorded, connection open', async () => {
    const { sender, receiver, roomId } = await pair('big');
    const base = '{"pad":""}';
    const size = MAX_FRAME + 100;
    const text = `{"pad":"${'x'.repeat(size - base.length)}"}`;
    assert.equal(Buffer.byteLength(text), size);
    sender.send(text);
    const error = await sender.next();
    assert.deepEqual(error, {
      type: 'error',
      message: `Message of ${size} bytes exceeds the limit of ${MAX_FRAME} bytes`,
      code: 'payload_too_large',
    });
    await stillWorks(sender, receiver, roomId);
  });

  it('a message of exactly maxFrameBytes is accepted', async () => {
    const { sender, receiver, roomId } = await pair('exact');
    const base = '{"pad":""}';
    const text = `{"pad":"${'y'.repeat(MAX_FRAME - base.length)}"}`;
    assert.equal(Buffer.byteLength(text), MAX_FRAME);
    sender.send(text);
    assert.equal(await receiver.nextText(), text);
    const rows = await srv.rows('select message_content from messages where room_id = ?', roomId);
    assert.deepEqual(rows, [{ message_content: text }]);
    await receiver.close();
    await sender.close();
  });

  it('a frame over four times maxFrameBytes closes the connection with 1009', async () => {
    const { sender, receiver } = await pair('huge');
    sender.send(`{"pad":"${'z'.repeat(MAX_FRAME * 4 + 10)}"}`);
    const closed = await sender.closed;
    assert.equal(closed.code, CloseCode.MessageTooBig);
    // The receiver is still in the room, now alone.
    const info = await roomInfoWhenTotal(receiver, 1);
    assert.deepEqual(info.clients, []);
    await receiver.close();
  });
});
