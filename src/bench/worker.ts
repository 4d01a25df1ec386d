/**
 * A load-generator worker: a child process forked by the bench coordinator (run.ts). It opens
 * WebSocket clients against ws://127.0.0.1:PORT from the local addresses it is given
 * (127.0.0.x, so ~28k ephemeral ports per address), and runs the commands of ipc.ts one at a
 * time. Every loop is bounded by a count and a deadline; the worker exits when the coordinator
 * goes away.
 *
 * Latency is measured inside one process: every member of a room lives in the same worker, a
 * message carries its send time (performance.now() of this process) and its receivers subtract.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Histogram } from './histogram.js';
import type {
  CloseAllCommand,
  CloseAllResult,
  ConnectSpec,
  HoldCommand,
  HoldResult,
  JoinCommand,
  JoinResult,
  RoomsCommand,
  RoomsResult,
  TrafficCommand,
  TrafficResult,
  WorkerCommand,
  WorkerReady,
  WorkerReply,
} from './ipc.js';

/** The sender wakes up this often and sends what the schedule says is due. */
const TICK_MS = 5;
/** When the sender falls further behind than this, the backlog is dropped (counted as skipped). */
const MAX_LAG_MS = 100;
/** A socket with this much unsent data is not given more (counted as skipped). */
const MAX_BUFFERED_BYTES = 1 << 20;
/** Drain ends early once nothing has arrived for this long. */
const QUIET_MS = 500;
/** At most this many distinct error texts are reported per command. */
const MAX_ERRORS = 5;

/** Every socket this worker holds open. */
const open = new Set<WebSocket>();
/** Set while closeAll runs, so the closes it causes are not counted as unexpected. */
let closing = false;
/** Sockets the bench itself is closing. */
const closedByUs = new WeakSet<WebSocket>();
let unexpectedCloses = 0;

interface LiveRoom {
  id: string;
  members: WebSocket[];
}
/** Rooms opened by the last `rooms` command. */
let rooms: LiveRoom[] = [];

/** The measurement state of a running `traffic` command, read by the receive handler. */
interface Measure {
  windowStart: number;
  windowEnd: number;
  receivedInWindow: number;
  deliveredOfWindow: number;
  lastReceiveAt: number;
  latency: Histogram;
}
let measure: Measure | undefined;

// ---------------------------------------------------------------------------------------------
// Connections

class ErrorLog {
  readonly texts: string[] = [];
  add(err: unknown): void {
    const text = err instanceof Error ? err.message : String(err);
    if (this.texts.length < MAX_ERRORS && !this.texts.includes(text)) this.texts.push(text);
  }
}

interface Handshake {
  ws: WebSocket;
  roomId: string;
  status: string;
  /** Connect start → room reply, ms. */
  ms: number;
}

/** The URL of the n-th connection of a command: its node in a cluster (see ConnectSpec.nodeUrls). */
function urlOf(spec: ConnectSpec, n: number): string {
  const nodes = spec.nodeUrls;
  return nodes?.length ? nodes[n % nodes.length]! : spec.url;
}

/**
 * Connects, waits for the connection frame, sends the hello, waits for the room reply. The
 * returned socket is in `open` and delivers room messages to `onRoomMessage`.
 */
