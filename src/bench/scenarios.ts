/**
 * The scenarios. Each runs against one already started server (a fresh process per scenario and
 * target) with the shared pool of load-generator workers, and returns plain JSON-able figures.
 * Workers are left with no open socket when a scenario returns or throws.
 */
import { performance } from 'node:perf_hooks';
import { Histogram, round, type HistogramData, type LatencySummary } from './histogram.js';
import type { CloseAllResult, HoldResult, JoinResult, RoomsResult, TrafficResult } from './ipc.js';
import type { BenchOptions } from './options.js';
import { processCpuSeconds, sleep, type ServerUnderTest, type Worker } from './processes.js';

export interface Context {
  opts: BenchOptions;
  workers: Worker[];
  log: (line: string) => void;
  /** True once SIGINT arrived: ladders and waits stop early. */
  aborted: () => boolean;
}

/** Most sockets one worker opens: its open-file limit is 20,000 and Node needs a few itself. */
export const MAX_SOCKETS_PER_WORKER = 19_000;
/** A ladder stops once the delivered rate falls below this share of the offered one… */
const SATURATED_SHARE = 0.85;
/** …or once p99 latency exceeds this (ms). */
const EXPLODED_P99_MS = 1_000;
/** A step is "sustained" when it delivers this share of the offer… */
export const SUSTAINED_SHARE = 0.95;
/** …with p99 latency at or below this (ms). */
export const SUSTAINED_P99_MS = 100;
/** Longest wait for the server's pending records between steps (ms). */
const IDLE_WAIT_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// Helpers

/** `total` split into `parts` near-equal integers. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** Disjoint slices of the source addresses, one per worker (shared round-robin if too few). */
function addressSlices(addresses: string[], workers: number): string[][] {
  if (addresses.length < workers)
    return Array.from({ length: workers }, (_, i) => [addresses[i % addresses.length]!]);
  return Array.from({ length: workers }, (_, w) => addresses.filter((_, i) => i % workers === w));
}

function devicePrefix(scenario: string, worker: number): string {
  return `bench-${scenario}-${process.pid}-${Date.now().toString(36)}-w${worker}`;
}

export async function closeAll(ctx: Context): Promise<CloseAllResult> {
  const results = await Promise.all(
    ctx.workers.map((w) => w.call<CloseAllResult>({ op: 'closeAll', timeoutMs: 10_000 })),
  );
  return {
    closed: results.reduce((s, r) => s + r.closed, 0),
    terminated: results.reduce((s, r) => s + r.terminated, 0),
    unexpectedCloses: results.reduce((s, r) => s + r.unexpectedCloses, 0),
  };
}

function mergedLatency(parts: HistogramData[]): LatencySummary {
  return Histogram.fromData(...parts).summary();
}

/**
 * CPU share between two calls of what `cpuSeconds` reads (a server, the workers), in % of one
 * core (NaN if a process is gone).
 */
function cpuMeter(cpuSeconds: () => number): () => number {
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  return () => round(((cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000)) * 100, 1);
}

/** CPU time of every load-generator worker together, seconds. */
function generatorCpuSeconds(workers: Worker[]): number {
  return workers.reduce((s, w) => s + w.cpuSeconds(), 0);
}

/**
 * The meters of one measurement window: the server, the load generator (the house rule: a
 * benchmark measures the server, not its generator, so its CPU is shown beside), and the
 * services the server relies on on this machine.
 */
function windowMeters(
  ctx: Context,
  server: ServerUnderTest,
): () => Pick<TrafficStep, 'serverCpuPct' | 'generatorCpuPct' | 'serviceCpuPct'> {
  const serverCpu = cpuMeter(() => server.cpuSeconds());
  const generatorCpu = cpuMeter(() => generatorCpuSeconds(ctx.workers));
  const services = server.services.map((p) => ({
    name: p.name,
    read: cpuMeter(() => processCpuSeconds(p.pid)),
  }));
  return () => ({
    serverCpuPct: serverCpu(),
    generatorCpuPct: generatorCpu(),
    ...(services.length && { serviceCpuPct: Object.fromEntries(services.map((p) => [p.name, p.read()])) }),
  });
}

