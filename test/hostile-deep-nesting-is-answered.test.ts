import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer, type TestServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { joinExistingL2, newRoomL2 } from './helpers/level2.js';
import { assertStillServes, nestedArrays, refusedFirstFrame } from './helpers/hostile.js';

/** `{"a":` × depth, 1, `}` × depth: objects nested `depth` deep. */
function nestedObjects(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/**
 * Waits for `p`, failing at once if the server throws meanwhile: it runs in this process, so an
 * exception it does not catch (one that would end a real server) is an uncaught exception here.
 */
function unlessServerThrows<T>(p: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onThrow = (err: Error) =>
      reject(new Error(`the server threw instead of answering: ${String(err)}`));
    process.once('uncaughtException', onThrow);
    p.then(resolve, reject).finally(() => process.off('uncaughtException', onThrow));
  });
}

/**
 * The checks shared by both frame limits: a deeply nested value (`nest`, which fits the limit) in
 * every place a client can put one. JSON.parse copes with any depth; re-serialising such a value
 * (JSON.stringify recurses) is where a server can blow its stack.
 */
function deepValueChecks(srv: () => TestServer, nest: string, tag: string): void {
  // A guard, not a timed assertion: a server that threw mid-frame leaves the socket wedged, and
  // the test should fail rather than hang (a working server answers in milliseconds).
  const guard = { timeout: 30_000 };
  it('a hello carrying the deep value in an extra field is an ordinary hello', guard, async () => {
    const hello = `{"device_id":"${tag}-hello","identity":"deep","extra":${nest}}`;
    const client = await TestClient.connect(srv().url);
    client.send(hello);
    const reply = await client.next();
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    await client.close();
    await assertStillServes(srv(), `${tag}-hello`);
  });

  it('Level 1: the deep object is forwarded unchanged and recorded byte for byte', guard, async () => {
    const text = `{"x":${nest}}`;
    const a = await joinNew(srv().url, `${tag}-l1-s`, 'sender');
    const receiver = await joinExisting(srv().url, `${tag}-l1-r`, 'receiver', a.roomId);
    const l2 = await joinExistingL2(srv().url, `${tag}-l1-l2`, 'level2', a.roomId);
    a.client.send(text);
    assert.equal(await receiver.nextText(), text);
    // The Level 2 member gets the envelope with the very same text as `data`.
    const envelope = await l2.client.nextText();
    assert.ok(envelope.endsWith(`"data":${text}}`), 'the envelope carries the sender text');
    const rows = await srv().rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: text }]);
    await l2.client.close();
    await receiver.close();
    await a.client.close();
    await assertStillServes(srv(), `${tag}-l1`);
  });

  it(
    'Level 2 broadcast with an ack_id (re-serialised without it) is answered: ack or error, never a crash',
    guard,
    async () => {
      const a = await newRoomL2(srv().url, `${tag}-ack-s`, 'sender');
      const receiver = await joinExisting(srv().url, `${tag}-ack-r`, 'receiver', a.roomId);
      await a.client.next(); // member_joined
      a.client.send(`{"ack_id":7,"x":${nest}}`);
      const answer = await unlessServerThrows(a.client.next());
      assert.ok(answer.type === 'ack' || answer.type === 'error', `answered ${String(answer.type)}`);
      assert.equal(answer.ack_id, 7);
      a.client.send('{"marker":true}');
      // Accepted: delivered without the ack_id; refused: nothing of it reaches the others.
      if (answer.type === 'ack') assert.equal(await receiver.nextText(), `{"x":${nest}}`);
      assert.equal(await receiver.nextText(), '{"marker":true}');
      const rows = await srv().rows<{ message_content: string }>(
        'select message_content from messages where room_id = ? order by id',
        a.roomId,
      );
      assert.deepEqual(
        rows.map((r) => r.message_content),
        answer.type === 'ack' ? [`{"x":${nest}}`, '{"marker":true}'] : ['{"marker":true}'],
      );
      await receiver.close();
      await a.client.close();
      await assertStillServes(srv(), `${tag}-ack`);
    },
  );

  it(
    'Level 2 send whose data is the deep value is answered: ack or error, never a crash',
    guard,
    async () => {
      const a = await newRoomL2(srv().url, `${tag}-send-s`, 'sender');
      const target = await joinExisting(srv().url, `${tag}-send-t`, 'target', a.roomId);
      await a.client.next(); // member_joined
      a.client.send(`{"type":"send","to":"${tag}-send-t","ack_id":8,"data":{"x":${nest}}}`);
      const answer = await unlessServerThrows(a.client.next());
      assert.ok(answer.type === 'ack' || answer.type === 'error', `answered ${String(answer.type)}`);
      assert.equal(answer.ack_id, 8);
      if (answer.type === 'ack') assert.equal(await target.nextText(), `{"x":${nest}}`);
      a.client.send({ type: 'send', to: `${tag}-send-t`, data: { marker: true } });
      assert.equal(await target.nextText(), '{"marker":true}');
      await target.close();
      await a.client.close();
      await assertStillServes(srv(), `${tag}-send`);
    },
  );

  it(
    'a deep ack_id on a control message that fails is answered with an error, never a crash',
    guard,
    async () => {
      const a = await newRoomL2(srv().url, `${tag}-ackid`, 'sender');
      // join_room without room_id is invalid_message; the error repeats the ack_id when it can.
      a.client.send(`{"type":"join_room","ack_id":${nest}}`);
      const answer = await unlessServerThrows(a.client.next());
      assert.equal(answer.type, 'error');
      assert.equal(answer.code, 'invalid_message');
      a.client.send({ type: 'ping' });
      assert.deepEqual(await a.client.next(), { type: 'pong' });
      await a.client.close();
      await assertStillServes(srv(), `${tag}-ackid`);
    },
  );

  it('a deep ack_id on a broadcast is answered (ack or error), never a crash', guard, async () => {
    const a = await newRoomL2(srv().url, `${tag}-ackb-s`, 'sender');
    const receiver = await joinExisting(srv().url, `${tag}-ackb-r`, 'receiver', a.roomId);
    await a.client.next(); // member_joined
    a.client.send(`{"type":"chat","ack_id":${nest}}`);
    const answer = await unlessServerThrows(a.client.next());
    assert.ok(answer.type === 'ack' || answer.type === 'error', `answered ${String(answer.type)}`);
    if (answer.type === 'ack') assert.equal(await receiver.nextText(), '{"type":"chat"}');
    a.client.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    await receiver.close();
    await a.client.close();
    await assertStillServes(srv(), `${tag}-ackb`);
  });
}

