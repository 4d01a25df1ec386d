/** Shortcuts for Level 2 clients (hello with "protocol": 2) and the frames they receive. */
import assert from 'node:assert/strict';
import { TestClient, type Frame } from './client.js';
import { ISO_MS } from './wait.js';

export interface Envelope extends Frame {
  type: 'message';
  room_id: string;
  seq: number;
  from: { device_id: string; identity: string };
  sent_at: string;
  to?: string;
  data: unknown;
}

/** A Level 2 hello; `room` as in Level 1 (absent: the device's last room or a new one). */
export async function joinL2(
  url: string,
  deviceId: string,
  identity: string,
  room?: string,
): Promise<{ client: TestClient; reply: Frame }> {
  const hello: Record<string, unknown> = { device_id: deviceId, identity, protocol: 2 };
  if (room !== undefined) hello.room_id = room;
  const { client, reply } = await TestClient.join(url, hello);
  assert.equal(reply.type, 'room', `expected a room reply, got ${JSON.stringify(reply)}`);
  return { client, reply };
}

/** A Level 2 device that creates a new room. */
export async function newRoomL2(
  url: string,
  deviceId: string,
  identity: string,
): Promise<{ client: TestClient; roomId: string; reply: Frame }> {
  const { client, reply } = await joinL2(url, deviceId, identity);
  assert.equal(reply.status, 'created_new');
  return { client, roomId: String(reply.room_id), reply };
}

/** A Level 2 device that joins an existing room by its code. */
export async function joinExistingL2(
  url: string,
  deviceId: string,
  identity: string,
  roomId: string,
): Promise<{ client: TestClient; reply: Frame }> {
  const joined = await joinL2(url, deviceId, identity, roomId);
  assert.equal(joined.reply.status, 'joined_existing');
  return joined;
}

/** A Level 2 hello that resumes `roomId` after `lastSeq`; returns the client and the reply. */
export async function resumeL2(
  url: string,
  deviceId: string,
  identity: string,
  roomId: string,
  lastSeq: number,
): Promise<{ client: TestClient; reply: Frame }> {
  return TestClient.join(url, {
    device_id: deviceId,
    identity,
    protocol: 2,
    resume: { room_id: roomId, last_seq: lastSeq },
  });
}

/** The next frame, which must be an envelope; checks its shape (key order included). */
export async function nextEnvelope(client: TestClient): Promise<Envelope> {
  const text = await client.nextText();
  return assertEnvelope(text);
}

/** Parses a frame that must be an envelope, checking the key order and the timestamp format. */
export function assertEnvelope(text: string): Envelope {
  const frame = JSON.parse(text) as Envelope;
  assert.equal(frame.type, 'message', `expected an envelope, got ${text}`);
  const keys = Object.keys(frame);
  const expected = ['type', 'room_id', 'seq', 'from', 'sent_at', ...('to' in frame ? ['to'] : []), 'data'];
  assert.deepEqual(keys, expected, `envelope keys of ${text}`);
  assert.deepEqual(Object.keys(frame.from), ['device_id', 'identity']);
  assert.match(frame.sent_at, ISO_MS);
  assert.ok(Number.isSafeInteger(frame.seq) && frame.seq > 0, `bad seq in ${text}`);
  return frame;
}

/**
 * Sends a ping and returns every frame that arrived before the pong. A Level 2 connection answers
 * its frames in order, so this shows what the server had sent it up to that point.
 */
export async function framesBeforePong(client: TestClient): Promise<Frame[]> {
  client.send({ type: 'ping' });
  const before: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame.type === 'pong') return before;
    before.push(frame);
  }
}

/** Reads frames until one satisfies `done` and returns them all (that one last). */
export async function framesUntil(client: TestClient, done: (frame: Frame) => boolean): Promise<Frame[]> {
  const out: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    out.push(frame);
    if (done(frame)) return out;
  }
}

/** The numbers 1..n. */
export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/**
 * Records every envelope a client receives, as it arrives (beside TestClient's own queue), so a
 * test can wait for "the observer has seen seq N" while other traffic flows.
 */
export class EnvelopeLog {
  /** Seqs in arrival order (duplicates kept, so a test can see them). */
  readonly seqs: number[] = [];
  /** Raw envelope text by seq (the first one received). */
  readonly raw = new Map<number, string>();
  private readonly waiters: { done: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  constructor(client: TestClient) {
    client.ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      const frame = JSON.parse(text) as Frame;
      if (frame.type === 'message') {
        const seq = frame.seq as number;
        this.seqs.push(seq);
        this.maxSeq = Math.max(this.maxSeq, seq);
        if (!this.raw.has(seq)) this.raw.set(seq, text);
      }
      this.check();
    });
    client.ws.once('close', () => {
      this.closed = true;
      this.check();
    });
  }

  /** Highest seq received so far (0 before any). */
  maxSeq = 0;

  /** Resolves once `done()` holds (checked after every frame); rejects if the socket closes first. */
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('socket closed before the condition held'));
      this.waiters.push({ done, resolve, reject });
    });
  }

  private check(): void {
    for (const w of [...this.waiters]) {
      if (w.done()) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      } else if (this.closed) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.reject(new Error('socket closed before the condition held'));
      }
    }
  }
}
