/**
 * A cluster for the cluster tests: a PRIVATE redis-server child process on a free port (so that
 * a test may kill -9 it and start it again, empty, on the same port, without disturbing any
 * other test), and N room-manager processes started from the real CLI on free ports, all on one
 * fresh MySQL/MariaDB or PostgreSQL test database (TEST_DATABASE=mysql|postgres) and the same
 * `--redis-url`, each with its own spool folder, with `--node-ttl-ms` short enough (3 s) that a
 * killed node is declared dead within a test.
 *
 * Cluster mode needs a shared database: under TEST_DATABASE=sqlite the cluster tests are skipped
 * (`clusterOnly`). Without a redis-server binary they are skipped with a notice, except with
 * CI=true, where starting the cluster fails (as an unreachable database does).
 *
 * Nothing here asserts on time: waits poll a condition (pollUntil), bounded only so that a
 * broken server does not hang the suite.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { serveCli, type CliRun } from './cli.js';
import { logEntries, pollUntil, serveArgs } from './chaos.js';
import { TestClient, type Frame } from './client.js';
import { TEST_DATABASE } from './db.js';
import type { Envelope } from './level2.js';
import { readDatabase, removeDir, tempDir, testDatabaseUrl } from './server.js';

/** The redis-server binary (TEST_REDIS_SERVER overrides the one on PATH). */
export const REDIS_SERVER = process.env.TEST_REDIS_SERVER ?? 'redis-server';

/** Why redis-server cannot be run here, or undefined when it can. */
export function redisServerMissing(): string | undefined {
  const probe = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
  if (probe.error) return `${REDIS_SERVER}: ${probe.error.message}`;
  if (probe.status !== 0) return `${REDIS_SERVER} --version exited ${String(probe.status)}`;
  return undefined;
}

function clusterSkip(): string | false {
  if (TEST_DATABASE === 'sqlite')
    return 'cluster mode needs a shared MySQL/MariaDB or PostgreSQL database: run with TEST_DATABASE=mysql or postgres';
  const missing = redisServerMissing();
  if (missing && process.env.CI !== 'true')
    return `redis-server cannot be run here (${missing}; apt-get install redis-server); with CI=true this fails instead`;
  return false;
}

