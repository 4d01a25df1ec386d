/**
 * Shared pieces of the chaos tests (kill -9, full disk, unwritable spool, held locks, SIGTERM):
 * Level 2 peers that stream acked messages and log every frame they get back, `/readyz` as a
 * value to poll, a small tmpfs to fill, a TCP proxy in front of the database server, and the
 * checks every such test ends with (acked = recorded once, refused = nowhere, no seq twice).
 *
 * Nothing here asserts on time: waits poll a condition, bounded in count and time, and give up
 * with the last value they saw.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  rmdirSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { serveCli, type CliRun } from './cli.js';
import { TestClient, type Frame } from './client.js';
import { ADMIN_URL, createDatabase, databaseUrl, testDatabaseName, type TestBackend } from './db.js';
import { lockMessages, type Lock } from './lock-messages.js';
import { joinExistingL2, newRoomL2 } from './level2.js';
import { readDatabase, type TestServer } from './server.js';
import { TcpProxy } from './tcp-proxy.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `probe` until `ok(value)` holds and returns that value; gives up after `attempts` tries
 * with the last value in the error, so that a failure says what the server answered instead.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T> | T,
  ok: (value: T) => boolean,
  attempts = 500,
  intervalMs = 20,
): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < attempts; i++) {
    last = await probe();
    if (ok(last)) return last;
    await sleep(intervalMs);
  }
  throw new Error(`gave up waiting for ${what}; last seen: ${JSON.stringify(last)}`);
}

// ---------------------------------------------------------------------------------------------
// /readyz

export interface ReadyzBody {
  status?: string;
  database?: string;
  records?: { pending?: number; spooled?: number; behind?: unknown; writes?: string };
  [key: string]: unknown;
}

/** An answer of /readyz, or `refused` when no HTTP answer came (port closed, connection reset). */
export type ReadyzAnswer = { status: number; body: ReadyzBody } | { refused: string };

export async function readyz(port: number): Promise<ReadyzAnswer> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let body: ReadyzBody;
    try {
      body = JSON.parse(text) as ReadyzBody;
    } catch {
      body = { unparsed: text };
    }
    return { status: res.status, body };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { refused: e.cause?.code ?? e.cause?.message ?? e.message };
  }
}

/** `records.writes` of an answer (undefined when refused or absent). */
export function writesOf(answer: ReadyzAnswer): string | undefined {
  return 'status' in answer ? answer.body.records?.writes : undefined;
}

export function isReadyzStatus(answer: ReadyzAnswer, status: number, writes?: string): boolean {
  return (
    'status' in answer && answer.status === status && (writes === undefined || writesOf(answer) === writes)
  );
}

/** Polls /readyz until `ok`; `beforeEach` runs before every probe (e.g. keeping a disk full). */
export function waitForReadyz(
  port: number,
  what: string,
  ok: (answer: ReadyzAnswer) => boolean,
  options: { attempts?: number; intervalMs?: number; beforeEach?: () => void } = {},
): Promise<ReadyzAnswer> {
  return pollUntil(
    `/readyz: ${what}`,
    () => {
      options.beforeEach?.();
      return readyz(port);
    },
    ok,
    options.attempts ?? 500,
    options.intervalMs ?? 20,
  );
}

/**
 * An HTTP request to /readyz on a connection opened now, whose headers are completed later by
 * `finish()`: lets a test ask a server that has already stopped listening by then. Resolves with
 * the answer, or `refused` when the connection ended without one.
 */
