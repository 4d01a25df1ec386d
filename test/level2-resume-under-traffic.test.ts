import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  NO_RATE_LIMIT,
  removeDir,
  startServer,
  tempDir,
  useServer,
  type TestServer,
} from './helpers/server.js';
import { TestClient, type Frame } from './helpers/client.js';
import { joinExisting } from './helpers/rooms.js';
import {
  EnvelopeLog,
  assertEnvelope,
  framesBeforePong,
  framesUntil,
  joinExistingL2,
  nextEnvelope,
  newRoomL2,
  oneTo,
  resumeL2,
} from './helpers/level2.js';

/** Frames the receiver gets before it is cut off. */
const KILL_AFTER = 100;
/** Messages the server accepts after the cut-off before the receiver comes back: the replay. */
const MISSED_AT_LEAST = 50;
/** Messages sent after the resume reply: the live part after the replay. */
const LIVE_AFTER_RESUME = 100;
/** The stream is at least this long. */
const STREAM_AT_LEAST = 600;
/**
 * A sender streams {"n":i} without pausing (it only yields to the event loop so that sockets are
 * served); a Level 2 receiver loses its connection after KILL_AFTER frames, comes back with resume
 * once the room has moved on by MISSED_AT_LEAST messages (an observer that stays connected tells
 * when), and must end up with every seq exactly once, in order, each envelope byte-identical to
 * the one the observer got live.
 *
 * `cut`: 'terminate' drops the socket without a close handshake (the server sees it go);
 * 'replace' keeps the old socket open, as when the server has not yet noticed a dead network: the
 * client ignores what it gets after KILL_AFTER and the resume replaces that connection (4009).
 */
