/**
 * Relay latency against a running server: `rooms` rooms of two members each; the first member of
 * each room sends at an even total rate, the second receives, and the delay from send to receipt
 * (one process, one clock) is reported per window and in all: p50, p99, max.
 *
 *   npx tsx scripts/relay-latency.ts --url ws://127.0.0.1:8765 --rooms 200 --rate 4000 --seconds 30
 *
 * Used to measure the relay while retention deletes a backlog (docs/operations.md, Retention).
 * The clients connect from 127.0.0.1: start the server with --max-connections-per-ip 0 and a
 * rate limit above rate / rooms.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'ws://127.0.0.1:8765' },
    rooms: { type: 'string', default: '200' },
    rate: { type: 'string', default: '4000' },
    seconds: { type: 'string', default: '30' },
    window: { type: 'string', default: '5' },
  },
});
const url = values.url;
const rooms = Number(values.rooms);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const windowS = Number(values.window);

function open(): Promise<{ ws: WebSocket; frames: string[]; wait: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const frames: string[] = [];
    let waiter: ((s: string) => void) | undefined;
    ws.on('message', (d: Buffer) => {
      const s = d.toString();
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(s);
      } else frames.push(s);
    });
    const wait = () =>
      frames.length ? Promise.resolve(frames.shift()!) : new Promise<string>((r) => (waiter = r));
    ws.once('open', () => resolve({ ws, frames, wait }));
    ws.once('error', reject);
  });
}

async function room(i: number): Promise<{ sender: WebSocket; receiver: WebSocket }> {
  const a = await open();
  await a.wait(); // connection
  a.ws.send(JSON.stringify({ device_id: `lat-a-${i}-${process.pid}`, identity: 'a' }));
  const reply = JSON.parse(await a.wait()) as { room_id: string };
  const b = await open();
  await b.wait();
  b.ws.send(
    JSON.stringify({ device_id: `lat-b-${i}-${process.pid}`, identity: 'b', room_id: reply.room_id }),
  );
  await b.wait();
  return { sender: a.ws, receiver: b.ws };
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(samples: number[]): string {
  const s = Float64Array.from(samples).sort();
  const f = (n: number) => n.toFixed(2);
  return `n=${s.length} p50=${f(pct(s, 50))} p99=${f(pct(s, 99))} max=${f(s[s.length - 1] ?? NaN)} ms`;
}

const pairs = [];
for (let i = 0; i < rooms; i++) pairs.push(await room(i));
const all: number[] = [];
let window: number[] = [];
for (const { receiver } of pairs) {
  receiver.removeAllListeners('message');
  receiver.on('message', (d: Buffer) => {
    const ms = performance.now() - Number(JSON.parse(d.toString()).t);
    all.push(ms);
    window.push(ms);
  });
}
const tickMs = 10;
const perTick = (rate * tickMs) / 1000;
let owed = 0;
let next = 0;
let sent = 0;
const start = performance.now();
let windowStart = start;
const pad = 'x'.repeat(60);
await new Promise<void>((done) => {
  const timer = setInterval(() => {
    const now = performance.now();
    owed += perTick;
    while (owed >= 1) {
      pairs[next]!.sender.send(`{"t":${performance.now()},"p":"${pad}"}`);
      next = (next + 1) % pairs.length;
      owed--;
      sent++;
    }
    if (now - windowStart >= windowS * 1000) {
      console.log(`t=${((now - start) / 1000).toFixed(0)}s ${summary(window)}`);
      window = [];
      windowStart = now;
    }
    if (now - start >= seconds * 1000) {
      clearInterval(timer);
      done();
    }
  }, tickMs);
});
await new Promise((r) => setTimeout(r, 500));
console.log(`all: sent=${sent} ${summary(all)}`);
for (const { sender, receiver } of pairs) {
  sender.close();
  receiver.close();
}