/** For describe(): the cluster tests run on MySQL/MariaDB and PostgreSQL, with redis-server. */
export const clusterOnly = { skip: clusterSkip() };

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a Redis answers PING on the port (false when refused, or no answer within a second). */
export function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean) => {
      clearTimeout(bound);
      socket.destroy();
      resolve(ok);
    };
    const bound = setTimeout(() => done(false), 1000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/**
 * A redis-server of the test's own, without persistence (`--save '' --appendonly no`): killed,
 * it comes back empty, as a Redis without persistence does.
 */
export class PrivateRedis {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Its output (stdout and stderr), for error messages. */
  readonly output: string[] = [];

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  /** Starts one on a free port (another if that port was taken meanwhile). */
  static async start(dir: string): Promise<PrivateRedis> {
    mkdirSync(dir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      const redis = new PrivateRedis(await freePort(), dir);
      try {
        await redis.start();
        return redis;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts it (again) on its port, empty; resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`redis on ${this.port} is running already`);
    const proc = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let gone: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      proc.once('error', (err) => {
        gone = err.message;
        resolve();
      });
      proc.once('close', (code, signal) => {
        gone ??= `exited (${String(code ?? signal)})`;
        resolve();
      });
    });
    const keep = (chunk: Buffer) => {
      this.output.push(chunk.toString('utf8'));
      if (this.output.length > 200) this.output.shift();
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const state = await pollUntil(
      `redis-server on port ${this.port}`,
      async () => (gone !== undefined ? 'gone' : (await redisAnswers(this.port)) ? 'up' : 'starting'),
      (s) => s !== 'starting',
      500,
      20,
    );
    if (state === 'gone')
      throw new Error(`redis-server on port ${this.port}: ${gone}; ${this.output.join('').slice(-1000)}`);
  }

  /** kill -9, and waits until the process is gone. */
  async kill9(): Promise<void> {
    if (this.running) this.proc!.kill('SIGKILL');
    await this.exited;
  }
}

export interface ClusterOptions {
  /** Nodes (default 3). */
  nodes?: number;
  /** --node-ttl-ms (default 3000). */
  nodeTtlMs?: number;
  /** More flags for every node (e.g. ['--max-room-members', '3']). */
  extra?: string[];
}

type Node = CliRun & { port: number };

/** N room-manager nodes on one database and one private Redis. */
export class Cluster {
  private readonly nodes: (Node | undefined)[];

  private constructor(
    readonly dir: string,
    readonly databaseUrl: string,
    readonly redis: PrivateRedis,
    private readonly options: Required<ClusterOptions>,
  ) {
    this.nodes = Array.from({ length: options.nodes }, () => undefined);
  }

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const missing = redisServerMissing();
    if (missing) throw new Error(`the cluster tests need redis-server: ${missing}`);
    const dir = tempDir('rm-cluster-');
    const databaseUrl = await testDatabaseUrl(dir);
    if (databaseUrl.startsWith('sqlite:')) throw new Error('a cluster needs TEST_DATABASE=mysql or postgres');
    const redis = await PrivateRedis.start(join(dir, 'redis'));
    const cluster = new Cluster(dir, databaseUrl, redis, {
      nodes: options.nodes ?? 3,
      nodeTtlMs: options.nodeTtlMs ?? 3000,
      extra: options.extra ?? [],
    });
    try {
      // All at once, as a deployment starts them: the fresh database's migrations are taken
      // under the migrator's lock by whichever node comes first.
      await Promise.all(cluster.nodes.map((_, i) => cluster.startNode(i)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** How many nodes the cluster has (running or not). */
  get size(): number {
    return this.nodes.length;
  }

  get redisUrl(): string {
    return this.redis.url;
  }

  /** The flags node `i` is started with. */
  args(i: number): string[] {
    return serveArgs(this.databaseUrl, join(this.dir, `node${i}`), [
      '--redis-url',
      this.redis.url,
      '--node-ttl-ms',
      String(this.options.nodeTtlMs),
      '--drain-ms',
      '0',
      ...this.options.extra,
    ]);
  }

  private node(i: number): Node {
    const node = this.nodes[i];
    if (!node) throw new Error(`node ${i} is not running`);
    return node;
  }

  /** WebSocket URL of node `i` (its port may change across a restart). */
  url(i: number): string {
    return `ws://127.0.0.1:${this.port(i)}`;
  }

  port(i: number): number {
    return this.node(i).port;
  }

  /** Node `i`'s CLI run (process, log lines). */
  run(i: number): CliRun {
    return this.node(i);
  }

  /** Node `i`'s JSON log lines so far. */
  logs(i: number): Record<string, unknown>[] {
    return logEntries(this.node(i));
  }

  isRunning(i: number): boolean {
    const node = this.nodes[i];
    return node !== undefined && node.proc.exitCode === null && node.proc.signalCode === null;
  }

  private async startNode(i: number): Promise<void> {
    if (this.isRunning(i)) throw new Error(`node ${i} is running already`);
    const node = await serveCli(this.args(i));
    if (process.env.TEST_CLUSTER_LOGS)
      node.lines.on('line', (line) => process.stderr.write(`[node ${i}] ${line}\n`));
    this.nodes[i] = node;
  }

  /** kill -9 node `i`, and waits until its process is gone. */
  async kill9(i: number): Promise<void> {
    const node = this.node(i);
    if (this.isRunning(i)) node.proc.kill('SIGKILL');
    await node.exited;
  }

  /** Starts node `i` again (after kill9 or a stop), on its spool folder, on a new free port. */
  async restart(i: number): Promise<void> {
    const node = this.nodes[i];
    if (node && this.isRunning(i)) throw new Error(`node ${i} is running: kill9() it first`);
    await this.startNode(i);
  }

  /** SIGTERM to node `i` (a clean stop) and its exit. */
  async stopNode(i: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const node = this.node(i);
    if (this.isRunning(i)) node.proc.kill('SIGTERM');
    // Bounded, so that a stop that hangs cannot hang the suite: then it is killed.
    const bound = setTimeout(() => {
      if (this.isRunning(i)) node.proc.kill('SIGKILL');
    }, 30_000);
    const exit = await node.exited;
    clearTimeout(bound);
    return exit;
  }

  /** kill -9 the cluster's Redis. */
  killRedis(): Promise<void> {
    return this.redis.kill9();
  }

  /** Starts the cluster's Redis again, empty, on the same port. */
  startRedis(): Promise<void> {
    return this.redis.start();
  }

  /** Rows of the shared database (`?` placeholders). */
  rows<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]> {
    return readDatabase<T>(this.databaseUrl, sql, ...params);
  }

  /** Stops every node (SIGTERM), then Redis, and removes the folders. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map((node, i) => (node && this.isRunning(i) ? this.stopNode(i) : undefined)),
    );
    await this.redis.kill9();
    removeDir(this.dir);
  }
}

/**
 * One cluster for the enclosing describe(): started in before(), stopped in after(). Returns a
 * stand-in that forwards to it once it is up, so tests write `cluster.url(1)`.
 */
export function useCluster(options: ClusterOptions = {}): Cluster {
  let current: Cluster | undefined;
  before(async () => {
    current = await Cluster.start(options);
  });
  after(async () => {
    await current?.stop();
  });
  return new Proxy({} as Cluster, {
    get(_target, key) {
      if (!current) throw new Error('useCluster(): the cluster is started in before()');
      const value: unknown = Reflect.get(current, key);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Frames

/** A frame's parsed JSON, or undefined for text that is not a JSON object. */
export function parseFrame(text: string): Frame | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Frame)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Every frame a client has received so far (from `from` on), parsed. */
export function framesOf(client: TestClient, from = 0): Frame[] {
  return client.received.slice(from).flatMap((t): Frame[] => {
    const frame = parseFrame(t);
    return frame ? [frame] : [];
  });
}

/**
 * Waits until the client has received a frame (from index `from` of its received frames on)
 * that satisfies `match`, and returns it. Polls: bounded only so that a broken server does not
 * hang the test (long enough for a node TTL and a Redis reconnect).
 */
export function waitForFrame(
  client: TestClient,
  what: string,
  match: (frame: Frame) => boolean,
  from = 0,
): Promise<Frame> {
  return pollUntil(
    what,
    () => framesOf(client, from).find(match),
    (f) => f !== undefined,
    1500,
    20,
  ) as Promise<Frame>;
}

/** A presence event's matcher. */
export function presenceOf(type: 'member_joined' | 'member_left', roomId: string, deviceId: string) {
  return (f: Frame): boolean => f.type === type && f.room_id === roomId && f.device_id === deviceId;
}

/** Asks query_room until `ok` holds for the answer; returns that answer (other frames are skipped). */
export async function roomInfoUntil(
  client: TestClient,
  what: string,
  ok: (info: Frame) => boolean,
): Promise<Frame> {
  return pollUntil(
    what,
    async () => {
      const from = client.received.length;
      client.send({ type: 'query_room' });
      return waitForFrame(client, 'a room_info', (f) => f.type === 'room_info', from);
    },
    ok,
    500,
    40,
  );
}

/** Device ids of a room_info's `clients` or a room reply's `members`, sorted. */
export function deviceIds(list: unknown): string[] {
  return ((list ?? []) as { device_id: string }[]).map((m) => m.device_id).sort();
}

/** The envelopes (Level 2 room messages) a client has received so far, in arrival order, with their text. */
export function envelopesOf(client: TestClient): { frame: Envelope; text: string }[] {
  const out: { frame: Envelope; text: string }[] = [];
  for (const text of client.received) {
    const frame = parseFrame(text);
    if (frame?.type === 'message') out.push({ frame: frame as Envelope, text });
  }
  return out;
}

/** The acks a client has received so far: ack_id → seq (a second ack for an ack_id is kept as a list). */
export function acksOf(client: TestClient): Map<string, number[]> {
  const acks = new Map<string, number[]>();
  for (const frame of framesOf(client)) {
    if (frame.type !== 'ack') continue;
    const id = String(frame.ack_id);
    acks.set(id, [...(acks.get(id) ?? []), frame.seq as number]);
  }
  return acks;
}
