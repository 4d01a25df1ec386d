import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer, type TestServer } from './helpers/server.js';
import type { Frame } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { joinExistingL2, nextEnvelope, resumeL2 } from './helpers/level2.js';
import { waitFor } from './helpers/wait.js';
import { assertStillServes, countRows } from './helpers/hostile.js';

const MAX_BUFFERED = 65_536;
/** Each message is most of a default frame (64 KiB): the kernel's socket buffers fill within a few MB. */
const PAD = 'p'.repeat(50_000);
/** Bounds the test if the server never cuts the stalled reader (the default burst allows this many). */
const MAX_MESSAGES = 1500;

/** The stalled client is terminated without a close frame (it would queue behind the unread data). */
const CUT_CODES: number[] = [1006, CloseCode.SlowConsumer];

async function recordedAsDisconnected(srv: TestServer, deviceId: string): Promise<void> {
  await waitFor(`${deviceId} recorded as disconnected`, async () => {
    const rows = await srv.rows<{ disconnected_at: string | null }>(
      'select disconnected_at from connections where device_id = ?',
      deviceId,
    );
    return rows.length === 1 && rows[0]!.disconnected_at !== null;
  });
}

describe('a stalled reader in a busy room (--max-buffered-bytes)', () => {
  const srv = useServer({ maxBufferedBytes: MAX_BUFFERED });

  it('is cut and recorded as disconnected, while an honest reader gets every message', async () => {
    const sender = await joinNew(srv.url, 'stall-s', 'sender');
    const honest = await joinExistingL2(srv.url, 'stall-h', 'honest', sender.roomId);
    const stalled = await joinExisting(srv.url, 'stall-r', 'stalled', sender.roomId);
    assert.equal((await honest.client.next()).type, 'member_joined');
    // Stop reading: the server's data for it piles up in the kernel, then in the server.
    stalled.ws.pause();

    // The sender sends as fast as the honest reader reads (one message in flight), so only the
    // stalled reader's backlog grows.
    let sent = 0;
    let cut = false;
    const seqs: number[] = [];
    const readUntilSeq = async (seq: number) => {
      for (;;) {
        const frame: Frame = await honest.client.next();
        if (frame.type === 'member_left') {
          assert.equal(frame.device_id, 'stall-r');
          cut = true;
        } else {
          assert.equal(frame.type, 'message', JSON.stringify(frame).slice(0, 200));
          seqs.push(frame.seq as number);
          if (frame.seq === seq) return;
        }
      }
    };
    while (!cut && sent < MAX_MESSAGES) {
      sender.client.send(`{"i":${++sent},"pad":"${PAD}"}`);
      await readUntilSeq(sent);
    }
    assert.ok(cut, `the stalled reader was not cut after ${sent} messages of 50 KB`);

    // The room goes on for the honest members.
    for (let i = 0; i < 5; i++) {
      sender.client.send(`{"i":${++sent},"pad":"after"}`);
      await readUntilSeq(sent);
    }
    assert.deepEqual(
      seqs,
      Array.from({ length: sent }, (_, i) => i + 1),
    );
    assert.equal(await countRows(srv, 'messages', 'room_id = ?', sender.roomId), sent);
    await recordedAsDisconnected(srv, 'stall-r');
    assert.equal((await sender.client.queryRoom()).total_clients, 2);

    // Once it reads again, the stalled client finds its connection gone.
    stalled.ws.resume();
    const closed = await stalled.closed;
    assert.ok(CUT_CODES.includes(closed.code), `closed with ${closed.code}`);
    await honest.client.close();
    await sender.client.close();
    await assertStillServes(srv, 'stall');
  });

  it('a client that floods WebSocket pings but never reads the pongs is cut too', async () => {
    const pinger = await joinNew(srv.url, 'stall-ping', 'pinger');
    const roommate = await joinExisting(srv.url, 'stall-ping-mate', 'mate', pinger.roomId);
    pinger.client.ws.pause();
    const payload = Buffer.alloc(125, 0x70); // the largest control frame payload
    let batches = 0;
    let total = 0;
    // Every ping makes the server write a pong: unread pongs must not pile up in the server (ws
    // itself terminates a peer with too many pongs not yet written).
    do {
      for (let i = 0; i < 1000; i++) pinger.client.ws.ping(payload);
      total = Number((await roommate.queryRoom()).total_clients);
    } while (total === 2 && ++batches < 150);
    assert.equal(total, 1, `still a member after ${batches * 1000} unread pongs`);
    await recordedAsDisconnected(srv, 'stall-ping');
    pinger.client.ws.resume();
    await pinger.client.closed;
    await roommate.close();
    await assertStillServes(srv, 'stall-ping');
  });

  it('a reader that reads is not cut when a burst of small messages arrives at once', async () => {
    // 500 small messages in one go (well within the rate limit's burst): their envelopes pass
    // --max-buffered-bytes only if counted before the socket has had a chance to write them.
    const sender = await joinNew(srv.url, 'burst-s', 'sender');
    const reader = await joinExistingL2(srv.url, 'burst-reader', 'reader', sender.roomId);
    for (let n = 1; n <= 500; n++) sender.client.send(`{"n":${n}}`);
    for (let n = 1; n <= 500; n++) assert.deepEqual((await nextEnvelope(reader.client)).data, { n });
    assert.equal((await reader.client.queryRoom()).total_clients, 2);
    await reader.client.close();
    await sender.client.close();
  });
});

describe('the slow-consumer limit spares honest readers (defaults)', () => {
  const srv = useServer();

  it('a resume that replays more than --max-buffered-bytes delivers every message and keeps the connection', async () => {
    const sender = await joinNew(srv.url, 'replay-s', 'sender');
    const phone = await joinExistingL2(srv.url, 'replay-phone', 'phone', sender.roomId);
    const lastSeq = Number(phone.reply.seq);
    await phone.client.close();
    // The phone is away while 1000 messages of 1.2 KB (1.3 MB of envelopes) are sent.
    const count = 1000;
    const pad = 'x'.repeat(1200);
    for (let n = 1; n <= count; n++) sender.client.send(`{"n":${n},"pad":"${pad}"}`);
    await waitFor(
      'all recorded',
      async () => (await countRows(srv, 'messages', 'room_id = ?', sender.roomId)) === count,
    );

    const back = await resumeL2(srv.url, 'replay-phone', 'phone', sender.roomId, lastSeq);
    assert.equal(back.reply.type, 'room');
    assert.equal(back.reply.recovered, true);
    for (let n = 1; n <= count; n++) {
      const envelope = await nextEnvelope(back.client);
      assert.equal(envelope.seq, lastSeq + n);
    }
    back.client.send({ type: 'ping' });
    assert.deepEqual(await back.client.next(), { type: 'pong' });
    await back.client.close();
    await sender.client.close();
  });
});