export async function readyzOnOpenConnection(port: number): Promise<{ finish(): Promise<ReadyzAnswer> }> {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  let ended: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (ended = resolve));
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    data += chunk;
    if (/\r\n\r\n/.test(data)) {
      const m = /content-length: (\d+)/i.exec(data);
      const bodyAt = data.indexOf('\r\n\r\n') + 4;
      if (m && Buffer.byteLength(data.slice(bodyAt)) >= Number(m[1])) ended?.();
    }
  });
  socket.on('error', () => ended?.());
  socket.on('close', () => ended?.());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  return {
    async finish() {
      if (!socket.destroyed) socket.write('Connection: close\r\n\r\n');
      const bound = setTimeout(() => socket.destroy(), 15_000);
      await done;
      clearTimeout(bound);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (!m) return { refused: data ? `no HTTP answer: ${data.slice(0, 80)}` : 'closed without an answer' };
      const body = data.slice(data.indexOf('\r\n\r\n') + 4);
      let parsed: ReadyzBody;
      try {
        parsed = JSON.parse(body) as ReadyzBody;
      } catch {
        parsed = { unparsed: body };
      }
      return { status: Number(m[1]), body: parsed };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Level 2 peers streaming acked messages

/** A seq as one client saw it: from an envelope (its data) or an ack (the body it sent). */
export interface Seen {
  seq: number;
  /** The message's data as JSON text (what the record's message_content holds). */
  content: string;
  kind: 'envelope' | 'ack';
  /** Which connection of the peer saw it (1 = the first). */
  conn: number;
}

const PAD = 'p'.repeat(64);

/**
 * One Level 2 device in a room that sends messages with a unique `ack_id` and a unique body, and
 * logs every ack, error and envelope it receives, across reconnections.
 */
export class AckedPeer {
  /** ack_id → the body's JSON text, as the record must hold it (the server takes ack_id out). */
  readonly sent = new Map<string, string>();
  /** ack_id → seq. */
  readonly acks = new Map<string, number>();
  /** Acks that came a second time for the same ack_id. */
  duplicateAcks = 0;
  /** ack_id → the error frame that answered it. */
  readonly errors = new Map<string, Frame>();
  /** Errors without ack_id. */
  readonly otherErrors: Frame[] = [];
  readonly seen: Seen[] = [];
  /** Highest seq seen: envelopes, acks, room replies. */
  maxSeq = 0;
  /** Connections so far (attach() counts them). */
  connections = 0;
  client: TestClient | undefined;
  /** The room reply of the current connection. */
  reply: Frame | undefined;
  pongs = 0;
  /** Stop sending once this many messages have been sent in all. */
  limit = Number.POSITIVE_INFINITY;
  private n = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly tag: string,
    readonly deviceId: string,
    readonly identity: string,
    public roomId = '',
  ) {}

  /** Takes over a joined client: logs what it has received so far, then every frame. */
  attach(client: TestClient): void {
    this.client = client;
    const conn = ++this.connections;
    for (const text of client.received) this.onFrame(text, conn);
    client.ws.on('message', (data: Buffer) => this.onFrame(data.toString('utf8'), conn));
  }

  get isOpen(): boolean {
    return this.client?.ws.readyState === WebSocket.OPEN;
  }

  private onFrame(text: string, conn: number): void {
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'room':
        this.reply = frame;
        if (typeof frame.seq === 'number') this.maxSeq = Math.max(this.maxSeq, frame.seq);
        break;
      case 'message': {
        const seq = frame.seq as number;
        this.seen.push({ seq, content: JSON.stringify(frame.data), kind: 'envelope', conn });
        this.maxSeq = Math.max(this.maxSeq, seq);
        break;
      }
      case 'ack': {
        const id = String(frame.ack_id);
        const seq = frame.seq as number;
        if (this.acks.has(id)) this.duplicateAcks++;
        this.acks.set(id, seq);
        this.seen.push({ seq, content: this.sent.get(id) ?? `unknown ack_id ${id}`, kind: 'ack', conn });
        this.maxSeq = Math.max(this.maxSeq, seq);
        break;
      }
      case 'error':
        if ('ack_id' in frame) this.errors.set(String(frame.ack_id), frame);
        else this.otherErrors.push(frame);
        break;
      case 'pong':
        this.pongs++;
        break;
    }
  }

  /** Sends one acked message if the socket is open and the limit allows; returns its ack_id. */
  sendOne(): string | undefined {
    if (!this.isOpen || this.sent.size >= this.limit) return undefined;
    const n = ++this.n;
    const id = `${this.tag}-${n}`;
    const body = { c: this.tag, n, pad: PAD };
    this.sent.set(id, JSON.stringify(body));
    this.client!.send(JSON.stringify({ ...body, ack_id: id }));
    return id;
  }

  /** Sends one message every `everyMs` until stop() (skips while the socket is not open). */
  stream(everyMs: number): void {
    this.stop();
    this.timer = setInterval(() => this.sendOne(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Messages sent so far (the last ack_id number). */
  get sentCount(): number {
    return this.n;
  }

  /** Errors `unavailable` that answered a message of this peer. */
  get unavailable(): Frame[] {
    return [...this.errors.values()].filter((e) => e.code === 'unavailable');
  }

  /** ack_ids with neither an ack nor an error yet. */
  outstanding(): string[] {
    return [...this.sent.keys()].filter((id) => !this.acks.has(id) && !this.errors.has(id));
  }

  /** Acks of messages numbered above `afterN` (sent after that point). */
  acksAfter(afterN: number): number {
    let count = 0;
    for (const id of this.acks.keys()) if (Number(id.slice(id.lastIndexOf('-') + 1)) > afterN) count++;
    return count;
  }

  /** Contents of the envelopes this peer received. */
  deliveredContents(): Set<string> {
    return new Set(this.seen.filter((s) => s.kind === 'envelope').map((s) => s.content));
  }

  /** A Level 2 resume hello for its room after its highest seq; attaches the new client if it got a room. */
  async resume(url: string): Promise<{ client: TestClient; reply: Frame; lastSeq: number }> {
    const lastSeq = this.maxSeq;
    const { client, reply } = await TestClient.join(url, {
      device_id: this.deviceId,
      identity: this.identity,
      protocol: 2,
      resume: { room_id: this.roomId, last_seq: lastSeq },
    });
    if (reply.type === 'room') this.attach(client);
    return { client, reply, lastSeq };
  }

  /** Sends a ping and waits for its pong (every frame sent before it has been handled then). */
  async ping(): Promise<void> {
    const before = this.pongs;
    this.client!.send({ type: 'ping' });
    await pollUntil(
      `${this.tag}: pong`,
      () => this.pongs,
      (p) => p > before,
      1000,
      10,
    );
  }

  async close(): Promise<void> {
    this.stop();
    await this.client?.close();
  }
}

/** `pairs` rooms of two Level 2 peers (a creates the room, b joins it). */
export async function openPairs(url: string, pairs: number, prefix: string): Promise<AckedPeer[]> {
  const peers: AckedPeer[] = [];
  for (let i = 0; i < pairs; i++) {
    const a = new AckedPeer(`${prefix}${i}a`, `${prefix}-${i}-a`, `A${i}`);
    const created = await newRoomL2(url, a.deviceId, a.identity);
    a.roomId = created.roomId;
    a.attach(created.client);
    const b = new AckedPeer(`${prefix}${i}b`, `${prefix}-${i}-b`, `B${i}`, created.roomId);
    b.attach((await joinExistingL2(url, b.deviceId, b.identity, created.roomId)).client);
    peers.push(a, b);
  }
  return peers;
}

/** The other peer of `peer`'s room. */
export function partnerOf(peers: readonly AckedPeer[], peer: AckedPeer): AckedPeer {
  const other = peers.find((p) => p !== peer && p.roomId === peer.roomId);
  assert.ok(other, `no partner for ${peer.tag}`);
  return other;
}

/**
 * Every error a peer got answers one of its messages with `unavailable`, and that message was
 * neither acked nor delivered to the other member.
 */
export function assertUnavailableAnswers(peers: readonly AckedPeer[]): void {
  const problems: string[] = [];
  for (const p of peers) {
    const delivered = partnerOf(peers, p).deliveredContents();
    for (const [id, e] of p.errors) {
      if (e.type !== 'error' || e.code !== 'unavailable' || typeof e.message !== 'string')
        problems.push(`${p.tag}: ${JSON.stringify(e)}`);
      if (!p.sent.has(id)) problems.push(`${p.tag}: error for an ack_id it never sent: ${JSON.stringify(e)}`);
      else if (delivered.has(p.sent.get(id)!))
        problems.push(`${id}: answered ${String(e.code)} and delivered`);
      if (p.acks.has(id)) problems.push(`${id}: answered ${String(e.code)} and acked`);
    }
  }
  assertNone(problems, 'errors that are not a clean "unavailable"');
}

/**
 * A snapshot, not a wait: of the messages each peer sent after `marks[i]` (its sentCount when the
 * server was seen to stop taking messages), none has been acked or delivered so far.
 */
export function assertNothingTakenSince(peers: readonly AckedPeer[], marks: readonly number[]): void {
  const problems: string[] = [];
  peers.forEach((p, i) => {
    const mark = marks[i]!;
    const delivered = partnerOf(peers, p).deliveredContents();
    for (const [id, body] of p.sent) {
      const n = Number(id.slice(id.lastIndexOf('-') + 1));
      if (n <= mark) continue;
      if (p.acks.has(id))
        problems.push(`${id}: acked (seq ${p.acks.get(id)}) while the server took no messages`);
      if (delivered.has(body)) problems.push(`${id}: delivered while the server took no messages`);
    }
  });
  assertNone(problems, 'messages taken while the server should take none');
}

/** Waits until every message sent has an ack or an error; returns what stays unanswered. */
export async function waitForAnswers(peers: readonly AckedPeer[], attempts = 750): Promise<string[]> {
  try {
    await pollUntil(
      'an ack or an error for every message sent',
      () => peers.flatMap((p) => p.outstanding()).length,
      (n) => n === 0,
      attempts,
      20,
    );
  } catch {
    // Reported by the caller with the ids.
  }
  return peers.flatMap((p) => p.outstanding());
}

/** Waits until each peer has at least `n` acks for messages sent after `marks[i]`. */
export function waitForNewAcks(peers: readonly AckedPeer[], marks: number[], n: number, what: string) {
  return pollUntil(
    what,
    () => peers.map((p, i) => p.acksAfter(marks[i]!)),
    (counts) => counts.every((c) => c >= n),
    750,
    20,
  );
}

/** Fails with the count and the first few of `problems` when there are any. */
export function assertNone(problems: readonly string[], what: string): void {
  if (problems.length === 0) return;
  assert.fail(`${problems.length} ${what}:\n  ${problems.slice(0, 8).join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------
// The record

export interface MessageRow {
  room_id: string;
  seq: number;
  message_content: string;
}

export async function recordedMessages(databaseUrl: string): Promise<MessageRow[]> {
  const rows = await readDatabase<MessageRow>(
    databaseUrl,
    'select room_id, seq, message_content from messages order by room_id, seq',
  );
  return rows.map((r) => ({ room_id: r.room_id, seq: Number(r.seq), message_content: r.message_content }));
}

/** Every acked message is in the record exactly once, in its peer's room, with its ack's seq and body. */
export function assertAckedRecordedOnce(peers: readonly AckedPeer[], rows: readonly MessageRow[]): void {
  const byContent = new Map<string, MessageRow[]>();
  for (const r of rows) {
    const list = byContent.get(r.message_content) ?? [];
    list.push(r);
    byContent.set(r.message_content, list);
  }
  const problems: string[] = [];
  for (const p of peers) {
    if (p.duplicateAcks) problems.push(`${p.tag}: ${p.duplicateAcks} ack_ids acked twice`);
    for (const [id, seq] of p.acks) {
      const body = p.sent.get(id);
      if (body === undefined) {
        problems.push(`${p.tag}: ack for an ack_id never sent: ${id}`);
        continue;
      }
      const found = byContent.get(body) ?? [];
      if (found.length !== 1) problems.push(`${id} (acked seq ${seq}) recorded ${found.length} times`);
      else if (found[0]!.seq !== seq || found[0]!.room_id !== p.roomId)
        problems.push(
          `${id}: acked as ${p.roomId}#${seq}, recorded as ${found[0]!.room_id}#${found[0]!.seq}`,
        );
    }
  }
  assertNone(problems, 'acked messages not recorded exactly once');
}

/** No message answered with an error is in the record, or was delivered to anyone. */
export function assertRefusedNowhere(peers: readonly AckedPeer[], rows: readonly MessageRow[]): void {
  const recorded = new Set(rows.map((r) => r.message_content));
  const delivered = new Set<string>();
  for (const p of peers) for (const c of p.deliveredContents()) delivered.add(c);
  const problems: string[] = [];
  for (const p of peers) {
    for (const [id, error] of p.errors) {
      const body = p.sent.get(id);
      if (body === undefined) {
        problems.push(`${p.tag}: error for an ack_id never sent: ${JSON.stringify(error)}`);
        continue;
      }
      if (p.acks.has(id))
        problems.push(`${id}: answered ${String(error.code)} and acked (seq ${p.acks.get(id)})`);
      if (recorded.has(body)) problems.push(`${id}: answered ${String(error.code)} but recorded`);
      if (delivered.has(body)) problems.push(`${id}: answered ${String(error.code)} but delivered`);
    }
  }
  assertNone(problems, 'refused messages went somewhere');
}

/**
 * In each room, no seq was seen with two different contents: by any peer (envelopes and acks, on
 * any connection) or in the record. Also: seqs in the record are unique per room.
 */
export function assertNoSeqTwice(peers: readonly AckedPeer[], rows: readonly MessageRow[]): void {
  const contents = new Map<string, Map<number, Set<string>>>();
  const add = (room: string, seq: number, content: string) => {
    let room_ = contents.get(room);
    if (!room_) contents.set(room, (room_ = new Map()));
    let set = room_.get(seq);
    if (!set) room_.set(seq, (set = new Set()));
    set.add(content);
  };
  const recordedKeys = new Set<string>();
  const duplicateRows: string[] = [];
  for (const r of rows) {
    const key = `${r.room_id}#${r.seq}`;
    if (recordedKeys.has(key)) duplicateRows.push(key);
    recordedKeys.add(key);
    add(r.room_id, r.seq, r.message_content);
  }
  assertNone(duplicateRows, 'seqs recorded twice in a room');
  for (const p of peers) for (const s of p.seen) add(p.roomId, s.seq, s.content);
  const twice: string[] = [];
  for (const [room, seqs] of contents)
    for (const [seq, set] of seqs) if (set.size > 1) twice.push(`${room}#${seq}: ${[...set].join(' | ')}`);
  assertNone(twice, 'seqs were seen with two different contents');
}

// ---------------------------------------------------------------------------------------------
// Databases

/** A fresh database for `dir` on `backend`, reached through a TCP proxy the test can cut. */
export async function proxiedDatabase(
  dir: string,
  backend: Exclude<TestBackend, 'sqlite'>,
): Promise<{ proxy: TcpProxy; url: string; directUrl: string }> {
  const name = testDatabaseName(dir);
  const directUrl = await createDatabase(backend, name);
  const target = new URL(ADMIN_URL[backend]);
  const proxy = await TcpProxy.start(
    target.hostname,
    Number(target.port || (backend === 'mysql' ? 3306 : 5432)),
  );
  return { proxy, url: databaseUrl(backend, name, proxy.port), directUrl };
}

/** lockMessages() for a database given by its URL (a server run through the CLI). */
export function lockMessagesAt(url: string): Promise<Lock> {
  const backend: TestBackend = url.startsWith('sqlite:')
    ? 'sqlite'
    : url.startsWith('mysql:')
      ? 'mysql'
      : 'postgres';
  const stand = { backend, databaseUrl: url, dbPath: url.slice('sqlite:'.length) };
  return lockMessages(stand as TestServer);
}

// ---------------------------------------------------------------------------------------------
// CLI runs

/** `serve` of the real CLI (serveCli), under the name these tests use. */
export const startCli = serveCli;

/**
 * The flags of a CLI server on `databaseUrl` with its spool in `dir`/spool, listening on
 * 127.0.0.1, without rate limits (every message sent must be taken) or status lines.
 */
export function serveArgs(databaseUrl: string, dir: string, extra: string[] = []): string[] {
  return [
    '--host',
    '127.0.0.1',
    '--database-url',
    databaseUrl,
    '--spool-dir',
    join(dir, 'spool'),
    '--rate-limit-per-second',
    '1000000',
    '--rate-limit-burst',
    '10000000',
    '--status-interval-ms',
    '0',
    ...extra,
  ];
}

/** The JSON log lines of a CLI run so far. */
export function logEntries(run: CliRun): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of run.stdout) {
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  }
  return out;
}

