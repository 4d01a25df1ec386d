/**
 * What a run produces: the JSON record, the Markdown summary, the relay chart (hand-written SVG)
 * and docs/performance.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import type { ClusterOutcome } from './cluster-scenario.js';
import type { BenchOptions } from './options.js';
import {
  medianJoin,
  medianDelivered,
  medianStep,
  type HoldOutcome,
  type JoinOutcome,
  type LadderOutcome,
  type SoakOutcome,
  type TrafficStep,
} from './scenarios.js';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalMiB: number;
  node: string;
  platform: string;
  kernel: string;
  openFileLimit: string;
  /** 1-minute load average when the run started: other work on the machine shows here. */
  loadAverageAtStart: number;
  /**
   * The kernel's own memory monitor, when one runs (Linux DAMON, as some VM hosts set it up to
   * reclaim memory): each sample takes a CPU for milliseconds, a stall both servers see.
   */
  memoryMonitor?: string;
}

export function machineInfo(): MachineInfo {
  const limits = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readText('/proc/self/limits') ?? '');
  const openFileLimit = limits ? `${limits[1]} (hard ${limits[2]})` : 'unknown';
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memTotalMiB: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: process.platform,
    kernel: release(),
    openFileLimit,
    loadAverageAtStart: Math.round(loadavg()[0]! * 100) / 100,
    memoryMonitor: damonState(),
  };
}

/**
 * The running DAMON monitors, e.g. "DAMON (paddr) on, a sample every 500 ms", or undefined.
 * Measured on this project's 2-CPU VM host: every sample (500 ms) kept a CPU busy in the kernel
 * for 12–15 ms, and the latency of both servers showed spikes at that period.
 */
function damonState(): string | undefined {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  const read = (path: string): string | undefined => readText(path)?.trim();
  let names: string[];
  try {
    names = readdirSync(root).filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined; // no DAMON in this kernel, or not Linux
  }
  const running = names.flatMap((name) => {
    if (read(`${root}/${name}/state`) !== 'on') return [];
    const context = `${root}/${name}/contexts/0`;
    const ops = read(`${context}/operations`) ?? '?';
    const sampleUs = Number(read(`${context}/monitoring_attrs/intervals/sample_us`));
    const every = Number.isFinite(sampleUs) && sampleUs > 0 ? `, a sample every ${sampleUs / 1000} ms` : '';
    return [`DAMON (${ops}) on${every}`];
  });
  return running.length ? running.join('; ') : undefined;
}

/** A file's text, or undefined where it cannot be read (not Linux, no such kernel feature). */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A scenario's outcome for one target, or why it failed. */
export type Outcome<T> = T | { error: string };

export function isError<T>(o: Outcome<T> | undefined): o is { error: string } {
  return typeof o === 'object' && o !== null && 'error' in o;
}

export interface BenchResults {
  schema: 1;
  smoke: boolean;
  startedAt: string;
  finishedAt: string;
  /** The process command line as run. */
  command: string;
  /** The same run from a clone: `npm run bench -- …`. */
  reproduce: string;
  argv: string[];
  machine: MachineInfo;
  options: BenchOptions;
  targets: { name: string; description: string }[];
  scenarios: {
    hold?: Record<string, Outcome<HoldOutcome>>;
    relay?: Record<string, Outcome<LadderOutcome>>;
    fanout?: Record<string, Outcome<LadderOutcome>>;
    join?: Record<string, Outcome<JoinOutcome>>;
    soak?: Record<string, Outcome<SoakOutcome>>;
    /** Not per target: the cluster and the single node it is compared with, in one outcome. */
    cluster?: Outcome<ClusterOutcome>;
  };
  summary: SummaryRow[];
  errors: string[];
}

export interface SummaryRow {
  scenario: string;
  figure: string;
  unit: string;
  /** Which way is better, for the reader of the ratio. */
  better: 'higher' | 'lower' | 'info';
  values: Record<string, number | string | null>;
  /** target / ceiling, for every target but the ceiling (null when either is missing). */
  ratios: Record<string, number | null>;
}

// ---------------------------------------------------------------------------------------------
// Summary

