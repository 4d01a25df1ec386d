/**
 * The cluster scenario (issue 23): room-manager nodes on one Redis and one database, against a
 * single node on the same kind of database in the same run.
 *
 * 1. hold: idle connections spread evenly over the nodes (more than one process could hold),
 *    read per node while held, then closed;
 * 2. relay: rooms whose members are on different nodes, so that every delivery crosses Redis;
 *    the same ladder on a single node, step by step alternately (both servers stay up), so that
 *    both see the same spells of host noise and the cost of the hop shows.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { reachable } from './databases.js';
import {
  ClusterProcess,
  clusterTargetSpec,
  localRedisProcess,
  withoutPassword,
  type NodeFigures,
} from './cluster.js';
import { round } from './histogram.js';
import {
  findLocalProcess,
  ServerProcess,
  sleep,
  Worker,
  type LocalProcess,
  type LogProblem,
  type ServerUnderTest,
  type TargetSpec,
} from './processes.js';
import {
  closeAll,
  describeStep,
  ladderEnds,
  MAX_SOCKETS_PER_WORKER,
  openRooms,
  runHold,
  stepTiming,
  trafficStep,
  type Context,
  type HoldOutcome,
  type RoomsSetup,
  type TrafficStep,
} from './scenarios.js';

export interface ClusterHoldOutcome extends HoldOutcome {
  /** Load-generator processes that held them (more than --workers when one could not). */
  workers: number;
  /** Every node while the connections were held. */
  perNode: NodeFigures[];
}

/** One server's ladder in the alternated relay. */
export interface ClusterLadder {
  steps: TrafficStep[];
  /** Why it stopped before the last rate, if it did. */
  stoppedBecause?: string;
}

export interface ClusterOutcome {
  nodes: number;
  /** The database target the nodes share, and the single node's. */
  database: string;
  redis: string;
  redisPrefix: string;
  /** 1-minute load average when the scenario started and ended: other work on the machine. */
  loadAverage: { start: number; end: number };
  hold: HoldOrError;
  relay: RoomsSetup & {
    /** The single node on `database`; absent in a smoke run (the relay scenario covers it). */
    single?: ClusterLadder;
    cluster: ClusterLadder;
    error?: string;
  };
  /** Warnings and errors each server logged over the scenario (none: an empty list). */
  logProblems: Record<string, LogProblem[]>;
}

type HoldOrError = ClusterHoldOutcome | { error: string };

/** Why the cluster cannot run here (Redis or its database does not answer), or undefined. */
export async function clusterUnavailable(redisUrl: string, databaseUrl: string): Promise<string | undefined> {
  if (!(await reachable(redisUrl))) return `no Redis answers at ${withoutPassword(redisUrl)}`;
  if (!(await reachable(databaseUrl))) return `no database answers at ${withoutPassword(databaseUrl)}`;
  return undefined;
}

/** The database server's process, when it runs on this machine: its CPU is shown too. */
function localDatabaseProcess(kind: 'mysql' | 'postgres'): LocalProcess | undefined {
  // PostgreSQL works in a process per connection, which come and go: only MariaDB/MySQL's one
  // process can be followed.
  if (kind !== 'mysql') return undefined;
  const found = findLocalProcess(['mariadbd', 'mysqld']);
  return found && { name: found.name === 'mariadbd' ? 'mariadb' : 'mysql', pid: found.pid };
}

export async function runCluster(
  ctx: Context,
  base: TargetSpec & { databaseUrl: () => string },
): Promise<ClusterOutcome> {
  const { opts, log } = ctx;
  const loadStart = round(loadavg()[0]!, 2);
  const database = localDatabaseProcess(opts.clusterTarget);
  const redis = await localRedisProcess(opts.redisUrl);
  const spec = clusterTargetSpec(base, opts.clusterNodes);
  const cluster = await ClusterProcess.start(
    spec,
    opts.clusterNodes,
    opts.redisUrl,
    [redis, database].filter((p) => p !== undefined),
  );
  let single: ServerProcess | undefined;
  log(
    `cluster: ${cluster.nodes.map((n) => `${n.spec.name} pid ${n.pid} ${n.url}`).join(', ')}; ` +
      `Redis ${withoutPassword(opts.redisUrl)} prefix ${cluster.redisPrefix}`,
  );
  const setup: RoomsSetup = {
    rooms: opts.clusterRooms,
    members: opts.clusterMembers,
    sendersPerRoom: opts.clusterMembers,
  };
  const relay: ClusterOutcome['relay'] = { ...setup, cluster: { steps: [] } };
  let hold: HoldOrError;
  try {
    hold = await clusterHold(ctx, cluster).catch((err: unknown) => ({ error: errorText(err) }));
    await settle(ctx, cluster);
    try {
      if (!opts.smoke) {
        single = await ServerProcess.start(base);
        single.services = database ? [database] : [];
        relay.single = { steps: [] };
        log(`cluster: single node ${base.name} pid ${single.pid} ${single.url}`);
      }
      await alternatedLadders(ctx, setup, { single, cluster }, relay);
    } catch (err) {
      relay.error = ctx.aborted() ? 'interrupted' : errorText(err);
      log(`cluster relay FAILED: ${relay.error}`);
    }
  } finally {
    await Promise.all([cluster.stop(), single?.stop()].map((p) => p?.catch(() => undefined)));
  }
  // Read after the stop: what a node logs while draining counts too.
  const logProblems = Object.fromEntries(
    [...cluster.nodes, ...(single ? [single] : [])].map((s) => [s.spec.name, s.logProblems()]),
  );
  for (const [name, problems] of Object.entries(logProblems))
    for (const p of problems) log(`    ${name} logged ${p.count}× ${p.level}: ${p.msg}`);
  return {
    nodes: opts.clusterNodes,
    database: base.name,
    redis: withoutPassword(opts.redisUrl),
    redisPrefix: cluster.redisPrefix,
    loadAverage: { start: loadStart, end: round(loadavg()[0]!, 2) },
    hold,
    relay,
    logProblems,
  };
}