/** Sends `signal` (unless the process has ended) and waits for its exit. */
export async function signalAndWait(
  run: CliRun,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill(signal);
  return run.exited;
}

/** For after(): kills a run that is still going. */
export function killIfRunning(run: CliRun | undefined): void {
  if (run && run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGKILL');
}

// ---------------------------------------------------------------------------------------------
// A small disk (tmpfs) to fill

const TMPFS_MAGIC = 0x01021994;
const MAX_FILLED_BYTES = 64 * 1024 * 1024;

export function mountTmpfs(dir: string, options: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
}

/** Lazy unmount; never throws (for after()). */
export function unmount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch {
    // not mounted
  }
}

let refusal: string | undefined | null = null;

/** Why this machine refuses to mount a tmpfs (undefined: it mounts). Probed once. */
export function tmpfsRefusal(): string | undefined {
  if (refusal !== null) return refusal;
  const dir = mkdtempSync(join(tmpdir(), 'rm-tmpfs-probe-'));
  try {
    mountTmpfs(dir, 'size=1m');
    unmount(dir);
    refusal = undefined;
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    refusal = (e.stderr?.toString().trim() || e.message).split('\n')[0];
  } finally {
    try {
      rmdirSync(dir);
    } catch {
      // left busy by a lazy unmount: harmless
    }
  }
  return refusal;
}