function handshake(
  url: string,
  localAddress: string,
  hello: Record<string, string>,
  timeoutMs: number,
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, {
      localAddress,
      perMessageDeflate: false,
      // The bench trusts the servers' UTF-8; validating it would only burn load-generator CPU.
      skipUTF8Validation: true,
      handshakeTimeout: timeoutMs,
    });
    let stage: 'connection' | 'room' = 'connection';
    const fail = (err: Error): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.on('error', () => undefined);
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no room reply within ${timeoutMs} ms`)), timeoutMs);
    const onError = (err: Error): void => fail(err);
    const onClose = (code: number): void => fail(new Error(`closed with ${code} during the handshake`));
    const onMessage = (data: Buffer): void => {
      let msg: { type?: unknown; room_id?: unknown; status?: unknown };
      try {
        msg = JSON.parse(data.toString('utf8')) as typeof msg;
      } catch {
        return fail(new Error('handshake frame is not JSON'));
      }
      if (stage === 'connection') {
        if (msg.type !== 'connection')
          return fail(new Error(`expected the connection frame, got ${msg.type}`));
        stage = 'room';
        ws.send(JSON.stringify(hello));
        return;
      }
      if (msg.type !== 'room')
        return fail(new Error(`hello answered with ${data.toString('utf8').slice(0, 120)}`));
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      ws.on('error', () => undefined); // a close event follows every error
      ws.on('message', onRoomMessage);
      ws.on('close', () => {
        open.delete(ws);
        if (!closing && !closedByUs.has(ws)) unexpectedCloses++;
      });
      open.add(ws);
      resolve({ ws, roomId: String(msg.room_id), status: String(msg.status), ms: performance.now() - t0 });
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
  });
}

/** Runs `fn(0..total-1)` with at most `concurrency` calls in flight. */
async function pool(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, lane));
}

/** Closes one socket with the close handshake; resolves when closed (terminated after `ms`). */
function closeAndWait(ws: WebSocket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(true);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve(false);
    }, ms);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    closedByUs.add(ws);
    ws.close(1000, 'bench done');
  });
}

// ---------------------------------------------------------------------------------------------
// Commands

async function hold(cmd: HoldCommand): Promise<HoldResult> {
  const t0 = performance.now();
  const deadline = t0 + cmd.timeoutMs;
  const hist = new Histogram();
  const statuses: Record<string, number> = {};
  const errors = new ErrorLog();
  let opened = 0;
  let failed = 0;
  await pool(cmd.count, cmd.concurrency, async (i) => {
    const left = deadline - performance.now();
    if (left <= 0) {
      failed++;
      return;
    }
    try {
      const addr = cmd.localAddresses[i % cmd.localAddresses.length]!;
      const h = await handshake(
        urlOf(cmd, i),
        addr,
        { device_id: `${cmd.devicePrefix}-${i}`, identity: 'bench-hold' },
        left,
      );
      opened++;
      statuses[h.status] = (statuses[h.status] ?? 0) + 1;
      hist.record(h.ms);
    } catch (err) {
      failed++;
      errors.add(err);
    }
  });
  return {
    opened,
    failed,
    statuses,
    elapsedMs: performance.now() - t0,
    handshake: hist.toData(),
    errors: errors.texts,
  };
}

async function openRooms(cmd: RoomsCommand): Promise<RoomsResult> {
  const deadline = performance.now() + cmd.timeoutMs;
  const errors = new ErrorLog();
  let failed = 0;
  let connections = 0;
  let addr = 0;
  const nextAddress = (): string => cmd.localAddresses[addr++ % cmd.localAddresses.length]!;
  const made: LiveRoom[] = [];
  await pool(cmd.rooms, cmd.concurrency, async (r) => {
    try {
      const left = (): number => Math.max(1, deadline - performance.now());
      const first = await handshake(
        urlOf(cmd, r),
        nextAddress(),
        { device_id: `${cmd.devicePrefix}-r${r}-m0`, identity: 'bench-member' },
        left(),
      );
      connections++;
      const room: LiveRoom = { id: first.roomId, members: [first.ws] };
      for (let m = 1; m < cmd.members; m++) {
        const h = await handshake(
          urlOf(cmd, r + m),
          nextAddress(),
          { device_id: `${cmd.devicePrefix}-r${r}-m${m}`, identity: 'bench-member', room_id: first.roomId },
          left(),
        );
        connections++;
        if (h.status !== 'joined_existing') throw new Error(`joining ${first.roomId} gave ${h.status}`);
        room.members.push(h.ws);
      }
      made.push(room);
    } catch (err) {
      failed++;
      errors.add(err);
    }
  });
  rooms = made;
  return { rooms: made.length, connections, failed, errors: errors.texts };
}

/** Receive side of `traffic`: every room message of every member comes here. */
function onRoomMessage(data: Buffer): void {
  const m = measure;
  if (!m) return;
  const now = performance.now();
  // Bench messages start with {"t":<send time>, — anything else (room_info…) is not counted.
  if (data.length < 7 || data[0] !== 0x7b || data[2] !== 0x74 || data[4] !== 0x3a) return;
  const comma = data.indexOf(0x2c, 5);
  const t = Number(data.toString('latin1', 5, comma));
  m.lastReceiveAt = now;
  if (now >= m.windowStart && now < m.windowEnd) m.receivedInWindow++;
  if (t >= m.windowStart && t < m.windowEnd) {
    m.deliveredOfWindow++;
    m.latency.record(now - t);
  }
}

async function traffic(cmd: TrafficCommand): Promise<TrafficResult> {
  const senders = rooms.flatMap((r) => r.members.slice(0, cmd.sendersPerRoom));
  const membersPerRoom = rooms[0]?.members.length ?? 0;
  const start = performance.now();
  const m: Measure = {
    windowStart: start + cmd.warmupMs,
    windowEnd: start + cmd.warmupMs + cmd.durationMs,
    receivedInWindow: 0,
    deliveredOfWindow: 0,
    lastReceiveAt: start,
    latency: new Histogram(),
  };
  measure = m;
  // {"t":…,"s":…,"pad":"…"} ≈ payloadBytes.
  const pad = 'x'.repeat(Math.max(0, cmd.payloadBytes - 40));
  let scheduled = 0;
  let sentInWindow = 0;
  let skippedInWindow = 0;
  let seq = 0;
  let cursor = 0;
  const maxBurst = Math.max(1, Math.ceil((cmd.rate * MAX_LAG_MS) / 1000));

  // Open-loop sender: at each tick, send what the schedule says is due by now.
  await new Promise<void>((resolve) => {
    if (senders.length === 0 || cmd.rate <= 0) {
      setTimeout(resolve, cmd.warmupMs + cmd.durationMs);
      return;
    }
    const timer = setInterval(() => {
      const now = performance.now();
      const inWindow = now >= m.windowStart;
      if (now >= m.windowEnd) {
        clearInterval(timer);
        return resolve();
      }
      let due = Math.floor(((now - start) * cmd.rate) / 1000) - scheduled;
      if (due > maxBurst) {
        if (inWindow) skippedInWindow += due - maxBurst;
        scheduled += due - maxBurst;
        due = maxBurst;
      }
      for (let i = 0; i < due; i++) {
        scheduled++;
        const ws = senders[cursor++ % senders.length]!;
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
          if (inWindow) skippedInWindow++;
          continue;
        }
        const t = performance.now();
        ws.send(`{"t":${t.toFixed(4)},"s":${seq++},"pad":"${pad}"}`);
        if (t >= m.windowStart && t < m.windowEnd) sentInWindow++;
      }
    }, TICK_MS);
  });

  // Drain: wait for what was sent in the window, bounded in time.
  const expected = sentInWindow * Math.max(0, membersPerRoom - 1);
  const drainEnd = performance.now() + cmd.drainMs;
  while (performance.now() < drainEnd) {
    if (m.deliveredOfWindow >= expected) break;
    if (performance.now() - m.lastReceiveAt > QUIET_MS) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  measure = undefined;
  return {
    sent: sentInWindow,
    skipped: skippedInWindow,
    receivedInWindow: m.receivedInWindow,
    expected,
    deliveredOfWindow: m.deliveredOfWindow,
    windowMs: m.windowEnd - m.windowStart,
    latency: m.latency.toData(),
  };
}

async function join(cmd: JoinCommand): Promise<JoinResult> {
  const start = performance.now();
  const windowStart = start + cmd.warmupMs;
  const stopAt = windowStart + cmd.durationMs;
  const hist = new Histogram();
  const errors = new ErrorLog();
  let completed = 0;
  let failed = 0;
  let n = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const i = n++;
      const addr = cmd.localAddresses[i % cmd.localAddresses.length]!;
      try {
        const h = await handshake(
          urlOf(cmd, i),
          addr,
          { device_id: `${cmd.devicePrefix}-${i}`, identity: 'bench-join' },
          10_000,
        );
        const done = performance.now();
        if (done >= windowStart && done < stopAt) {
          completed++;
          hist.record(h.ms);
        }
        await closeAndWait(h.ws, 5_000);
      } catch (err) {
        if (performance.now() >= windowStart) failed++;
        errors.add(err);
        await new Promise((r) => setTimeout(r, 10)); // do not spin on a refusing server
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency) }, lane));
  return { completed, failed, windowMs: cmd.durationMs, handshake: hist.toData(), errors: errors.texts };
}

async function closeAll(cmd: CloseAllCommand): Promise<CloseAllResult> {
  closing = true;
  measure = undefined;
  const sockets = [...open];
  const results = await Promise.all(sockets.map((ws) => closeAndWait(ws, cmd.timeoutMs)));
  open.clear();
  rooms = [];
  closing = false;
  const result = {
    closed: results.filter(Boolean).length,
    terminated: results.filter((r) => !r).length,
    unexpectedCloses,
  };
  unexpectedCloses = 0;
  return result;
}

function run(cmd: WorkerCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'hold':
      return hold(cmd);
    case 'rooms':
      return openRooms(cmd);
    case 'traffic':
      return traffic(cmd);
    case 'join':
      return join(cmd);
    case 'closeAll':
      return closeAll(cmd);
  }
}

// ---------------------------------------------------------------------------------------------
// IPC

if (!process.send) {
  console.error('worker.ts is forked by the bench coordinator (src/bench/run.ts); it is not run directly.');
  process.exit(2);
}
const send = (msg: WorkerReply | WorkerReady): void => {
  process.send?.(msg);
};
process.on('message', (cmd: WorkerCommand) => {
  run(cmd).then(
    (result) => send({ reqId: cmd.reqId, ok: true, result }),
    (err: unknown) =>
      send({
        reqId: cmd.reqId,
        ok: false,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      }),
  );
});
// The coordinator is gone (finished, crashed or interrupted): drop everything and leave.
process.on('disconnect', () => {
  for (const ws of open) ws.terminate();
  process.exit(0);
});
send({ ready: true, pid: process.pid });
