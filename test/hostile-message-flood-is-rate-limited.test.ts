import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import type { Frame } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { joinExistingL2, newRoomL2, nextEnvelope } from './helpers/level2.js';
import { assertStillServes, countRows } from './helpers/hostile.js';

const RATE = 50;
const BURST = 100;
const FLOOD = 1000;

describe('a message flood far past --rate-limit-per-second', () => {
  const srv = useServer({ rateLimitPerSecond: RATE, rateLimitBurst: BURST });

  it('the flooder gets rate_limited then close 4029; the honest members see only accepted frames, all recorded', async () => {
    const flooder = await joinNew(srv.url, 'flood-s', 'flooder');
    const receiver = await joinExisting(srv.url, 'flood-r', 'receiver', flooder.roomId);
    const honest = await joinExisting(srv.url, 'flood-h', 'honest', flooder.roomId);

    for (let n = 0; n < FLOOD; n++) flooder.client.send(`{"n":${n}}`);
    assert.equal((await flooder.client.closed).code, CloseCode.RateLimited);

    // Everything the flooder got after its room reply: rate_limited errors, far fewer than the
    // frames refused (the error is not an amplifier).
    const answers = flooder.client.received.slice(2).map((t) => JSON.parse(t) as Frame);
    assert.ok(answers.length >= 1, 'the flooder was told');
    for (const a of answers) assert.deepEqual([a.type, a.code], ['error', 'rate_limited'], JSON.stringify(a));
    assert.ok(answers.length < FLOOD / 10, `${answers.length} error frames for one flood`);

    // The honest member still talks; the receiver got some of the flood, then the honest marker,
    // and never an error.
    honest.send('{"honest":true}');
    const delivered: string[] = [];
    for (;;) {
      const text = await receiver.nextText();
      if (text === '{"honest":true}') break;
      assert.match(text, /^\{"n":\d+\}$/);
      delivered.push(text);
    }
    // Exactly what was delivered was recorded: nothing of the refused frames.
    const rows = await srv.rows<{ message_content: string }>(
      "select message_content from messages where from_device_id = 'flood-s' order by id",
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      delivered,
    );
    assert.ok(delivered.length >= 1 && delivered.length < FLOOD, `${delivered.length} of ${FLOOD} accepted`);
    assert.equal(await countRows(srv, 'messages', "from_device_id = 'flood-h'"), 1);

    // The honest member got the same accepted frames, then the receiver's reply: they keep talking.
    receiver.send('{"reply":true}');
    for (const text of delivered) assert.equal(await honest.nextText(), text);
    assert.equal(await honest.nextText(), '{"reply":true}');
    await honest.close();
    await receiver.close();
    await assertStillServes(srv, 'flood');
  });

  it('a query_room flood is limited too, and only answered queries are recorded', async () => {
    const flooder = await joinNew(srv.url, 'flood-q', 'flooder');
    for (let n = 0; n < FLOOD; n++) flooder.client.send({ type: 'query_room' });
    assert.equal((await flooder.client.closed).code, CloseCode.RateLimited);
    const answers = flooder.client.received.slice(2).map((t) => JSON.parse(t) as Frame);
    const infos = answers.filter((a) => a.type === 'room_info').length;
    assert.ok(infos < FLOOD);
    assert.ok(answers.some((a) => a.code === 'rate_limited'));
    assert.equal(await countRows(srv, 'room_queries', "device_id = 'flood-q'"), infos);
  });

  it('a burst below --rate-limit-burst is accepted in full', async () => {
    const sender = await newRoomL2(srv.url, 'burst-s', 'sender');
    const receiver = await joinExistingL2(srv.url, 'burst-r', 'receiver', sender.roomId);
    assert.equal((await sender.client.next()).type, 'member_joined');
    const count = BURST - 10;
    for (let n = 1; n <= count; n++) sender.client.send({ n, ack_id: n });
    for (let n = 1; n <= count; n++)
      assert.deepEqual(await sender.client.next(), { type: 'ack', ack_id: n, seq: n });
    for (let n = 1; n <= count; n++) assert.deepEqual((await nextEnvelope(receiver.client)).data, { n });
    await receiver.client.close();
    await sender.client.close();
  });
});

describe('with the default rate limit a 60 Hz controller streams untouched', () => {
  const srv = useServer();

  it('two seconds at 60 messages a second: every message acked, delivered and recorded', async () => {
    const controller = await newRoomL2(srv.url, 'hz-controller', 'controller');
    const screen = await joinExistingL2(srv.url, 'hz-screen', 'screen', controller.roomId);
    assert.equal((await controller.client.next()).type, 'member_joined');
    const count = 120;
    // The timer only paces the sender like a real controller; no assertion depends on timing.
    let n = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        n++;
        controller.client.send({ type: 'axis', x: n, ack_id: n });
        if (n === count) {
          clearInterval(timer);
          resolve();
        }
      }, 1000 / 60);
    });
    for (let i = 1; i <= count; i++) {
      assert.deepEqual(await controller.client.next(), { type: 'ack', ack_id: i, seq: i });
      assert.deepEqual((await nextEnvelope(screen.client)).data, { type: 'axis', x: i });
    }
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', controller.roomId), count);
    await screen.client.close();
    await controller.client.close();
  });
});