describe('deep nesting with the default frame limit (64 KiB)', () => {
  const srv = useServer();
  // 100,000 nested arrays inside an object: 200 KB, over the frame limit but under the hard cap.
  const deep = `{"x":${nestedArrays(100_000)}}`;

  it('a hello of 100,000 nested arrays is answered payload_too_large and closed 4013', async () => {
    const got = await refusedFirstFrame(srv.url, deep);
    assert.equal(got.frame?.code, 'payload_too_large');
    assert.equal(got.code, CloseCode.PayloadTooLarge);
    await assertStillServes(srv, 'dn-hello-100k');
  });

  it('in a room, 100,000 nested arrays are answered payload_too_large and the connection stays open', async () => {
    const a = await joinNew(srv.url, 'dn-room-s', 'sender');
    const receiver = await joinExisting(srv.url, 'dn-room-r', 'receiver', a.roomId);
    a.client.send(deep);
    const error = await a.client.next();
    assert.equal(error.code, 'payload_too_large');
    a.client.send('{"marker":true}');
    assert.equal(await receiver.nextText(), '{"marker":true}');
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: '{"marker":true}' }]);
    await receiver.close();
    await a.client.close();
  });

  // 30,000 nested arrays (60 KB) fit the default limit: deep enough to overflow a recursive
  // serialiser, which a default-configured server must survive.
  deepValueChecks(() => srv, nestedArrays(30_000), 'dn30k');
});

describe('deep nesting with a 1 MiB frame limit: 100,000 levels reach the parser', () => {
  const srv = useServer({ maxFrameBytes: 1024 * 1024 });

  deepValueChecks(() => srv, nestedArrays(100_000), 'dn100k');

  it('100,000 nested objects are forwarded unchanged too', async () => {
    const text = nestedObjects(100_000);
    const a = await joinNew(srv.url, 'dn-obj-s', 'sender');
    const receiver = await joinExisting(srv.url, 'dn-obj-r', 'receiver', a.roomId);
    a.client.send(text);
    assert.equal(await receiver.nextText(), text);
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: text }]);
    await receiver.close();
    await a.client.close();
    await assertStillServes(srv, 'dn-obj');
  });
});
