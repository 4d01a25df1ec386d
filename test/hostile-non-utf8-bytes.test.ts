import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { joinExisting, joinNew, roomInfoWhenTotal } from './helpers/rooms.js';
import { joinExistingL2, newRoomL2, nextEnvelope } from './helpers/level2.js';
import { waitFor } from './helpers/wait.js';
import {
  INVALID_HELLO,
  INVALID_JSON_TEXT,
  assertStillServes,
  countRows,
  refusedFirstFrame,
} from './helpers/hostile.js';

/** Byte sequences that are not UTF-8, each inside an otherwise valid JSON string. */
const BAD_SEQUENCES: [string, number[]][] = [
  ['0xFF', [0xff]],
  ['0xFE', [0xfe]],
  ['lone continuation byte', [0x80]],
  ['bad continuation', [0xc3, 0x28]],
  ['overlong NUL', [0xc0, 0x80]],
  ['overlong slash', [0xe0, 0x80, 0xaf]],
  ['UTF-8-encoded surrogate', [0xed, 0xa0, 0x80]],
  ['beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['truncated 4-byte character', [0xf0, 0x9f, 0x98]],
  ['5-byte form', [0xf8, 0x88, 0x80, 0x80, 0x80]],
];

function jsonWith(bytes: number[]): Buffer {
  return Buffer.concat([
    Buffer.from('{"device_id":"u8","identity":"'),
    Buffer.from(bytes),
    Buffer.from('"}'),
  ]);
}

describe('bytes that are not UTF-8', () => {
  const srv = useServer();

  it('in a text hello: the WebSocket layer closes with 1007, nothing is recorded', async () => {
    for (const [name, bytes] of BAD_SEQUENCES) {
      const got = await refusedFirstFrame(srv.url, jsonWith(bytes), false);
      assert.equal(got.frame, undefined, name);
      assert.equal(got.code, CloseCode.InvalidPayload, name);
    }
    assert.equal(await countRows(srv, 'connections'), 0);
    await assertStillServes(srv, 'u8-text-hello');
  });

  it('in a binary hello: invalid_identity and 4000', async () => {
    for (const [name, bytes] of BAD_SEQUENCES) {
      const got = await refusedFirstFrame(srv.url, jsonWith(bytes), true);
      assert.deepEqual(got.frame, INVALID_HELLO, name);
      assert.equal(got.code, CloseCode.InvalidHello, name);
    }
    await assertStillServes(srv, 'u8-binary-hello');
  });

  it('in a text frame in a room: closed 1007, the member leaves, recorded as disconnected, nothing stored', async () => {
    const a = await joinNew(srv.url, 'u8-text-s', 'sender');
    const receiver = await joinExisting(srv.url, 'u8-text-r', 'receiver', a.roomId);
    a.client.ws.send(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), {
      binary: false,
    });
    assert.equal((await a.client.closed).code, CloseCode.InvalidPayload);
    await roomInfoWhenTotal(receiver, 1);
    await waitFor('the connection closed in the record', async () => {
      const rows = await srv.rows<{ disconnected_at: string | null }>(
        "select disconnected_at from connections where device_id = 'u8-text-s'",
      );
      return rows[0]?.disconnected_at ? rows : undefined;
    });
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', a.roomId), 0);
    await receiver.close();
  });

  it('in a binary frame in a room (Level 1 and 2): invalid_json, the connection stays, nothing stored', async () => {
    const l1 = await joinNew(srv.url, 'u8-bin-l1', 'sender');
    const l2 = await newRoomL2(srv.url, 'u8-bin-l2', 'sender');
    for (const client of [l1.client, l2.client]) {
      for (const [name, bytes] of BAD_SEQUENCES) {
        client.ws.send(Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bytes), Buffer.from('"}')]), {
          binary: true,
        });
        assert.equal(await client.nextText(), INVALID_JSON_TEXT, name);
      }
      assert.equal((await client.queryRoom()).type, 'room_info');
    }
    assert.equal(await countRows(srv, 'messages', 'room_id in (?, ?)', l1.roomId, l2.roomId), 0);
    await l1.client.close();
    await l2.client.close();
  });

  it('a character split across fragments of a text message is valid UTF-8 and forwarded byte for byte', async () => {
    const a = await joinNew(srv.url, 'u8-split-s', 'sender');
    const receiver = await joinExisting(srv.url, 'u8-split-r', 'receiver', a.roomId);
    const l2 = await joinExistingL2(srv.url, 'u8-split-l2', 'level2', a.roomId);
    const text = '{"emoji":"🚀𝄞é"}';
    const bytes = Buffer.from(text);
    // Cut inside the 4-byte rocket, inside the 4-byte clef and inside é.
    const cuts = [11, 16, 19, bytes.length];
    let from = 0;
    for (const [i, to] of cuts.entries()) {
      a.client.ws.send(bytes.subarray(from, to), { binary: false, fin: i === cuts.length - 1 });
      from = to;
    }
    assert.equal(await receiver.nextText(), text);
    assert.deepEqual((await nextEnvelope(l2.client)).data, { emoji: '🚀𝄞é' });
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: text }]);
    await l2.client.close();
    await receiver.close();
    await a.client.close();
  });

  it('a binary frame of valid UTF-8 JSON is forwarded as a text frame with the same bytes', async () => {
    const a = await joinNew(srv.url, 'u8-bin-ok-s', 'sender');
    const receiver = await joinExisting(srv.url, 'u8-bin-ok-r', 'receiver', a.roomId);
    const text = '{"rtl":"\u202Eabc\u202C","zwj":"👩‍👩‍👧"}';
    let binary: boolean | undefined;
    receiver.ws.once('message', (_data, isBinary) => (binary = isBinary));
    a.client.ws.send(Buffer.from(text), { binary: true });
    assert.equal(await receiver.nextText(), text);
    assert.equal(binary, false);
    await receiver.close();
    await a.client.close();
    await assertStillServes(srv, 'u8-binary-room');
  });
});