async function resumeUnderTraffic(url: string, prefix: string, cut: 'terminate' | 'replace'): Promise<void> {
  const r = await newRoomL2(url, `${prefix}-r`, 'Receiver');
  const roomId = r.roomId;
  const seen1 = new EnvelopeLog(r.client);
  let lost!: () => void;
  const connectionLost = new Promise<void>((resolve) => (lost = resolve));
  r.client.ws.on('message', () => {
    if (seen1.seqs.length !== KILL_AFTER) return;
    if (cut === 'terminate') r.client.ws.terminate();
    lost();
  });
  const o = await joinExistingL2(url, `${prefix}-o`, 'Observer', roomId);
  const observed = new EnvelopeLog(o.client);
  const s = await joinExistingL2(url, `${prefix}-s`, 'Sender', roomId);
  // An error to the sender (rate_limited, …) means a message got no seq: fail instead of waiting.
  const senderRefused = new Promise<never>((_, reject) => {
    s.client.ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      if ((JSON.parse(text) as Frame).type === 'error') reject(new Error(`the sender got ${text}`));
    });
  });
  senderRefused.catch(() => undefined); // raced below; unobserved if it never rejects in a wait
  const observe = (done: () => boolean) => Promise.race([observed.until(done), senderRefused]);

  let sent = 0;
  let stopAt = Number.MAX_SAFE_INTEGER;
  const sending = (async () => {
    while (sent < stopAt) {
      s.client.send(`{"n":${++sent}}`);
      if (sent % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (sent > 100_000) throw new Error('the stream never ended');
    }
  })();

  await connectionLost;
  if (cut === 'terminate') await r.client.closed;
  // What the client saw: everything up to the cut (with terminate, frames ws had already read count).
  const seenBefore = cut === 'terminate' ? seen1.seqs : seen1.seqs.slice(0, KILL_AFTER);
  const lastSeen = seenBefore[seenBefore.length - 1]!;
  assert.deepEqual(seenBefore, oneTo(lastSeen), 'first connection: in order, no gap');
  // Wait (for frames, not for time) until the room has moved on, so that the resume has a replay.
  await observe(() => observed.maxSeq >= lastSeen + MISSED_AT_LEAST);

  // The resume hello, and a ping right behind it: handled after the replay, not before.
  const r2 = await TestClient.connect(url);
  r2.send({
    device_id: `${prefix}-r`,
    identity: 'Receiver',
    protocol: 2,
    resume: { room_id: roomId.toLowerCase(), last_seq: lastSeen },
  });
  r2.send({ type: 'ping' });
  const reply = await r2.next();
  stopAt = Math.max(sent + LIVE_AFTER_RESUME, STREAM_AT_LEAST);
  assert.equal(reply.type, 'room', JSON.stringify(reply));
  assert.equal(reply.room_id, roomId);
  assert.equal(reply.status, 'reconnected');
  assert.equal(reply.recovered, true, JSON.stringify(reply));
  const replySeq = reply.seq as number;
  assert.ok(replySeq >= lastSeen + MISSED_AT_LEAST, `reply seq ${replySeq}`);
  assert.deepEqual(Object.keys(reply), [
    'type',
    'room_id',
    'status',
    'message',
    'members',
    'seq',
    'recovered',
  ]);
  if (cut === 'replace') assert.equal((await r.client.closed).code, 4009);

  await sending;
  s.client.send('{"done":true}');
  const total = sent + 1;
  const rest = await framesUntil(r2, (f) => f.type === 'message' && isDone(f));
  await observe(() => observed.maxSeq === total);

  // Presence frames may come about others; the receiver's envelopes are what counts.
  const seen2: number[] = [];
  for (const frame of rest) {
    if (frame.type !== 'message') continue;
    const env = assertEnvelope(JSON.stringify(frame));
    seen2.push(env.seq);
    assert.deepEqual(env.data, env.seq === total ? { done: true } : { n: env.seq });
  }
  assert.equal(seen2[0], lastSeen + 1, 'the replay starts right after last_seq');
  assert.deepEqual([...seenBefore, ...seen2], oneTo(total), 'every seq exactly once, in order');
  assert.deepEqual(observed.seqs, oneTo(total), 'the observer got every seq once');
  // The ping was answered once, after the whole replay.
  const pongAt = rest.findIndex((f) => f.type === 'pong');
  assert.ok(pongAt >= 0, 'no pong');
  assert.equal(rest.filter((f) => f.type === 'pong').length, 1);
  const replayed = rest.filter((f) => f.type === 'message' && (f.seq as number) <= replySeq);
  assert.equal(replayed.length, replySeq - lastSeen);
  assert.ok(rest.indexOf(replayed[replayed.length - 1]!) < pongAt, 'pong before the end of the replay');
  // Replayed or live, each envelope is the same bytes the observer got.
  for (const [i, raw] of r2.received.slice(1).entries()) {
    const frame = JSON.parse(raw) as Frame;
    if (frame.type === 'message') assert.equal(raw, observed.raw.get(frame.seq as number), `frame ${i}`);
  }
  for (const [seq, raw] of seen1.raw) assert.equal(raw, observed.raw.get(seq));
  await r2.close();
  await o.client.close();
  await s.client.close();
}

function isDone(frame: Frame): boolean {
  const data = frame.data as Record<string, unknown> | undefined;
  return data?.done === true;
}

// At the default limit (1,000/s, burst 2,000) a slow resume let the sender outrun it and hung a CI run.
describe('resume under traffic, replayed from the in-memory window', () => {
  const srv = useServer({ historyWindow: 10_000, ...NO_RATE_LIMIT });

  it('connection cut off: the receiver gets every seq exactly once, in order', async () => {
    await resumeUnderTraffic(srv.url, 'rut-win', 'terminate');
  });

  it('old connection not yet noticed (replaced, 4009): every seq exactly once, in order', async () => {
    await resumeUnderTraffic(srv.url, 'rut-winr', 'replace');
  });
});

describe('resume under traffic, replayed from the database (history window 0)', () => {
  const srv = useServer({ historyWindow: 0, ...NO_RATE_LIMIT });

  it('connection cut off: the receiver gets every seq exactly once, in order', async () => {
    await resumeUnderTraffic(srv.url, 'rut-db', 'terminate');
  });

  it('old connection not yet noticed (replaced, 4009): every seq exactly once, in order', async () => {
    await resumeUnderTraffic(srv.url, 'rut-dbr', 'replace');
  });
});