function ok<T>(o: Outcome<T> | undefined): T | undefined {
  return o === undefined || isError(o) ? undefined : o;
}

export function summarise(results: Omit<BenchResults, 'summary'>): SummaryRow[] {
  const targets = results.targets.map((t) => t.name);
  const rows: SummaryRow[] = [];
  const row = <T>(
    scenario: string,
    figure: string,
    unit: string,
    better: SummaryRow['better'],
    outcomes: Record<string, Outcome<T>> | undefined,
    pick: (o: T) => number | string | undefined,
    /** The ceiling's value this target is compared with, when it has its own (alternated rounds). */
    pickBase?: (o: T) => number | undefined,
  ): void => {
    if (!outcomes) return;
    const values: SummaryRow['values'] = {};
    for (const t of targets) {
      const o = ok(outcomes[t]);
      values[t] = o === undefined ? null : (pick(o) ?? null);
    }
    const ratios: SummaryRow['ratios'] = {};
    for (const t of targets) {
      if (t === 'ceiling') continue;
      const v = values[t];
      const own = ok(outcomes[t]);
      const base = (own && pickBase?.(own)) ?? values.ceiling;
      ratios[t] =
        typeof v === 'number' && typeof base === 'number' && base !== 0
          ? Math.round((v / base) * 1000) / 1000
          : null;
    }
    rows.push({ scenario, figure, unit, better, values, ratios });
  };
  const s = results.scenarios;

  row('hold', 'connections held', 'conn', 'info', s.hold, (o) => o.connections);
  row('hold', 'server RSS per connection', 'KiB', 'lower', s.hold, (o) => o.rssPerConnectionKiB);
  row('hold', 'handshakes per second while connecting', '/s', 'higher', s.hold, (o) => o.handshakesPerSec);

  // relay and fanout: the same ladder figures.
  const ladderRows = (
    scenario: 'relay' | 'fanout',
    outcomes: Record<string, Outcome<LadderOutcome>> | undefined,
  ): void => {
    // With alternated saturation rounds: the median round, against the ceiling's rounds beside
    // this target (see alternatedRounds); else the ladder's best step.
    const rounds = outcomes && Object.values(outcomes).some((o) => ok(o)?.saturationRounds);
    row(
      scenario,
      `saturation throughput (delivered)${rounds ? ` (median of ${results.options.rounds} rounds alternated with the ceiling's at each one's best ladder step, each ratio against the ceiling rounds of its own target)` : ''}`,
      'msg/s',
      'higher',
      outcomes,
      (o) =>
        (o.saturationRounds ? medianDelivered(o.saturationRounds.rounds) : o.saturation)?.deliveredPerSec,
      (o) =>
        o.saturationRounds?.ceilingRounds
          ? medianDelivered(o.saturationRounds.ceilingRounds)?.deliveredPerSec
          : undefined,
    );
    row(scenario, 'p50 latency at saturation', 'ms', 'lower', outcomes, (o) => o.saturation?.latency.p50);
    row(scenario, 'p99 latency at saturation', 'ms', 'lower', outcomes, (o) => o.saturation?.latency.p99);
    row(scenario, 'max latency at saturation', 'ms', 'lower', outcomes, (o) => o.saturation?.latency.max);
    row(
      scenario,
      'highest sustained load (≥ 95 % delivered, p99 ≤ 100 ms)',
      'msg/s',
      'higher',
      outcomes,
      (o) => o.sustained?.deliveredPerSec,
    );
    row(
      scenario,
      'p99 latency at the highest sustained load',
      'ms',
      'lower',
      outcomes,
      (o) => o.sustained?.latency.p99,
    );
  };
  ladderRows('relay', s.relay);
  const quarter = s.relay
    ? Object.values(s.relay)
        .map(ok)
        .find((o) => o?.quarter)?.quarter
    : undefined;
  const quarterNote = quarter
    ? ` (${quarter.step.offered} msg/s${quarter.rounds ? `; median of ${results.options.rounds} rounds alternated with the ceiling's, each ratio against the ceiling rounds of its own target` : ''})`
    : '';
  row(
    'relay',
    `p99 latency at a quarter of the ceiling's saturation${quarterNote}`,
    'ms',
    'lower',
    s.relay,
    (o) => o.quarter?.step.latency.p99,
    (o) => (o.quarter?.ceilingRounds ? medianStep(o.quarter.ceilingRounds)?.latency.p99 : undefined),
  );
  ladderRows('fanout', s.fanout);

  const joinRounds =
    s.join && Object.values(s.join).some((o) => ok(o)?.rounds) ? results.options.rounds : undefined;
  row(
    'join',
    `full handshakes per second${joinRounds ? ` (median of ${joinRounds} rounds alternated with the ceiling's, each ratio against the ceiling rounds of its own target)` : ''}`,
    '/s',
    'higher',
    s.join,
    (o) => o.handshakesPerSec,
    (o) => (o.ceilingRounds ? medianJoin(o.ceilingRounds)?.handshakesPerSec : undefined),
  );
  row('join', 'p50 handshake time', 'ms', 'lower', s.join, (o) => o.handshake.p50);
  row('join', 'p99 handshake time', 'ms', 'lower', s.join, (o) => o.handshake.p99);

  row('soak', 'offered load', 'msg/s', 'info', s.soak, (o) => o.offered);
  row('soak', 'RSS growth over the soak', '%', 'lower', s.soak, (o) => o.growthPct);
  row('soak', 'memory within 10 %', '', 'info', s.soak, (o) => (o.withinTenPct ? 'yes' : 'NO'));
  row('soak', 'p99 latency during the soak', 'ms', 'lower', s.soak, (o) => o.step.latency.p99);
  row('soak', 'records waiting for the database, most at a sample', '', 'info', s.soak, (o) =>
    o.maxPendingRecords === undefined ? '–' : o.maxPendingRecords,
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Markdown

export function fmt(v: number | string | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (Number.isNaN(v)) return '—';
  if (Number.isInteger(v) || Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function summaryTable(results: BenchResults): string {
  const targets = results.targets.map((t) => t.name);
  const others = targets.filter((t) => t !== 'ceiling');
  const hasCeiling = targets.includes('ceiling');
  const head = ['scenario', 'figure', ...targets, ...(hasCeiling ? others.map((t) => `${t} / ceiling`) : [])];
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
  ];
  for (const r of results.summary) {
    const unit = r.unit ? ` (${r.unit})` : '';
    const cells = [
      r.scenario,
      `${r.figure}${unit}`,
      ...targets.map((t) => fmt(r.values[t])),
      ...(hasCeiling
        ? others.map((t) =>
            r.ratios[t] === null || r.ratios[t] === undefined ? '—' : `${r.ratios[t]!.toFixed(2)}×`,
          )
        : []),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function stepsTable(title: string, outcomes: Record<string, Outcome<LadderOutcome>> | undefined): string {
  if (!outcomes) return '';
  const lines = [
    `### ${title}: every step`,
    '',
    '| target | offered (msg/s sent) | asked deliveries/s | delivered/s | delivered share | p50 ms | p99 ms | max ms | server CPU % | load generator CPU % |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [target, o] of Object.entries(outcomes)) {
    if (isError(o)) {
      lines.push(`| ${target} | failed: ${o.error.split('\n')[0]} | | | | | | | | |`);
      continue;
    }
    const q = o.quarter;
    const quarterRows = !q
      ? []
      : q.rounds
        ? q.rounds.map((s, i) => ({
            s,
            label: ` (quarter of ${q.reference}, round ${i + 1}/${q.rounds!.length}${s === q.step ? ', the median' : ''})`,
          }))
        : [{ s: q.step, label: ` (quarter of ${q.reference})` }];
    const saturation = o.saturationRounds?.rounds ?? [];
    const median = medianDelivered(saturation);
    const saturationRows = saturation.map((s, i) => ({
      s,
      label: ` (saturation again, round ${i + 1}/${saturation.length}${s === median ? ', the median' : ''})`,
    }));
    const all = [...o.steps.map((s) => ({ s, label: '' })), ...quarterRows, ...saturationRows];
    for (const { s, label } of all) {
      lines.push(
        `| ${target}${label} | ${fmt(s.offered)} | ${fmt(s.offeredDeliveries)} | ${fmt(s.deliveredPerSec)} | ${(s.deliveredShare * 100).toFixed(1)} % | ${fmt(s.latency.p50)} | ${fmt(s.latency.p99)} | ${fmt(s.latency.max)} | ${fmt(s.serverCpuPct)} | ${fmt(s.generatorCpuPct)} |`,
      );
    }
    if (o.stoppedBecause) lines.push(`| ${target} | stopped: ${o.stoppedBecause} | | | | | | | | |`);
  }
  return lines.join('\n');
}

function joinTable(outcomes: Record<string, Outcome<JoinOutcome>> | undefined): string {
  if (!outcomes) return '';
  const lines = [
    '### join: every run',
    '',
    '| target | run | handshakes/s | p50 ms | p99 ms | server CPU % |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const [target, o] of Object.entries(outcomes)) {
    if (isError(o)) {
      lines.push(`| ${target} | failed: ${o.error.split('\n')[0]} | | | | |`);
      continue;
    }
    const runs = o.rounds ?? [o];
    runs.forEach((r, i) => {
      const median = o.rounds && r.handshakesPerSec === o.handshakesPerSec && r.completed === o.completed;
      const label = o.rounds ? `round ${i + 1}/${runs.length}${median ? ', the median' : ''}` : 'the run';
      lines.push(
        `| ${target} | ${label} | ${fmt(r.handshakesPerSec)} | ${fmt(r.handshake.p50)} | ${fmt(r.handshake.p99)} | ${fmt(r.serverCpuPct)} |`,
      );
    });
  }
  return lines.join('\n');
}

export function markdown(results: BenchResults): string {
  const m = results.machine;
  return [
    `# room-manager benchmark${results.smoke ? ' (smoke run — sizes too small to mean anything)' : ''}`,
    '',
    `${results.startedAt} · ${m.nproc} CPUs (${m.cpuModel}) · ${m.memTotalMiB} MiB · Node ${m.node} · load average at start ${m.loadAverageAtStart}${m.memoryMonitor ? ` · kernel memory monitor: ${m.memoryMonitor}` : ''}`,
    '',
    `Command: \`${results.command}\``,
    '',
    // A run of the cluster alone has no per-target figure: its section follows (cluster-report.ts).
    ...(results.summary.length ? [summaryTable(results), ''] : []),
    stepsTable('relay', results.scenarios.relay),
    '',
    stepsTable('fanout', results.scenarios.fanout),
    joinTable(results.scenarios.join),
    '',
    ...(results.errors.length
      ? ['## Errors', '', ...results.errors.map((e) => `- ${e.split('\n')[0]}`), '']
      : []),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG chart: delivered throughput and p99 latency against offered load, one line per target

const COLORS: Record<string, string> = {
  ceiling: '#6b7280',
  sqlite: '#2563eb',
  mysql: '#ea580c',
  postgres: '#16a34a',
};
const FALLBACK_COLORS = ['#9333ea', '#dc2626', '#0891b2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function short(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  if (v >= 1) return `${+v.toFixed(1)}`;
  return `${+v.toPrecision(2)}`;
}

/** 1-2-5 ticks covering [lo, hi] on a log axis. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

/** ~5 round ticks from 0 to at least hi on a linear axis. */
function linearTicks(hi: number): number[] {
  const raw = hi / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v <= hi + step * 0.001; v += step) ticks.push(v);
  if (ticks[ticks.length - 1]! < hi) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

interface Panel {
  title: string;
  yLabel: string;
  yLog: boolean;
  series: Series[];
  /** Draw y = x (the offered load) as a dashed reference. */
  diagonal: boolean;
}

export function relayChart(
  outcomes: Record<string, Outcome<LadderOutcome>> | undefined,
  subtitle: string,
): string | undefined {
  if (!outcomes) return undefined;
  const ladders = Object.entries(outcomes).flatMap(([name, o]) =>
    isError(o) || o.steps.length === 0 ? [] : [{ name, o }],
  );
  if (ladders.length === 0) return undefined;
  const color = (name: string, i: number): string =>
    COLORS[name] ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length]!;
  const sorted = (steps: TrafficStep[]): TrafficStep[] => [...steps].sort((a, b) => a.offered - b.offered);
  const throughput: Panel = {
    title: 'Delivered throughput',
    yLabel: 'delivered messages / s',
    yLog: false,
    diagonal: true,
    series: ladders.map(({ name, o }, i) => ({
      name,
      color: color(name, i),
      points: sorted(o.steps).map((s) => ({ x: s.offeredDeliveries, y: s.deliveredPerSec })),
    })),
  };
  const latency: Panel = {
    title: 'p99 latency',
    yLabel: 'p99 latency (ms, log scale)',
    yLog: true,
    diagonal: false,
    series: ladders.map(({ name, o }, i) => ({
      name,
      color: color(name, i),
      points: sorted(o.steps).map((s) => ({ x: s.offeredDeliveries, y: Math.max(s.latency.p99, 0.01) })),
    })),
  };

  const W = 960;
  const H = 430;
  const panelW = 380;
  const panelH = 270;
  const top = 80;
  const lefts = [85, 85 + panelW + 105];
  const allX = ladders.flatMap(({ o }) => o.steps.map((s) => s.offeredDeliveries));
  const xLo = Math.min(...allX) / 1.3;
  const xHi = Math.max(...allX) * 1.3;
  const xTicks = logTicks(xLo, xHi);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="26" text-anchor="middle" font-size="16" font-weight="600">Relay: delivered throughput and p99 latency against offered load</text>`,
    `<text x="${W / 2}" y="46" text-anchor="middle" fill="#4b5563">${esc(subtitle)}</text>`,
  );

  [throughput, latency].forEach((panel, pi) => {
    const left = lefts[pi]!;
    const allY = panel.series.flatMap((s) => s.points.map((p) => p.y));
    const yMaxData = Math.max(...allY, panel.diagonal ? Math.max(...allX) : 0);
    const yTicks = panel.yLog
      ? logTicks(Math.max(0.01, Math.min(...allY) / 1.5), Math.max(...allY) * 1.5)
      : linearTicks(yMaxData);
    const yLo = panel.yLog ? Math.min(yTicks[0]!, Math.min(...allY) / 1.5) : 0;
    const yHi = panel.yLog
      ? Math.max(yTicks[yTicks.length - 1]!, Math.max(...allY) * 1.5)
      : yTicks[yTicks.length - 1]!;
    const sx = (x: number): number =>
      left + ((Math.log(x) - Math.log(xLo)) / (Math.log(xHi) - Math.log(xLo))) * panelW;
    const sy = (y: number): number =>
      top +
      panelH -
      (panel.yLog
        ? ((Math.log(y) - Math.log(yLo)) / (Math.log(yHi) - Math.log(yLo))) * panelH
        : ((y - yLo) / (yHi - yLo)) * panelH);

    parts.push(
      `<text x="${left + panelW / 2}" y="${top - 12}" text-anchor="middle" font-size="14" font-weight="600">${panel.title}</text>`,
    );
    // Grid and ticks.
    for (const t of yTicks) {
      if (t < yLo || t > yHi) continue;
      const y = sy(t).toFixed(1);
      parts.push(
        `<line x1="${left}" x2="${left + panelW}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`,
        `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#374151">${short(t)}</text>`,
      );
    }
    for (const t of xTicks) {
      const x = sx(t).toFixed(1);
      parts.push(
        `<line x1="${x}" x2="${x}" y1="${top}" y2="${top + panelH}" stroke="#f3f4f6"/>`,
        `<text x="${x}" y="${top + panelH + 16}" text-anchor="middle" fill="#374151">${short(t)}</text>`,
      );
    }
    parts.push(
      `<rect x="${left}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#9ca3af"/>`,
      `<text x="${left + panelW / 2}" y="${top + panelH + 38}" text-anchor="middle" fill="#111827">offered deliveries / s (log scale)</text>`,
      `<text transform="translate(${left - 58} ${top + panelH / 2}) rotate(-90)" text-anchor="middle" fill="#111827">${panel.yLabel}</text>`,
    );
    if (panel.diagonal) {
      // y = x, sampled along the log x axis so it stays a straight line's worth of points.
      const pts: string[] = [];
      for (let i = 0; i <= 40; i++) {
        const x = xLo * (xHi / xLo) ** (i / 40);
        if (x > yHi) break;
        pts.push(`${sx(x).toFixed(1)},${sy(x).toFixed(1)}`);
      }
      parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="#9ca3af" stroke-dasharray="5 4"/>`);
    }
    for (const s of panel.series) {
      const pts = s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`);
      parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      for (const p of s.points) {
        parts.push(
          `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(s.name)}: offered ${short(p.x)}/s → ${short(p.y)}${panel.yLog ? ' ms' : '/s'}</title></circle>`,
        );
      }
    }
  });

  // Legend, under the panels.
  const legend = [
    ...ladders.map(({ name }, i) => ({ label: name, color: color(name, i), dash: false })),
    { label: 'offered load (ideal)', color: '#9ca3af', dash: true },
  ];
  let lx = 90;
  const ly = H - 22;
  for (const item of legend) {
    parts.push(
      `<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${item.color}" stroke-width="${item.dash ? 1.5 : 2.5}"${item.dash ? ' stroke-dasharray="5 4"' : ''}/>`,
      `<text x="${lx + 32}" y="${ly}" dominant-baseline="middle" fill="#111827">${esc(item.label)}</text>`,
    );
    lx += 52 + item.label.length * 7;
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// docs/performance.md

/** What a kernel memory monitor on the host does to the latency figures, as measured here. */
function memoryMonitorNote(monitor: string): string {
  return `

The kernel of this host ran a memory monitor during the run: ${monitor}. On this project's
2-CPU VM host each sample kept one CPU busy in the kernel for 12–15 ms (\`perf sched\`), and the
latency of both servers spiked at that period (every ~530 ms), so it sets much of every p99 below. Measured on
2026-12-04 with the monitor switched off for the test, relay 500×2 at 8,500 msg/s, p99 per
round: ceiling 2.2–2.8 ms and SQLite 2.2–5.7 ms (4 rounds each); with it on, 2.9–4.9 and
7.2–10.7 ms (5 rounds each). room-manager likely suffers more because it does more per message
(the recording) while it catches up on what piled up during the stall.`;
}

export function performanceDoc(
  results: BenchResults,
  chartPath: string | undefined,
  resultsDir: string,
): string {
  const m = results.machine;
  const o = results.options;
  return `# Performance

<!-- Generated by the bench (src/bench/report.ts) from ${resultsDir}/latest.json; rerun it rather than editing. -->

How much room-manager costs next to the least any server of the same protocol could do. Every
figure below is measured against two servers in the same run, back to back, each in its own
process on a fresh state:

- **ceiling** — a bare in-memory relay of the Level 1 protocol written for the bench
  (\`src/bench/ceiling-relay.ts\`: Node + ws, nothing recorded, no validation beyond the protocol);
- **${results.targets
    .filter((t) => t.name !== 'ceiling')
    .map((t) => `${t.name}** — ${t.description}`)
    .join(';\n- **')}.

The ratio column is room-manager / ceiling: for throughputs higher is better (1.00× = as fast as
the bare relay), for latencies and memory lower is better.

## Latest results

Run of ${results.startedAt}, on ${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalMiB} MiB of memory,
Node ${m.node}, Linux ${m.kernel}, open-file limit ${m.openFileLimit}; load average at start
${m.loadAverageAtStart}. The load generator (${o.workers} worker processes) shares these CPUs with
the server under test, so on a small machine the figures are a lower bound for the server and the
ceiling is partly the generator's own limit. For mysql and postgres the database server runs on
the same CPUs too: every recorded row costs its CPU (MariaDB 10.11, measured here: about 6 µs
per message row in 500-row prepared INSERTs, 12–13 µs while \`messages\` had foreign keys), out
of the budget the relay and the generator share.${m.memoryMonitor ? memoryMonitorNote(m.memoryMonitor) : ''}

\`\`\`sh
${results.reproduce}
\`\`\`

${summaryTable(results)}

${chartPath ? `![Relay: delivered throughput and p99 latency against offered load, per target](${chartPath})\n` : ''}
${stepsTable('relay', results.scenarios.relay)}

${stepsTable('fanout', results.scenarios.fanout)}

${joinTable(results.scenarios.join)}

## What each scenario does

- **hold** — ${o.holdConnections} idle connections, each a new device (\`created_new\`), opened with at
  most ${o.connectConcurrency} handshakes in flight per worker, from source addresses
  ${o.localAddresses[0]}…${o.localAddresses[o.localAddresses.length - 1]} (the ephemeral ports of one source address would not
  suffice). Server memory is VmRSS from \`/proc/<pid>/status\` before and after (after the record
  writer is idle), divided by the connections; handshakes per second is connections / time from
  the first connect to the last room reply.
- **relay** — ${o.relayRooms} rooms × ${o.relayMembers} members; every member sends, open loop, at the
  offered rate of the step; each message is \`{"t":<send time>,"s":<n>,"pad":"…"}\` of
  ~${o.payloadBytes} bytes. All members of a room live in one worker, so the latency (receipt − send
  time) is read on one clock. Each step: ${o.warmup} s warm-up, ${o.duration} s window, then a drain; only
  messages received in the window count as delivered, and the latency covers every message sent in
  the window, however late it arrived. The ladder stops once delivery falls below 85 % of the
  offer or p99 exceeds 1 s; the saturation throughput is the best delivered rate (its latency is
  that of an overloaded server), the highest sustained load the highest step still delivering
  ≥ 95 % of its offer with p99 ≤ 100 ms. The quarter step
  runs both servers at a quarter of the ceiling's saturated rate, a load both should carry easily,
  after each one's ladder (both warmed up by the same steps, their records written): in
  ${o.rounds || 1} ${o.rounds ? 'rounds alternating the ceiling and each target (the ceiling stays up for it), the median round of each reported' : 'step per target'},
  because the host's noise moves p99 several-fold from one minute to the next.${o.rounds ? ` Then, as often, each server runs again at the offered rate of its own best ladder step, alternating the ceiling and the target; the saturation throughput in the summary is the median of these rounds, and its ratio is against the ceiling's rounds beside the same target (a ladder climbs once, and one noisy window can cost either server a fifth of its figure).` : ''}
- **fanout** — ${o.fanoutRooms} rooms × ${o.fanoutMembers} members, ${o.fanoutSenders} sender(s) per room, the same
  ladder in deliveries per second.
- **join** — for ${o.duration} s, ${o.joinConcurrency} handshakes in flight per worker: connect, receive the
  connection frame, send a hello with a new device_id, receive the room reply, close. ${o.rounds ? `After one uncounted warm-up run of each server, ${o.rounds} rounds alternating the ceiling and each target; the run of median handshakes per second of each is reported.` : 'One run per target.'}
- **soak** (\`--soak\`) — relay at half the measured saturation for ${o.soakSeconds} s, sampling the
  server's RSS every 10 s; memory is "within 10 %" when no sample exceeds the baseline by more
  (the baseline is the first sample after a minute, or a fifth of a shorter soak). Each sample
  also reads the records still waiting for the database (\`/\` status): a bound on it shows the
  recording kept up with the load rather than falling behind.

## Reproduce

\`\`\`sh
npm ci
npm run bench                      # builds, then every scenario against ceiling and sqlite (~10 min)
npm run bench -- --smoke           # about 30 s, tiny sizes, results in a temporary folder (CI)
npm run bench -- --soak            # adds a 10-minute soak of each room-manager target
npm run bench -- --soak --soak-targets sqlite   # ... of SQLite only
npm run bench -- --scenarios relay --relay-rates 5000,20000,80000 --duration 3
npm run bench -- --scenarios cluster   # 3 nodes on Redis and MariaDB against one node (its own section)
npm run bench -- --help            # every option
\`\`\`

Results go to \`bench/results/<timestamp>.json\` (everything: options, machine, every step),
\`bench/results/latest.json\`, \`latest.md\` and \`latest-relay.svg\`; a full run also rewrites
this page. The machine should be otherwise idle: the figures are only as quiet as it is.
`;
}
