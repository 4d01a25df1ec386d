/**
 * The bench's child processes: the servers under test (room-manager and the ceiling relay) and
 * the load-generator workers. Every child is registered so it can be killed whatever happens
 * (normal end, error, SIGINT).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from '../cli/node-flags.js';
import type { WorkerCommand, WorkerReady, WorkerReply } from './ipc.js';
import { freshDatabase } from './databases.js';

/** Every live child; `killAllChildren` empties it. */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Last resort (exit, SIGINT): SIGKILL whatever is still running. Synchronous. */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

// When run from TypeScript sources (tsx), the children run from sources too.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const EXT = FROM_SOURCE ? '.ts' : '.js';
const LOADER_ARGS = FROM_SOURCE ? ['--import', 'tsx'] : [];

/** Path of a module next to this one (or elsewhere under src|dist), in the form being run. */
function modulePath(relative: string): string {
  return fileURLToPath(new URL(`${relative}${EXT}`, import.meta.url));
}

// ---------------------------------------------------------------------------------------------
// Servers under test

/** A server the bench can measure. `databaseUrl` makes it a room-manager target. */
export interface TargetSpec {
  name: string;
  description: string;
  kind: 'ceiling' | 'room-manager';
  /** For room-manager: the --database-url, given a fresh temporary directory. */
  databaseUrl?: (tmp: string) => string;
  /** Run before each start: gives a database server target a fresh, empty database. */
  prepare?: () => Promise<void>;
}

/** Every target the bench knows; --targets picks among them. */
export function knownTargets(urls: { mysql: string; postgres: string }): Record<string, TargetSpec> {
  return {
    ceiling: {
      name: 'ceiling',
      description: 'in-memory Level 1 relay written for the bench (src/bench/ceiling-relay.ts), no recording',
      kind: 'ceiling',
    },
    sqlite: {
      name: 'sqlite',
      description: 'room-manager on SQLite (a fresh temporary database file)',
      kind: 'room-manager',
      databaseUrl: (tmp) => `sqlite:${join(tmp, 'bench.db')}`,
    },
    // Run by default when their servers answer (see run.ts); the database in the URL is dropped
    // and created again before every server start.
    mysql: {
      name: 'mysql',
      description: 'room-manager on MariaDB/MySQL (a fresh database)',
      kind: 'room-manager',
      databaseUrl: () => urls.mysql,
      prepare: () => freshDatabase(urls.mysql),
    },
    postgres: {
      name: 'postgres',
      description: 'room-manager on PostgreSQL (a fresh database)',
      kind: 'room-manager',
      databaseUrl: () => urls.postgres,
      prepare: () => freshDatabase(urls.postgres),
    },
  };
}

/**
 * What the scenarios measure: one server process, or the nodes of a cluster taken together
 * (cluster.ts). CPU and memory are the sum over its processes.
 */
export interface ServerUnderTest {
  readonly spec: TargetSpec;
  /** The URL clients connect to (a cluster's first node). */
  readonly url: string;
  /** A cluster's node URLs: clients are spread over them (see ConnectSpec.nodeUrls). */
  readonly nodeUrls?: string[];
  /** Set once a process has exited (for a cluster: the first node that did). */
  readonly exitStatus: string | undefined;
  /**
   * Other processes on this machine the server relies on and whose CPU is worth showing beside
   * its own (Redis, the database server): they take their share of the same cores.
   */
  readonly services: LocalProcess[];
  rssKiB(): number;
  cpuSeconds(): number;
  /** GET / of the server (a cluster: of its first node). */
  status(): Promise<Record<string, unknown> | undefined>;
  waitIdle(maxMs: number): Promise<number>;
  logTail(): string;
}

/** A process of this machine the bench did not start (Redis, MariaDB), read through /proc. */
export interface LocalProcess {
  name: string;
  pid: number;
}

/** The first running process whose command name (/proc/<pid>/comm) is one of `names`. */
export function findLocalProcess(names: string[]): LocalProcess | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined; // not Linux
  }
  for (const pid of pids) {
    const comm = processName(Number(pid));
    if (comm && names.includes(comm)) return { name: comm, pid: Number(pid) };
  }
  return undefined;
}