/** Room with R (receiver), T (Level 2), U (Level 1), S (sender); presence consumed. */
async function fourInARoom(url: string, prefix: string) {
  const r = await newRoomL2(url, `${prefix}-r`, 'Receiver');
  const t = await joinExistingL2(url, `${prefix}-t`, 'Other', r.roomId);
  const u = await joinExisting(url, `${prefix}-u`, 'Remote', r.roomId);
  const s = await joinExistingL2(url, `${prefix}-s`, 'Sender', r.roomId);
  for (let i = 0; i < 3; i++) assert.equal((await r.client.next()).type, 'member_joined');
  for (let i = 0; i < 2; i++) assert.equal((await t.client.next()).type, 'member_joined');
  return { roomId: r.roomId, r: r.client, t: t.client, u, s: s.client };
}

/**
 * seq 1 broadcast, 2 to R, 3 to T, 4 from the Level 1 member, 5 R's own broadcast, 6 to U.
 * Returns the envelopes as delivered live (R's copy, or T's for R's own message).
 */
async function mixedTraffic(room: Awaited<ReturnType<typeof fourInARoom>>, prefix: string) {
  const { r, t, u, s } = room;
  const live = new Map<number, string>();
  const ack = async (client: TestClient, seq: number) =>
    assert.deepEqual(await client.next(), { type: 'ack', ack_id: seq, seq });
  s.send({ n: 1, ack_id: 1 });
  await ack(s, 1);
  s.send({ type: 'send', to: `${prefix}-r`, data: { n: 2 }, ack_id: 2 });
  await ack(s, 2);
  s.send({ type: 'send', to: `${prefix}-t`, data: { n: 3 }, ack_id: 3 });
  await ack(s, 3);
  // One sender at a time, each waiting for its message to land: the seqs are then known.
  const envelopeOf = async (client: TestClient, seq: number) => {
    const raw = await client.nextText();
    assert.equal(assertEnvelope(raw).seq, seq, raw);
    return raw;
  };
  for (const seq of [1, 3]) await envelopeOf(t, seq);
  u.send('{"n":4}');
  await envelopeOf(t, 4);
  r.send({ n: 5, ack_id: 5 });
  for (const seq of [1, 2, 4]) live.set(seq, await envelopeOf(r, seq));
  await ack(r, 5);
  live.set(5, await envelopeOf(t, 5));
  for (const seq of [4, 5]) await envelopeOf(s, seq);
  s.send({ type: 'send', to: `${prefix}-u`, data: { n: 6 }, ack_id: 6 });
  await ack(s, 6);
  for (const text of ['{"n":1}', '{"n":5}', '{"n":6}']) assert.equal(await u.nextText(), text);
  return live;
}

/** Reads the envelopes `seqs` checks them against the live ones, byte for byte. */
async function expectReplay(client: TestClient, live: Map<number, string>, seqs: number[]): Promise<void> {
  for (const seq of seqs) {
    const raw = await client.nextText();
    assert.equal(assertEnvelope(raw).seq, seq, raw);
    assert.equal(raw, live.get(seq), `replayed envelope ${seq} differs from the live one`);
  }
  // Then nothing more: the replay is exactly these.
  assert.deepEqual(await framesBeforePong(client), []);
}