/**
 * For describe(): skip (with the reason) when mounting a tmpfs is refused, except with CI=true,
 * where the test runs and its own mount fails it.
 */
export function tmpfsSkip(): string | false {
  const why = tmpfsRefusal();
  if (!why || process.env.CI === 'true') return false;
  return `mounting a tmpfs was refused here (${why}); with CI=true this fails instead`;
}

/** A file that fills a small tmpfs to its last byte, and frees it again. */
export class DiskFiller {
  bytes = 0;

  constructor(
    readonly mountDir: string,
    readonly path = join(mountDir, 'filler'),
  ) {}

  /** Appends until ENOSPC (tops up if space was freed since); returns the bytes added. */
  fill(): number {
    const fs = statfsSync(this.mountDir);
    // Never fill a disk that is not the small tmpfs this test mounted.
    if (fs.type !== TMPFS_MAGIC || fs.blocks * fs.bsize > MAX_FILLED_BYTES)
      throw new Error(
        `${this.mountDir} is not a small tmpfs (type ${fs.type}, ${fs.blocks * fs.bsize} bytes)`,
      );
    let added = 0;
    const fd = openSync(this.path, 'a');
    try {
      for (const size of [1 << 20, 1 << 16, 4096, 512, 1]) {
        const chunk = Buffer.alloc(size, 0x78);
        for (let i = 0; i < 2048; i++) {
          let n: number;
          try {
            n = writeSync(fd, chunk);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw err;
          }
          added += n;
          if (n < size) break;
        }
      }
    } finally {
      closeSync(fd);
    }
    this.bytes += added;
    return added;
  }

  free(): void {
    rmSync(this.path, { force: true });
    this.bytes = 0;
  }
}