/**
 * The hold over the nodes. One worker holds at most MAX_SOCKETS_PER_WORKER sockets (its own
 * open-file cap), so more workers are started for it when --workers are too few.
 */
async function clusterHold(ctx: Context, cluster: ClusterProcess): Promise<ClusterHoldOutcome> {
  const { opts, log } = ctx;
  const count = opts.clusterHoldConnections;
  const needed = Math.ceil(count / MAX_SOCKETS_PER_WORKER);
  const extra: Worker[] = [];
  try {
    for (let i = ctx.workers.length; i < needed; i++) extra.push(await Worker.start(i));
    const workers = [...ctx.workers, ...extra];
    let perNode: NodeFigures[] = [];
    const o = await runHold({ ...ctx, workers }, cluster, {
      count,
      whileHeld: async () => {
        perNode = await cluster.nodeFigures();
      },
    });
    log(
      `    cluster hold: ${o.connections}/${o.requested} connections (${o.failed} failed) in ${o.seconds} s → ${o.handshakesPerSec}/s, ` +
        `nodes CPU ${o.serverCpuPct}%, generator CPU ${o.generatorCpuPct}% (${workers.length} workers)`,
    );
    for (const n of perNode)
      log(`      ${n.node}: ${n.connections} connections, RSS ${n.rssKiB} KiB, ${n.openFiles} open files`);
    if (o.errors.length) log(`      errors: ${o.errors.join('; ')}`);
    return { ...o, workers: workers.length, perNode };
  } finally {
    await Promise.all(extra.map((w) => w.stop().catch(() => undefined)));
  }
}

/** Longest wait for the nodes to go quiet after the hold. */
const SETTLE_MAX_MS = 120_000;
/** Quiet: the nodes together use less than this share of one core (%). */
const QUIET_CPU_PCT = 15;

/**
 * Waits until the nodes are done with what the hold's closes left them (each close is a presence
 * leave in Redis and a record), so that the relay's first steps, the single node's included, do not
 * share the CPUs with it.
 */
async function settle(ctx: Context, cluster: ClusterProcess): Promise<void> {
  const t0 = performance.now();
  let cpu = Infinity;
  while (performance.now() - t0 < SETTLE_MAX_MS && !ctx.aborted()) {
    const before = cluster.cpuSeconds();
    await sleep(1_000);
    cpu = (cluster.cpuSeconds() - before) * 100;
    if (cpu < QUIET_CPU_PCT) break;
  }
  ctx.log(
    `    nodes settled after the hold in ${round((performance.now() - t0) / 1000, 1)} s (last second: ${round(cpu, 1)} % CPU)`,
  );
}

/**
 * The relay ladder on the single node and on the cluster, alternately at each rate (the rooms
 * opened again for each step, since a worker holds one room setup at a time); each stops
 * climbing on its own once saturated.
 */
async function alternatedLadders(
  ctx: Context,
  setup: RoomsSetup,
  servers: { single: ServerUnderTest | undefined; cluster: ServerUnderTest },
  out: ClusterOutcome['relay'],
): Promise<void> {
  const timing = stepTiming(ctx.opts);
  for (const rate of ctx.opts.clusterRates) {
    for (const which of ['single', 'cluster'] as const) {
      const server = servers[which];
      const ladder = out[which];
      if (!server || !ladder || ladder.stoppedBecause || ctx.aborted()) continue;
      const rooms = await openRooms(ctx, server, setup, `cluster-${which}`);
      let step: TrafficStep;
      try {
        step = await trafficStep(ctx, server, rooms, rate, timing);
      } finally {
        await closeAll(ctx);
      }
      ladder.steps.push(step);
      ladder.stoppedBecause = ladderEnds(step);
      ctx.log(`    ${which === 'single' ? 'single node' : 'cluster    '}: ${describeStep(step)}`);
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