describe('resume: what is replayed, and when it is not', () => {
  const srv = useServer();

  it('replays broadcasts (its own too) and messages sent to it, not messages sent to others', async () => {
    const room = await fourInARoom(srv.url, 'rs');
    const live = await mixedTraffic(room, 'rs');
    // The old connection is still in the room: the resume replaces it (4009), with no presence.
    const r2 = await resumeL2(srv.url, 'rs-r', 'Receiver', room.roomId, 0);
    assert.equal((await room.r.closed).code, 4009);
    assert.deepEqual(
      { ...r2.reply, members: [] },
      {
        type: 'room',
        room_id: room.roomId,
        status: 'reconnected',
        message: `reconnected: joined room ${room.roomId}`,
        members: [],
        seq: 6,
        recovered: true,
      },
    );
    assert.deepEqual((r2.reply.members as { device_id: string }[]).map((m) => m.device_id).sort(), [
      'rs-r',
      'rs-s',
      'rs-t',
      'rs-u',
    ]);
    await expectReplay(r2.client, live, [1, 2, 4, 5]);
    assert.deepEqual(await framesBeforePong(room.t), []); // no member_left / member_joined
    // Then live, from seq 7.
    room.s.send('{"n":7}');
    assert.equal((await nextEnvelope(r2.client)).seq, 7);
    assert.equal((await nextEnvelope(room.t)).seq, 7);

    // last_seq beyond the room's seq: recovered false with a reason, nothing replayed, live.
    const r3 = await resumeL2(srv.url, 'rs-r', 'Receiver', room.roomId, 99);
    assert.equal(r3.reply.status, 'reconnected');
    assert.equal(r3.reply.seq, 7);
    assert.equal(r3.reply.recovered, false);
    assert.equal(r3.reply.reason, "last_seq 99 is beyond the room's seq 7");
    assert.deepEqual(await framesBeforePong(r3.client), []);
    room.s.send('{"n":8}');
    assert.equal((await nextEnvelope(r3.client)).seq, 8);

    // last_seq equal to the room's seq: recovered, nothing to replay.
    const r4 = await resumeL2(srv.url, 'rs-r', 'Receiver', room.roomId, 8);
    assert.equal(r4.reply.recovered, true);
    assert.equal(r4.reply.reason, undefined);
    assert.deepEqual(await framesBeforePong(r4.client), []);

    // Once the server has seen the device go, a resume is a join for the others.
    await r4.client.close();
    const beforeLeft = await framesUntil(room.t, (f) => f.type === 'member_left');
    assert.deepEqual(
      beforeLeft.map((f) => f.seq ?? f.type),
      [8, 'member_left'],
    );
    const r5 = await resumeL2(srv.url, 'rs-r', 'Receiver', room.roomId, 7);
    assert.equal(r5.reply.recovered, true);
    await expectReplay(r5.client, new Map([[8, room.t.received.find((x) => x.includes('"seq":8'))!]]), [8]);
    assert.deepEqual(await room.t.next(), {
      type: 'member_joined',
      room_id: room.roomId,
      device_id: 'rs-r',
      identity: 'Receiver',
    });
    for (const client of [r5.client, room.t, room.u, room.s]) await client.close();
  });

  it("the resumed room becomes the device's last room", async () => {
    const x = await newRoomL2(srv.url, 'rs-last-x', 'X');
    const y = await newRoomL2(srv.url, 'rs-last', 'Mover');
    await y.client.close();
    const back = await resumeL2(srv.url, 'rs-last', 'Mover', x.roomId, 0);
    assert.equal(back.reply.room_id, x.roomId);
    await back.client.close();
    // A plain hello without a room now goes back to x.
    const { client, reply } = await TestClient.join(srv.url, { device_id: 'rs-last', identity: 'Mover' });
    assert.equal(reply.status, 'reconnected');
    assert.equal(reply.room_id, x.roomId);
    await client.close();
    await x.client.close();
  });

  it('a resume that names an unknown room: room_not_found, close 4004', async () => {
    const { client, reply } = await resumeL2(srv.url, 'rs-404', 'X', 'ZZZZZZZZ', 0);
    assert.deepEqual(reply, {
      type: 'error',
      message: 'Room ZZZZZZZZ does not exist',
      code: 'room_not_found',
    });
    assert.equal((await client.closed).code, 4004);
  });

  for (const resume of [
    { room_id: 'AAAAAAAA' },
    { room_id: 'AAAAAAAA', last_seq: -1 },
    { room_id: 'AAAAAAAA', last_seq: 1.5 },
    { room_id: 'AAAAAAAA', last_seq: '3' },
    { last_seq: 0 },
    'AAAAAAAA',
    [1],
  ]) {
    it(`a malformed resume ${JSON.stringify(resume)}: invalid_message, close 4000`, async () => {
      const client = await TestClient.connect(srv.url);
      client.send({ device_id: 'rs-bad', identity: 'X', protocol: 2, resume });
      assert.deepEqual(await client.next(), {
        type: 'error',
        message: 'Field resume must be {"room_id": string, "last_seq": integer >= 0}',
        code: 'invalid_message',
      });
      assert.equal((await client.closed).code, 4000);
    });
  }

  it('a Level 1 hello carrying resume is an ordinary Level 1 hello', async () => {
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'rs-l1',
      identity: 'X',
      resume: { room_id: 'ZZZZZZZZ', last_seq: 0 },
    });
    assert.deepEqual(Object.keys(reply), ['type', 'room_id', 'status', 'message']);
    assert.equal(reply.status, 'created_new');
    assert.equal((await client.queryRoom()).type, 'room_info');
    await client.close();
  });
});