/** Throws, with the tail of its log, if the server process has died. */
function assertAlive(server: ServerUnderTest): void {
  if (server.exitStatus !== undefined) {
    throw new Error(`the server exited (${server.exitStatus}); its last output:\n${server.logTail()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// hold: many idle connections

export interface HoldOutcome {
  requested: number;
  connections: number;
  failed: number;
  statuses: Record<string, number>;
  /** From the first connect to the last room reply (coordinator clock), s. */
  seconds: number;
  handshakesPerSec: number;
  handshake: LatencySummary;
  serverCpuPct: number;
  /** CPU of the load-generator workers while connecting, % of one core (all workers together). */
  generatorCpuPct?: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssPerConnectionKiB: number;
  /** Connections the server closed while they were held. */
  unexpectedCloses: number;
  errors: string[];
}

/**
 * Opens `count` idle connections (default --hold-connections), measures, closes them.
 * `whileHeld`: called once they are all open and the server is idle, before they are closed (the
 * cluster scenario reads each node then).
 */
export async function runHold(
  ctx: Context,
  server: ServerUnderTest,
  hold: { count?: number; whileHeld?: () => Promise<void> } = {},
): Promise<HoldOutcome> {
  const { opts, workers } = ctx;
  const requested = hold.count ?? opts.holdConnections;
  const counts = split(requested, workers.length);
  if (counts[0]! > MAX_SOCKETS_PER_WORKER) {
    throw new Error(
      `${counts[0]} connections per worker exceed the ${MAX_SOCKETS_PER_WORKER} a process can hold; ` +
        `use --workers ${Math.ceil(requested / MAX_SOCKETS_PER_WORKER)} or more`,
    );
  }
  const slices = addressSlices(opts.localAddresses, workers.length);
  await sleep(1_000); // let the fresh server settle before the baseline
  const rssBeforeKiB = server.rssKiB();
  const cpu = cpuMeter(() => server.cpuSeconds());
  const generatorCpu = cpuMeter(() => generatorCpuSeconds(workers));
  const t0 = performance.now();
  const results = await Promise.all(
    workers.map((w, i) =>
      w.call<HoldResult>({
        op: 'hold',
        url: server.url,
        nodeUrls: server.nodeUrls,
        count: counts[i]!,
        concurrency: opts.connectConcurrency,
        localAddresses: slices[i]!,
        devicePrefix: devicePrefix('hold', i),
        timeoutMs: 300_000,
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  assertAlive(server);
  const serverCpuPct = cpu();
  const generatorCpuPct = generatorCpu();
  const connections = results.reduce((s, r) => s + r.opened, 0);
  // Let the server finish its own work (records, GC of handshake garbage) before measuring.
  await server.waitIdle(IDLE_WAIT_MS);
  await sleep(2_000);
  const rssAfterKiB = server.rssKiB();
  const statuses: Record<string, number> = {};
  for (const r of results)
    for (const [k, n] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
  await hold.whileHeld?.();
  const closed = await closeAll(ctx);
  return {
    requested,
    connections,
    failed: results.reduce((s, r) => s + r.failed, 0),
    statuses,
    seconds: round(seconds),
    handshakesPerSec: round(connections / seconds, 1),
    handshake: mergedLatency(results.map((r) => r.handshake)),
    serverCpuPct,
    generatorCpuPct,
    rssBeforeKiB,
    rssAfterKiB,
    rssPerConnectionKiB: connections ? round((rssAfterKiB - rssBeforeKiB) / connections, 2) : 0,
    unexpectedCloses: closed.unexpectedCloses,
    errors: [...new Set(results.flatMap((r) => r.errors))],
  };
}

// ---------------------------------------------------------------------------------------------
// relay / fanout / soak: rooms exchanging timestamped messages

export interface TrafficStep {
  /** Offered load: messages sent per second, all rooms together (nominal). */
  offered: number;
  /** Deliveries per second the offered load asks for (offered × (members − 1)). */
  offeredDeliveries: number;
  /** Messages actually sent per second in the window. */
  sentPerSec: number;
  /** Messages received per second in the window. */
  deliveredPerSec: number;
  /** Share of the window's messages delivered by the end of the drain. */
  deliveredShare: number;
  /** Sends the generator could not make (behind schedule or socket buffer full). */
  skipped: number;
  latency: LatencySummary;
  serverCpuPct: number;
  /** CPU of the load-generator workers in the window, % of one core (all workers together). */
  generatorCpuPct?: number;
  /** CPU of the services the server relies on on this machine (Redis, MariaDB), % of one core. */
  serviceCpuPct?: Record<string, number>;
  rssKiB: number;
}

export interface RoomsSetup {
  rooms: number;
  members: number;
  sendersPerRoom: number;
}

/** A room setup opened on the workers: rooms are whole in one worker (one clock per room). */
export interface OpenRooms extends RoomsSetup {
  roomsPerWorker: number[];
  connections: number;
}

export async function openRooms(
  ctx: Context,
  server: ServerUnderTest,
  setup: RoomsSetup,
  scenario: string,
): Promise<OpenRooms> {
  const { opts, workers } = ctx;
  const roomsPerWorker = split(setup.rooms, workers.length);
  if (Math.max(...roomsPerWorker) * setup.members > MAX_SOCKETS_PER_WORKER) {
    throw new Error(`too many members per worker for one process's open-file limit; use more --workers`);
  }
  const slices = addressSlices(opts.localAddresses, workers.length);
  const results = await Promise.all(
    workers.map((w, i) =>
      w.call<RoomsResult>({
        op: 'rooms',
        url: server.url,
        nodeUrls: server.nodeUrls,
        rooms: roomsPerWorker[i]!,
        members: setup.members,
        concurrency: opts.connectConcurrency,
        localAddresses: slices[i]!,
        devicePrefix: devicePrefix(scenario, i),
        timeoutMs: 120_000,
      }),
    ),
  );
  const failed = results.reduce((s, r) => s + r.failed, 0);
  if (failed) {
    throw new Error(
      `${failed} of ${setup.rooms} rooms could not be opened: ${results.flatMap((r) => r.errors).join('; ')}`,
    );
  }
  return { ...setup, roomsPerWorker, connections: results.reduce((s, r) => s + r.connections, 0) };
}

/** One step: warm-up, window, drain at `rate` msgs/s offered; then wait for the server's records. */
export async function trafficStep(
  ctx: Context,
  server: ServerUnderTest,
  rooms: OpenRooms,
  rate: number,
  timing: { warmupMs: number; durationMs: number; drainMs: number },
): Promise<TrafficStep> {
  const { opts, workers } = ctx;
  // CPU over the window only.
  let meter: ReturnType<typeof windowMeters> | undefined;
  let cpu: ReturnType<ReturnType<typeof windowMeters>> | undefined;
  const t1 = setTimeout(() => (meter = windowMeters(ctx, server)), timing.warmupMs);
  const t2 = setTimeout(() => (cpu = meter?.()), timing.warmupMs + timing.durationMs);
  let results: TrafficResult[];
  try {
    results = await Promise.all(
      workers.map((w, i) =>
        w.call<TrafficResult>({
          op: 'traffic',
          // This worker's share: proportional to the rooms (hence the senders) it holds.
          rate: (rate * rooms.roomsPerWorker[i]!) / rooms.rooms,
          sendersPerRoom: rooms.sendersPerRoom,
          warmupMs: timing.warmupMs,
          durationMs: timing.durationMs,
          drainMs: timing.drainMs,
          payloadBytes: opts.payloadBytes,
        }),
      ),
    );
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
    // The workers can answer before the window's timer fires (a drain with nothing left to wait
    // for, on a busy machine): the CPU is then read now, a little after the window, not left at 0.
    cpu ??= meter?.();
  }
  assertAlive(server);
  const rssKiB = server.rssKiB();
  const windowS = timing.durationMs / 1000;
  const sum = (f: (r: TrafficResult) => number): number => results.reduce((s, r) => s + f(r), 0);
  const expected = sum((r) => r.expected);
  const step: TrafficStep = {
    offered: rate,
    offeredDeliveries: rate * (rooms.members - 1),
    sentPerSec: round(sum((r) => r.sent) / windowS, 1),
    deliveredPerSec: round(sum((r) => r.receivedInWindow) / windowS, 1),
    deliveredShare: expected ? round(sum((r) => r.deliveredOfWindow) / expected, 4) : 0,
    skipped: sum((r) => r.skipped),
    latency: mergedLatency(results.map((r) => r.latency)),
    serverCpuPct: cpu?.serverCpuPct ?? 0,
    generatorCpuPct: cpu?.generatorCpuPct,
    ...(cpu?.serviceCpuPct && { serviceCpuPct: cpu.serviceCpuPct }),
    rssKiB,
  };
  await server.waitIdle(IDLE_WAIT_MS);
  return step;
}

export function stepTiming(opts: BenchOptions): { warmupMs: number; durationMs: number; drainMs: number } {
  return {
    warmupMs: opts.warmup * 1000,
    durationMs: opts.duration * 1000,
    drainMs: opts.smoke ? 1_000 : 5_000,
  };
}

export function describeStep(s: TrafficStep): string {
  const services = Object.entries(s.serviceCpuPct ?? {})
    .map(([name, pct]) => `, ${name} ${pct}%`)
    .join('');
  return (
    `offered ${s.offered}/s → delivered ${Math.round(s.deliveredPerSec)}/s ` +
    `(of ${s.offeredDeliveries}/s), p50 ${s.latency.p50} ms, p99 ${s.latency.p99} ms, max ${s.latency.max} ms, ` +
    `server CPU ${s.serverCpuPct}%, generator ${s.generatorCpuPct ?? '-'}%${services}`
  );
}

/** Why a ladder goes no higher after this step (the server is saturated), or undefined. */
export function ladderEnds(step: TrafficStep): string | undefined {
  if (step.deliveredPerSec < SATURATED_SHARE * step.offeredDeliveries)
    return `delivered fell below ${SATURATED_SHARE * 100}% of offered at ${step.offered}/s`;
  if (step.latency.p99 > EXPLODED_P99_MS)
    return `p99 latency above ${EXPLODED_P99_MS} ms at ${step.offered}/s`;
  return undefined;
}

/** The offered load (messages sent per second) that a ladder's saturation corresponds to. */
export function saturatedRate(o: { members: number; saturation: TrafficStep | undefined }): number {
  return o.saturation ? o.saturation.deliveredPerSec / (o.members - 1) : 0;
}

export interface LadderOutcome extends RoomsSetup {
  connections: number;
  steps: TrafficStep[];
  /** Why the ladder ended before its last rate, if it did. */
  stoppedBecause: string | undefined;
  /** The step with the most deliveries per second. */
  saturation: TrafficStep | undefined;
  /**
   * With --rounds (relay): the saturation step again, alternated with the ceiling's (see
   * alternatedRounds). On the ceiling: its rounds beside every target.
   */
  saturationRounds?: { rounds: TrafficStep[]; ceilingRounds?: TrafficStep[] };
  /** The highest step delivering ≥ 95 % of its offer with p99 ≤ 100 ms: the usable capacity. */
  sustained: TrafficStep | undefined;
  /**
   * A step at a quarter of the reference saturation (relay only). With `rounds`, the step is the
   * round of median p99 among them (see alternatedRounds).
   */
  quarter:
    | {
        reference: string;
        step: TrafficStep;
        rounds?: TrafficStep[];
        /** The ceiling's rounds alternated with these: the ratio's reference. */
        ceilingRounds?: TrafficStep[];
      }
    | undefined;
}

/**
 * Opens the rooms, then climbs the ladder of offered loads until delivery falls well below the
 * offer or latency explodes. `quarterOf`: whose saturation (offered msgs/s) a quarter of is also
 * measured (this ladder's own when no rate is given). Always after the ladder, so that every
 * target runs it in the same state: warmed up by the same steps, its records written. Run first,
 * it caught room-manager cold (the first traffic a fresh process sees) while the ceiling had run
 * its whole ladder: p99 16.2 and 77.5 ms there against 7.06 and 20.6 ms at a 10,000 msg/s ladder
 * step of the same runs.
 */
export async function runLadder(
  ctx: Context,
  server: ServerUnderTest,
  setup: RoomsSetup,
  rates: number[],
  scenario: string,
  quarterOf?: { reference: string; rate?: number },
): Promise<LadderOutcome> {
  const timing = stepTiming(ctx.opts);
  const rooms = await openRooms(ctx, server, setup, scenario);
  ctx.log(`    ${rooms.rooms} rooms × ${rooms.members} members open (${rooms.connections} connections)`);
  let quarter: LadderOutcome['quarter'];
  const measureQuarter = async (reference: string, saturated: number): Promise<void> => {
    const rate = Math.max(1, Math.round(saturated / 4));
    const step = await trafficStep(ctx, server, rooms, rate, timing);
    ctx.log(`    quarter of ${reference} saturation: ${describeStep(step)}`);
    quarter = { reference, step };
  };
  try {
    const steps: TrafficStep[] = [];
    let stoppedBecause: string | undefined;
    for (const rate of rates) {
      if (ctx.aborted()) {
        stoppedBecause = 'interrupted';
        break;
      }
      const step = await trafficStep(ctx, server, rooms, rate, timing);
      steps.push(step);
      ctx.log(`    ${describeStep(step)}`);
      stoppedBecause = ladderEnds(step);
      if (stoppedBecause) break;
    }
    const saturation = steps.reduce<TrafficStep | undefined>(
      (best, s) => (!best || s.deliveredPerSec > best.deliveredPerSec ? s : best),
      undefined,
    );
    const sustained = steps
      .filter(
        (s) =>
          s.deliveredPerSec >= SUSTAINED_SHARE * s.offeredDeliveries && s.latency.p99 <= SUSTAINED_P99_MS,
      )
      .reduce<TrafficStep | undefined>(
        (best, s) => (!best || s.offered > best.offered ? s : best),
        undefined,
      );
    const quarterRate = quarterOf?.rate ?? (saturation && saturatedRate({ ...setup, saturation }));
    if (quarterOf && quarterRate && !ctx.aborted()) await measureQuarter(quarterOf.reference, quarterRate);
    return {
      ...setup,
      connections: rooms.connections,
      steps,
      stoppedBecause,
      saturation,
      sustained,
      quarter,
    };
  } finally {
    await closeAll(ctx);
  }
}

/**
 * A step in `rounds` alternating windows: the ceiling, then the target, on the same rooms setup,
 * both servers warm (each has run its ladder). `quarter`: both at a quarter of the ceiling's
 * saturation. `saturation`: each at the offered rate of its own best ladder step, since a ladder
 * climbs once and one noisy window (another tenant of the host) can cost either server a fifth of
 * its figure. A single window per server, minutes apart, compared what the host happened to do
 * then as much as the servers: on one 2-core host the ceiling's own p99 at 18,000 msg/s measured
 * 7.5, 10.3, 42.8 and 115 ms within one hour. Alternating puts both under the same spells of host
 * noise; the median round of each is reported, and every round is kept.
 */
export async function alternatedRounds(
  ctx: Context,
  servers: { ceiling: ServerUnderTest; target: ServerUnderTest },
  setup: RoomsSetup,
  rates: { ceiling: number; target: number },
  rounds: number,
  label: 'quarter' | 'saturation',
): Promise<{ ceiling: TrafficStep[]; target: TrafficStep[] }> {
  const timing = stepTiming(ctx.opts);
  const out = { ceiling: [] as TrafficStep[], target: [] as TrafficStep[] };
  for (let round = 1; round <= rounds && !ctx.aborted(); round++) {
    for (const which of ['ceiling', 'target'] as const) {
      const server = servers[which];
      const rooms = await openRooms(ctx, server, setup, 'relay');
      try {
        const step = await trafficStep(ctx, server, rooms, rates[which], timing);
        ctx.log(`    ${label} round ${round}/${rounds} on ${server.spec.name}: ${describeStep(step)}`);
        out[which].push(step);
      } finally {
        await closeAll(ctx);
      }
    }
  }
  return out;
}

/** The step of median p99 (the lower middle of an even count). */
export function medianStep(steps: readonly TrafficStep[]): TrafficStep | undefined {
  return medianBy(steps, (s) => s.latency.p99);
}

/** The step of median delivered rate (the lower middle of an even count). */
export function medianDelivered(steps: readonly TrafficStep[]): TrafficStep | undefined {
  return medianBy(steps, (s) => s.deliveredPerSec);
}

/** The item of median `key` (the lower middle of an even count), or undefined if none. */
function medianBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

// ---------------------------------------------------------------------------------------------
// join: full handshakes per second

export interface JoinOutcome {
  concurrency: number;
  seconds: number;
  completed: number;
  failed: number;
  handshakesPerSec: number;
  handshake: LatencySummary;
  serverCpuPct: number;
  errors: string[];
  /**
   * With alternating rounds (--rounds): every round, this outcome being the one of median
   * handshakes per second among them (after one uncounted warm-up run of each server).
   */
  rounds?: Omit<JoinOutcome, 'rounds' | 'ceilingRounds'>[];
  /** The ceiling's rounds alternated with these: the ratio's reference. */
  ceilingRounds?: Omit<JoinOutcome, 'rounds' | 'ceilingRounds'>[];
}

/** The run of median handshakes per second (the lower middle of an even count), with all runs. */
export function medianJoin(runs: readonly JoinOutcome[]): JoinOutcome | undefined {
  const median = medianBy(runs, (r) => r.handshakesPerSec);
  return median && { ...median, rounds: [...runs] };
}

export async function runJoin(ctx: Context, server: ServerUnderTest): Promise<JoinOutcome> {
  const { opts, workers } = ctx;
  const slices = addressSlices(opts.localAddresses, workers.length);
  const timing = stepTiming(opts);
  let meter: (() => number) | undefined;
  let serverCpuPct: number | undefined;
  const t1 = setTimeout(() => (meter = cpuMeter(() => server.cpuSeconds())), timing.warmupMs);
  const t2 = setTimeout(() => (serverCpuPct = meter?.() ?? 0), timing.warmupMs + timing.durationMs);
  let results: JoinResult[];
  try {
    results = await Promise.all(
      workers.map((w, i) =>
        w.call<JoinResult>({
          op: 'join',
          url: server.url,
          concurrency: opts.joinConcurrency,
          localAddresses: slices[i]!,
          devicePrefix: devicePrefix('join', i),
          warmupMs: timing.warmupMs,
          durationMs: timing.durationMs,
        }),
      ),
    );
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
    serverCpuPct ??= meter?.() ?? 0; // as in trafficStep
    await closeAll(ctx);
  }
  assertAlive(server);
  const completed = results.reduce((s, r) => s + r.completed, 0);
  return {
    concurrency: opts.joinConcurrency * workers.length,
    seconds: opts.duration,
    completed,
    failed: results.reduce((s, r) => s + r.failed, 0),
    handshakesPerSec: round(completed / opts.duration, 1),
    handshake: mergedLatency(results.map((r) => r.handshake)),
    serverCpuPct,
    errors: [...new Set(results.flatMap((r) => r.errors))],
  };
}

// ---------------------------------------------------------------------------------------------
// soak: relay at a steady load for a long time, watching the server's memory

export interface SoakOutcome {
  offered: number;
  rateSource: string;
  seconds: number;
  sampleEverySeconds: number;
  /** Every sample, seconds since the end of the warm-up; records waiting for the database then. */
  samples: { t: number; rssKiB: number; pendingRecords?: number }[];
  /** Samples before this many seconds are not judged (the server's own warm-up). */
  baselineAtSeconds: number;
  baselineKiB: number;
  maxKiB: number;
  lastKiB: number;
  /** (max − baseline) / baseline, %. */
  growthPct: number;
  /** Every sample from the baseline on within 10 % above it. */
  withinTenPct: boolean;
  /**
   * Most records waiting for the database at a sample (room-manager's `/` status): bounded means
   * the recording kept up with the load; growing would mean the load was past what it can record.
   */
  maxPendingRecords: number | undefined;
  /** Records waiting at the last sample. */
  lastPendingRecords: number | undefined;
  step: TrafficStep;
}

export async function runSoak(
  ctx: Context,
  server: ServerUnderTest,
  setup: RoomsSetup,
  rate: number,
  rateSource: string,
): Promise<SoakOutcome> {
  const { opts } = ctx;
  const rooms = await openRooms(ctx, server, setup, 'soak');
  const warmupMs = opts.smoke ? 300 : 5_000;
  const durationMs = opts.soakSeconds * 1000;
  const every = Math.min(10, Math.max(1, opts.soakSeconds / 5));
  const samples: SoakOutcome['samples'] = [];
  let t0 = 0;
  let sampler: NodeJS.Timeout | undefined;
  // Samples start with the window (after the warm-up): the first one is the baseline.
  const start = setTimeout(() => {
    t0 = performance.now();
    const sample = (): void => {
      const rssKiB = server.rssKiB();
      const t = round((performance.now() - t0) / 1000, 1);
      const entry: SoakOutcome['samples'][number] = { t, rssKiB };
      samples.push(entry);
      void server.status().then((status) => {
        const pending = status?.pendingRecords;
        if (typeof pending === 'number') entry.pendingRecords = pending;
        ctx.log(`    t=${t}s RSS ${rssKiB} KiB, records waiting ${pending ?? '-'}`);
      });
    };
    sampler = setInterval(sample, every * 1000);
  }, warmupMs);
  let step: TrafficStep;
  try {
    step = await trafficStep(ctx, server, rooms, rate, { warmupMs, durationMs, drainMs: 5_000 });
  } finally {
    clearTimeout(start);
    clearInterval(sampler);
    await closeAll(ctx);
  }
  // The baseline is the first sample after the server's own warm-up (heap and database caches
  // growing to their working size): a minute in, or a fifth of a shorter soak.
  const settleS = Math.min(60, opts.soakSeconds / 5);
  const steady = samples.filter((s) => s.t >= settleS);
  const values = (steady.length ? steady : samples).map((s) => s.rssKiB);
  const baselineKiB = values[0] ?? step.rssKiB;
  const maxKiB = Math.max(baselineKiB, ...values);
  const pendings = samples.flatMap((x) => (x.pendingRecords === undefined ? [] : [x.pendingRecords]));
  return {
    offered: rate,
    rateSource,
    seconds: opts.soakSeconds,
    sampleEverySeconds: every,
    samples,
    baselineAtSeconds: steady[0]?.t ?? 0,
    baselineKiB,
    maxKiB,
    lastKiB: values[values.length - 1] ?? step.rssKiB,
    growthPct: round(((maxKiB - baselineKiB) / baselineKiB) * 100, 1),
    withinTenPct: maxKiB <= baselineKiB * 1.1,
    maxPendingRecords: pendings.length ? Math.max(...pendings) : undefined,
    lastPendingRecords: pendings[pendings.length - 1],
    step,
  };
}
