import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew, roomInfoWhenTotal } from './helpers/rooms.js';
import { newRoomL2 } from './helpers/level2.js';
import { waitFor } from './helpers/wait.js';
import { assertStillServes, countRows, refusedFirstFrame } from './helpers/hostile.js';

const LIMIT = 4096;
const HARD_CAP = LIMIT * 4;

/** `{"pad":"…"}` of exactly `bytes` UTF-8 bytes, padded with `unit` (whose byte length divides the room). */
function frameOf(bytes: number, unit = 'x'): string {
  const base = '{"pad":""}';
  const room = bytes - base.length;
  const unitBytes = Buffer.byteLength(unit);
  const text = `{"pad":"${unit.repeat(Math.floor(room / unitBytes))}${'x'.repeat(room % unitBytes)}"}`;
  assert.equal(Buffer.byteLength(text), bytes);
  return text;
}

const tooLarge = (bytes: number) => ({
  type: 'error',
  message: `Message of ${bytes} bytes exceeds the limit of ${LIMIT} bytes`,
  code: 'payload_too_large',
});

describe('frames around --max-frame-bytes and its hard cap (4x)', () => {
  const srv = useServer({ maxFrameBytes: LIMIT });

  it('exactly the limit is accepted, counted in bytes (ASCII and 4-byte characters alike)', async () => {
    const a = await joinNew(srv.url, 'big-exact-s', 'sender');
    const receiver = await joinExisting(srv.url, 'big-exact-r', 'receiver', a.roomId);
    const ascii = frameOf(LIMIT);
    const astral = frameOf(LIMIT, '𝄞');
    for (const text of [ascii, astral]) {
      a.client.send(text);
      assert.equal(await receiver.nextText(), text);
    }
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by id',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      [ascii, astral],
    );
    await receiver.close();
    await a.client.close();
  });

  it('one byte over, and everything up to the hard cap, is refused payload_too_large; the connection stays', async () => {
    const a = await joinNew(srv.url, 'big-over-s', 'sender');
    const receiver = await joinExisting(srv.url, 'big-over-r', 'receiver', a.roomId);
    for (const bytes of [LIMIT + 1, LIMIT * 2, HARD_CAP]) {
      a.client.send(frameOf(bytes, 'é'));
      assert.deepEqual(await a.client.next(), tooLarge(bytes));
    }
    a.client.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: '{"marker":true}' }]);
    await receiver.close();
    await a.client.close();
  });

  it('a barrage of 200 oversized frames gets 200 answers and records nothing', async () => {
    const a = await joinNew(srv.url, 'big-barrage-s', 'sender');
    const receiver = await joinExisting(srv.url, 'big-barrage-r', 'receiver', a.roomId);
    const text = frameOf(LIMIT * 3);
    for (let i = 0; i < 200; i++) a.client.send(text);
    for (let i = 0; i < 200; i++) assert.deepEqual(await a.client.next(), tooLarge(LIMIT * 3));
    a.client.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', a.roomId), 1);
    await receiver.close();
    await a.client.close();
  });

  it('one byte past the hard cap is cut with 1009; the member leaves and is recorded as disconnected', async () => {
    const a = await joinNew(srv.url, 'big-cut-s', 'sender');
    const receiver = await joinExisting(srv.url, 'big-cut-r', 'receiver', a.roomId);
    a.client.send(frameOf(HARD_CAP + 1));
    assert.equal((await a.client.closed).code, CloseCode.MessageTooBig);
    await roomInfoWhenTotal(receiver, 1);
    await waitFor('the cut connection closed in the record', async () => {
      const rows = await srv.rows<{ disconnected_at: string | null }>(
        "select disconnected_at from connections where device_id = 'big-cut-s'",
      );
      return rows.length === 1 && rows[0]!.disconnected_at !== null;
    });
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', a.roomId), 0);
    await receiver.close();
    await assertStillServes(srv, 'big-cut');
  });

  it('a hello one byte over the limit gets payload_too_large and 4013; past the hard cap, 1009', async () => {
    const over = await refusedFirstFrame(srv.url, frameOf(LIMIT + 1));
    assert.deepEqual(over.frame, tooLarge(LIMIT + 1));
    assert.equal(over.code, CloseCode.PayloadTooLarge);
    const cut = await refusedFirstFrame(srv.url, frameOf(HARD_CAP + 1));
    assert.equal(cut.frame, undefined);
    assert.equal(cut.code, CloseCode.MessageTooBig);
    await assertStillServes(srv, 'big-hello');
  });

  it('a hello just under the limit with a long extra field is an ordinary hello', async () => {
    const base = JSON.stringify({ device_id: 'big-pad', identity: 'pad', pad: '' });
    const hello = JSON.stringify({
      device_id: 'big-pad',
      identity: 'pad',
      pad: 'p'.repeat(LIMIT - base.length),
    });
    assert.equal(Buffer.byteLength(hello), LIMIT);
    const client = await TestClient.connect(srv.url);
    client.send(hello);
    const reply = await client.next();
    assert.equal(reply.type, 'room');
    await client.close();
  });

  it('huge device_id / identity strings (within the frame limit) are refused, never stored', async () => {
    for (const [field, other] of [
      ['identity', 'device_id'],
      ['device_id', 'identity'],
    ] as const) {
      const got = await refusedFirstFrame(
        srv.url,
        JSON.stringify({ [field]: 'h'.repeat(3000), [other]: 'ok' }),
      );
      assert.deepEqual(got.frame, {
        type: 'error',
        message: `Field ${field} is longer than 255 characters`,
        code: 'invalid_identity',
      });
      assert.equal(got.code, CloseCode.InvalidHello);
    }
    assert.equal(await countRows(srv, 'devices', 'device_id = ?', 'h'.repeat(3000)), 0);
    await assertStillServes(srv, 'big-names');
  });

  it('a huge room_id is room_not_found: 4004 in a hello, the connection stays for a join_room', async () => {
    const roomId = 'R'.repeat(3000);
    const got = await refusedFirstFrame(
      srv.url,
      JSON.stringify({ device_id: 'big-room', identity: 'x', room_id: roomId }),
    );
    assert.deepEqual(got.frame, {
      type: 'error',
      message: `Room ${roomId} does not exist`,
      code: 'room_not_found',
    });
    assert.equal(got.code, CloseCode.RoomNotFound);

    const a = await newRoomL2(srv.url, 'big-join', 'x');
    a.client.send({ type: 'join_room', room_id: roomId });
    const error = await a.client.next();
    assert.equal(error.code, 'room_not_found');
    const info = await a.client.queryRoom();
    assert.equal(info.room_id, a.roomId);
    await a.client.close();
    assert.equal(await countRows(srv, 'rooms', 'room_id = ?', roomId), 0);
  });
});