describe('resume: more missed than --resume-max-messages', () => {
  const srv = useServer({ resumeMaxMessages: 3 });

  it('is not recovered (with the reason), and one within the limit is', async () => {
    const r = await newRoomL2(srv.url, 'rmax-r', 'Receiver');
    const s = await joinExistingL2(srv.url, 'rmax-s', 'Sender', r.roomId);
    assert.equal((await r.client.next()).type, 'member_joined');
    const live = new Map<number, string>();
    for (let n = 1; n <= 5; n++) s.client.send(`{"n":${n}}`);
    for (let n = 1; n <= 5; n++) {
      const raw = await r.client.nextText();
      live.set(assertEnvelope(raw).seq, raw);
    }
    const r2 = await resumeL2(srv.url, 'rmax-r', 'Receiver', r.roomId, 1);
    assert.equal(r2.reply.recovered, false);
    assert.equal(r2.reply.reason, '4 messages were missed, more than the resume limit of 3');
    assert.equal(r2.reply.seq, 5);
    assert.deepEqual(await framesBeforePong(r2.client), []);
    const r3 = await resumeL2(srv.url, 'rmax-r', 'Receiver', r.roomId, 2);
    assert.equal(r3.reply.recovered, true);
    await expectReplay(r3.client, live, [3, 4, 5]);
    for (const client of [r3.client, s.client]) await client.close();
  });
});

describe('resume after a server restart: the replay comes from the database', () => {
  const dir = tempDir();
  let first: TestServer | undefined;
  let second: TestServer | undefined;
  let roomId = '';
  let live = new Map<number, string>();

  before(async () => {
    first = await startServer({}, dir);
    const room = await fourInARoom(first.url, 'rsr');
    roomId = room.roomId;
    live = await mixedTraffic(room, 'rsr');
    await first.stop();
    for (const client of [room.r, room.t, room.u, room.s]) assert.equal((await client.closed).code, 1012);
    second = await startServer({}, dir);
  });
  after(async () => {
    await first?.stop();
    await second?.stop();
    removeDir(dir);
  });

  it('recovered: the missed messages it may see, identical to the live ones, then live from the next seq', async () => {
    const r = await resumeL2(second!.url, 'rsr-r', 'Receiver', roomId, 1);
    assert.deepEqual(r.reply, {
      type: 'room',
      room_id: roomId,
      status: 'reconnected',
      message: `reconnected: joined room ${roomId}`,
      members: [{ device_id: 'rsr-r', identity: 'Receiver' }],
      seq: 6,
      recovered: true,
    });
    await expectReplay(r.client, live, [2, 4, 5]);
    const s = await joinExistingL2(second!.url, 'rsr-s', 'Sender', roomId);
    assert.equal(s.reply.seq, 6);
    assert.equal((await r.client.next()).type, 'member_joined');
    s.client.send('{"n":7}');
    assert.equal((await nextEnvelope(r.client)).seq, 7);
    await s.client.close();
    await r.client.close();
  });
});