/** The command name of process `pid` on this machine (/proc/<pid>/comm), if it runs. */
export function processName(pid: number): string | undefined {
  return readProc(pid, 'comm')?.trim();
}

/** CPU time (user + system) a process has used so far, seconds; NaN once it has exited. */
export function processCpuSeconds(pid: number): number {
  const stat = readProc(pid, 'stat');
  if (stat === undefined) return NaN;
  // Fields after the command name (which may contain spaces) — utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Open file descriptors of a process (sockets included), or NaN when it cannot be read. */
export function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** A warning or error the server logged, with how often it came (the same text counted once). */
export interface LogProblem {
  level: 'warn' | 'error' | 'fatal' | 'stderr';
  msg: string;
  count: number;
  /** When it was first and last seen (the bench's clock, ISO): which phase of a scenario it was in. */
  first: string;
  last: string;
}

/** Most distinct problem texts kept per server (their count goes on beyond). */
const MAX_PROBLEMS = 20;

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux we meet). */
const CLK_TCK = 100;

export class ServerProcess implements ServerUnderTest {
  /** Exit code or signal once the process has exited. */
  exitStatus: string | undefined;
  services: LocalProcess[] = [];

  private constructor(
    readonly spec: TargetSpec,
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly tmp: string,
    /** The last lines of the server's output (kept up to date by start()'s readers). */
    private readonly tail: string[],
    /** Warnings and errors in its log so far (pino levels ≥ 40, and any line on stderr). */
    private readonly problems: Map<string, LogProblem>,
  ) {
    child.once('exit', (code, signal) => (this.exitStatus = String(code ?? signal)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Always loopback. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get command(): string {
    return this.child.spawnargs.join(' ');
  }

  /**
   * Starts the target on a free loopback port; resolves once it logged "listening".
   * `extraArgs(tmp)`: more room-manager flags, given the process's own temporary directory (a
   * cluster node's --redis-url and --spool-dir).
   */
  static async start(spec: TargetSpec, extraArgs?: (tmp: string) => string[]): Promise<ServerProcess> {
    await spec.prepare?.();
    const tmp = mkdtempSync(join(tmpdir(), `room-manager-bench-${spec.name}-`));
    const args =
      spec.kind === 'ceiling'
        ? [...LOADER_ARGS, modulePath('./ceiling-relay'), '--port', '0', '--host', '127.0.0.1']
        : [
            // As the room-manager command runs it (shebang, npm start).
            ...SERVER_NODE_FLAGS,
            ...LOADER_ARGS,
            modulePath('../cli/main'),
            'serve',
            '--port',
            '0',
            '--host',
            '127.0.0.1',
            '--database-url',
            spec.databaseUrl!(tmp),
            '--log-format',
            'json',
            '--status-interval-ms',
            '0',
            ...(extraArgs?.(tmp) ?? []),
            // BENCH_SERVER_ARGS: extra room-manager flags, for experiments (e.g. "--writer-flush-ms 10").
            ...(process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean),
          ];
    // BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the servers.
    const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = track(
      spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const tail: string[] = [];
    const problems = new Map<string, LogProblem>();
    const note = (level: LogProblem['level'], msg: string): void => {
      const key = `${level} ${msg}`;
      const known = problems.get(key);
      const now = new Date().toISOString();
      if (known) {
        known.count++;
        known.last = now;
      } else if (problems.size < MAX_PROBLEMS)
        problems.set(key, { level, msg, count: 1, first: now, last: now });
    };
    const keep = (line: string): void => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
    };
    createInterface({ input: child.stderr! }).on('line', (line) => {
      keep(line);
      if (line.trim()) note('stderr', line.slice(0, 300));
    });
    const lines = createInterface({ input: child.stdout! });
    // BENCH_SERVER_LOG=FILE keeps the servers' whole output (e.g. with BENCH_SERVER_ARGS
    // "--status-interval-ms 1000" to watch event-loop delay during a run).
    const logFile = process.env.BENCH_SERVER_LOG;
    if (logFile) lines.on('line', (line) => appendFileSync(logFile, `${spec.name} ${line}\n`));

    let started = false;
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${spec.name} did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${spec.name} exited (${code ?? signal}) before listening:\n${tail.join('\n')}`));
      });
      lines.on('line', (line) => {
        keep(line); // the server's log is read continuously (a full pipe would stall it); a tail is kept
        let entry: { msg?: unknown; port?: unknown; level?: unknown; err?: { message?: unknown } };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          return; // not a JSON line
        }
        if (typeof entry.level === 'number' && entry.level >= 40) {
          const level = entry.level >= 60 ? 'fatal' : entry.level >= 50 ? 'error' : 'warn';
          const reason = typeof entry.err?.message === 'string' ? `: ${entry.err.message}` : '';
          note(level, `${String(entry.msg)}${reason}`.slice(0, 300));
        }
        if (!started && entry.msg === 'listening' && typeof entry.port === 'number') {
          clearTimeout(timer);
          started = true;
          resolve(entry.port);
        }
      });
    }).catch((err: unknown) => {
      child.kill('SIGKILL');
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    });
    return new ServerProcess(spec, child, port, tmp, tail, problems);
  }

  /** The warnings and errors it logged so far, most frequent first. */
  logProblems(): LogProblem[] {
    return [...this.problems.values()].sort((a, b) => b.count - a.count);
  }

  /** The last lines the server wrote, for error reports. */
  logTail(): string {
    return this.tail.join('\n');
  }

  /** Resident memory of the server process (VmRSS), KiB; NaN once it has exited. */
  rssKiB(): number {
    const status = readProc(this.pid, 'status');
    if (status === undefined) return NaN;
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!match) throw new Error(`no VmRSS in /proc/${this.pid}/status`);
    return Number(match[1]);
  }

  /** CPU time (user + system) the server has used so far, seconds; NaN once it has exited. */
  cpuSeconds(): number {
    return processCpuSeconds(this.pid);
  }

  /** GET / of the server (live counts), or undefined when it does not answer. */
  status(): Promise<Record<string, unknown> | undefined> {
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: this.port, path: '/', timeout: 2_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body) as Record<string, unknown>);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
      req.end();
    });
  }

  /**
   * Waits (at most `maxMs`) until the server has no records waiting to be written, so one step's
   * database work does not spill into the next. The ceiling has none.
   */
  async waitIdle(maxMs: number): Promise<number> {
    const deadline = Date.now() + maxMs;
    let pending = 0;
    while (Date.now() < deadline) {
      const status = await this.status();
      pending = typeof status?.pendingRecords === 'number' ? status.pendingRecords : 0;
      if (pending === 0) return 0;
      await sleep(100);
    }
    return pending;
  }

  /** SIGTERM (room-manager then writes what is pending and exits), SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    if (this.exitStatus === undefined) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Load-generator workers

/** A command as the caller writes it; the worker channel adds the request id. */
type WithoutReqId<T> = T extends unknown ? Omit<T, 'reqId'> : never;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** One forked worker.ts process and its request/reply channel. */
export class Worker {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    readonly index: number,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (msg: WorkerReply | WorkerReady) => {
      if ('ready' in msg) return;
      const p = this.pending.get(msg.reqId);
      if (!p) return;
      this.pending.delete(msg.reqId);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`worker ${index}: ${msg.error}`));
    });
    child.on('error', () => undefined); // send failures are reported to the caller of call()
    child.once('exit', (code, signal) => {
      const err = new Error(`worker ${index} exited (${code ?? signal})`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  static async start(index: number): Promise<Worker> {
    const child = track(
      fork(modulePath('./worker'), [], {
        execArgv: [...LOADER_ARGS, '--max-old-space-size=2048'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${index} did not start`)), START_TIMEOUT_MS);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker ${index} exited (${code}) at start`));
      });
    });
    return new Worker(index, child);
  }

  /** CPU time (user + system) this worker has used so far, seconds: the load generator's cost. */
  cpuSeconds(): number {
    return this.child.pid === undefined ? NaN : processCpuSeconds(this.child.pid);
  }

  /** Sends one command and resolves with the worker's result. */
  call<R>(cmd: WithoutReqId<WorkerCommand>): Promise<R> {
    const reqId = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`worker ${this.index} is gone`));
      this.pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...cmd, reqId }, (err) => {
        if (!err) return;
        this.pending.delete(reqId);
        reject(err);
      });
    });
  }

  /** Closes the IPC channel; the worker terminates its sockets and exits. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
