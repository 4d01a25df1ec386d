#!/usr/bin/env -S node --max-semi-space-size=32 --heap-growing-percent=20 --no-parallel-scavenge
/**
 * The `room-manager` command: `serve` runs the server, `migrate` brings the database schema up to
 * date. Every setting is a flag or an environment variable (src/config/schema.ts).
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, redactUrl } from '../config/load.js';
import { SETTINGS, type SettingSpec } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { ClusterStartError, RoomServer } from '../server.js';
import { DatabaseOpenError } from '../store/open-errors.js';
import { openStore } from '../store/open-store.js';
import { LeaseHeldError } from '../store/writer-lease.js';
import { Retention, cutoffOf, retentionWanted, type RetentionCounts } from '../store/retention.js';
import type { Config } from '../config/schema.js';
import { VERSION } from '../version.js';

const COMMANDS = {
  serve: 'Run the server (WebSocket and HTTP on one port).',
  migrate: 'Apply pending database migrations and exit (serve also does this at start).',
  prune: 'Delete what the --retain-* settings say is too old, and exit (--dry-run: only count it).',
  bench: 'Run the benchmark: room-manager beside a minimal relay (the ceiling); see docs/performance.md.',
} as const;
type Command = keyof typeof COMMANDS;

/**
 * The settings each command takes (keys of SETTINGS; 'all' for every one): its --help lists them,
 * and its parsing refuses the others' flags. A new command is one line here.
 */
const COMMAND_SETTINGS: Record<Exclude<Command, 'bench'>, readonly string[] | 'all'> = {
  serve: 'all',
  migrate: ['databaseUrl', 'logLevel', 'logFormat'],
  prune: [
    'databaseUrl',
    'retainMessages',
    'retainRoomQueries',
    'retainConnections',
    'retainRooms',
    'logLevel',
    'logFormat',
  ],
};

/** Switches a command has beyond the settings (not settings: they exist only for that run). */
const COMMAND_SWITCHES: Partial<Record<Exclude<Command, 'bench'>, Record<string, string>>> = {
  prune: { 'dry-run': 'Say per table how many rows would go, and delete nothing.' },
};

function settingsOf(command: Exclude<Command, 'bench'>): SettingSpec[] {
  const keys = COMMAND_SETTINGS[command];
  return keys === 'all' ? SETTINGS : SETTINGS.filter((s) => keys.includes(s.key));
}

// 1 is for what may pass by itself (a supervisor may retry), 2 for what only a change of
// settings mends (systemd: RestartPreventExitStatus=2 3).
const EXIT_CODES = [
  'Exit codes: 0 ok, also when stopped by SIGTERM/SIGINT (a second one ends the drain at once; the',
  'record is still written or spooled); 1 could not start (the database unreachable: nothing',
  'listening, no answer, unknown host; a port in use; cluster mode: Redis unreachable), or failed',
  'while running; 2 bad usage or configuration (a wrong option or value, the database refused the',
  'login or does not exist, the SQLite file cannot be created, SQLite with --redis-url); 3 the',
  'database is held by another running server (one database takes one server, unless every',
  'server on it runs in cluster mode with --redis-url).',
];

function usage(command?: Exclude<Command, 'bench'>): string {
  if (!command) {
    return [
      `room-manager ${VERSION}`,
      '',
      'Usage: room-manager <command> [options]',
      '',
      'Commands:',
      ...Object.entries(COMMANDS).map(([name, text]) => `  ${name.padEnd(10)} ${text}`),
      '',
      'Run `room-manager <command> --help` for its options.',
      '',
      ...EXIT_CODES,
    ].join('\n');
  }
  const lines = [
    `Usage: room-manager ${command} [options]`,
    '',
    COMMANDS[command],
    '',
    'Options (flag / environment variable, default):',
  ];
  for (const s of settingsOf(command)) {
    const names = s.boolean ? `--${s.flag} / --no-${s.flag}` : `--${s.flag} <value>`;
    lines.push(`  ${names}   ${s.env}   default ${s.shownDefault}`);
    lines.push(`      ${s.description}`);
  }
  for (const [flag, text] of Object.entries(COMMAND_SWITCHES[command] ?? {}))
    lines.push(`  --${flag}   ${text}`);
  lines.push('  -h, --help   Show this help.', '  -v, --version   Print the version.', '', ...EXIT_CODES);
  return lines.join('\n');
}

type Flags = Record<string, string | boolean | undefined>;

/**
 * A command's arguments → its flags (a switch's --no-x as x: false), or help, or version, or the
 * one line that says what is wrong (printed alone, so that it does not scroll away).
 */
function parseCommandArgs(
  command: Exclude<Command, 'bench'>,
  args: string[],
): { flags: Flags } | { show: 'help' | 'version' } | { error: string } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const flag of Object.keys(COMMAND_SWITCHES[command] ?? {})) options[flag] = { type: 'boolean' };
  const negated = new Map<string, string>();
  for (const s of settingsOf(command)) {
    options[s.flag] = { type: s.boolean ? 'boolean' : 'string' };
    if (s.boolean) {
      options[`no-${s.flag}`] = { type: 'boolean' };
      negated.set(`no-${s.flag}`, s.flag);
    }
  }
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const asks = (flag: string) => tokens.some((t) => t.kind === 'option' && t.name === flag);
  if (asks('help')) return { show: 'help' };
  if (asks('version')) return { show: 'version' };

  const name = `room-manager ${command}`;
  const lists = `(${name} --help lists every option)`;
  const isSwitch = (flag: string) =>
    options[flag]?.type === 'boolean' && flag !== 'help' && flag !== 'version';
  const switchAdvice = (flag: string) => {
    const base = negated.get(flag) ?? flag;
    return `--${base} is a switch: write --${base} or --no-${base}, without a value`;
  };
  const flags: Flags = {};
  for (const [i, t] of tokens.entries()) {
    if (t.kind === 'positional') {
      const before = tokens[i - 1];
      if (before?.kind === 'option' && isSwitch(before.name) && /^(true|false|1|0)$/i.test(t.value)) {
        return { error: `${switchAdvice(before.name)} ${lists}` };
      }
      return { error: `Unexpected argument "${t.value}" for ${name}: options are --name value ${lists}` };
    }
    if (t.kind !== 'option') continue;
    const spec = options[t.name];
    if (!spec) {
      const elsewhere = SETTINGS.some((s) => s.flag === t.name || (s.boolean && `no-${s.flag}` === t.name));
      if (elsewhere) return { error: `Option ${t.rawName} does not apply to ${name} ${lists}` };
      const near = t.name.length > 1 ? nearest(t.name, Object.keys(options)) : undefined;
      return {
        error: `Unknown option ${t.rawName} for ${name}.${near ? ` Did you mean --${near}?` : ''} ${lists}`,
      };
    }
    if (spec.type === 'string') {
      // `--port` last, or followed by another option, has no value.
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--'))) {
        return { error: `Option --${t.name} needs a value: --${t.name} <value> ${lists}` };
      }
      flags[t.name] = t.value;
    } else if (t.inlineValue) {
      return { error: `${switchAdvice(t.name)} ${lists}` };
    } else {
      const base = negated.get(t.name);
      flags[base ?? t.name] = base === undefined;
    }
  }
  return { flags };
}

/** The candidate nearest to `word` by edit distance, when it is near enough to be a typo of it. */
function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 3 ? 1 : editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** One line for a database that cannot be opened: the setting, where (no password), and why. */
/** Prints the database's one line; 1 when it may pass by itself (unreachable), else 2. */
function refusedDatabase(err: DatabaseOpenError, databaseUrl: string): number {
  console.error(databaseOpenLine(err, databaseUrl));
  return err.problem === 'unreachable' ? 1 : 2;
}

/** One line for a port that cannot be listened on (taken, or privileged); undefined otherwise. */
function listenProblem(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen') return undefined;
  const why =
    e.code === 'EADDRINUSE'
      ? 'another process listens there; choose another --port / --metrics-port, or stop it'
      : e.code === 'EACCES'
        ? 'not allowed: a port below 1024 needs privileges (put nginx in front)'
        : e.message;
  const host = e.address?.includes(':') ? `[${e.address}]` : (e.address ?? '');
  return `Cannot listen on ${host}:${e.port ?? ''}: ${why} (${e.code ?? 'error'})`;
}

function databaseOpenLine(err: DatabaseOpenError, databaseUrl: string): string {
  return `Cannot open the database of --database-url / DATABASE_URL (${redactUrl(databaseUrl)}): ${err.message}`;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    console.log(usage());
    return first ? 0 : 2; // no command: bad usage
  }
  if (first === '--version' || first === '-v') {
    console.log(VERSION);
    return 0;
  }
  if (!(first in COMMANDS)) {
    const lists = '(room-manager --help lists every command)';
    if (first.startsWith('-')) {
      console.error(
        `room-manager takes a command first, then options: room-manager serve ${first} … ${lists}`,
      );
    } else {
      const near = nearest(first, Object.keys(COMMANDS));
      console.error(
        `Unknown command ${first} for room-manager.${near ? ` Did you mean ${near}?` : ''} ${lists}`,
      );
    }
    return 2;
  }
  const command = first as Command;
  if (command === 'bench') {
    if (rest.includes('--version') || rest.includes('-v')) {
      console.log(VERSION);
      return 0;
    }
    // The bench has its own options (room-manager bench --help); loaded only when asked for.
    const { runBench } = await import('../bench/run.js');
    return runBench(rest);
  }

  const parsed = parseCommandArgs(command, rest);
  if ('error' in parsed) {
    console.error(parsed.error);
    return 2;
  }
  if ('show' in parsed) {
    console.log(parsed.show === 'help' ? usage(command) : VERSION);
    return 0;
  }
  const flags = parsed.flags;

  let config;
  try {
    config = loadConfig({ flags, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }

  if (command === 'migrate') {
    const log = createLogger(config);
    let store;
    try {
      store = openStore(config.databaseUrl);
      const applied = await store.migrate();
      log.info(
        { database: redactUrl(config.databaseUrl), applied },
        applied.length ? 'migrations applied' : 'schema is up to date',
      );
    } catch (err) {
      if (!(err instanceof DatabaseOpenError)) throw err;
      return refusedDatabase(err, config.databaseUrl);
    } finally {
      await store?.close();
    }
    return 0;
  }

  if (command === 'prune') {
    try {
      return await prune(config, flags['dry-run'] === true);
    } catch (err) {
      if (!(err instanceof DatabaseOpenError)) throw err;
      return refusedDatabase(err, config.databaseUrl);
    }
  }

  const server = new RoomServer(config);
  const log = server.log;
  try {
    await server.start();
  } catch (err) {
    if (err instanceof LeaseHeldError) {
      // An expected refusal, not a failure of this program: its one line says what to do.
      console.error(err.message);
      await server.stop().catch(() => undefined);
      return 3;
    }
    if (err instanceof DatabaseOpenError) {
      await server.stop().catch(() => undefined);
      return refusedDatabase(err, config.databaseUrl);
    }
    if (err instanceof ClusterStartError) {
      // Redis may come back by itself: exit 1, so that a supervisor retries.
      console.error(err.message);
      await server.stop().catch(() => undefined);
      return 1;
    }
    const listen = listenProblem(err);
    if (listen) {
      console.error(listen);
      await server.stop().catch(() => undefined);
      return 1;
    }
    log.fatal({ err }, 'could not start');
    await server.stop().catch(() => undefined);
    return 1;
  }
  // Until a signal, or until the server stops by itself (it logged why). The first signal drains
  // the clients over --drain-ms; a second one ends the drain at once (the record is still written).
  let signals = 0;
  const stoppedByItself = await new Promise<boolean>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signals++ === 0) {
        log.info({ signal, drainMs: config.drainMs }, 'shutting down');
        resolve(false);
      } else {
        log.warn({ signal }, 'second signal: closing the remaining clients at once');
        void server.stop();
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void server.fatal.then(() => resolve(true));
  });
  await server.stop({ drainMs: stoppedByItself ? 0 : config.drainMs });
  return stoppedByItself ? 1 : 0;
}

/**
 * `room-manager prune`: one retention pass (or, with --dry-run, its counts), beside a running
 * server if there is one: it only deletes, so it takes no writer lease.
 */
async function prune(config: Config, dryRun: boolean): Promise<number> {
  if (!retentionWanted(config)) {
    console.error(
      'Nothing to prune: no retention is set. Give --retain-messages, --retain-room-queries, --retain-connections or --retain-rooms (e.g. --retain-messages 30d).',
    );
    return 2;
  }
  const log = createLogger(config);
  const store = openStore(config.databaseUrl);
  try {
    await store.migrate();
    let periods: Config = config;
    if (config.retainRooms !== undefined && !dryRun) {
      // Only a server knows which rooms have members and which codes its cache still joins.
      const holder = await store.readLease();
      if (holder && holder.expiresMs > Date.now()) {
        console.error(
          `rooms: skipped: a server runs on this database (node ${holder.nodeId}); it forgets idle rooms itself when started with --retain-rooms`,
        );
        periods = { ...config, retainRooms: undefined };
      }
    }
    const retention = new Retention(store, periods, log, undefined);
    const now = Date.now();
    const done: RetentionCounts = dryRun ? await retention.count(now) : await retention.pass(now);
    const period: Record<keyof RetentionCounts, number | undefined> = {
      messages: periods.retainMessages,
      room_queries: periods.retainRoomQueries,
      connections: periods.retainConnections,
      rooms: periods.retainRooms,
    };
    for (const [table, ms] of Object.entries(period) as [keyof RetentionCounts, number | undefined][]) {
      if (ms === undefined) continue;
      const cutoff = cutoffOf(now, ms);
      const what =
        table === 'rooms'
          ? `${done.rooms} idle since ${cutoff}`
          : `${done[table]} ${table === 'connections' ? 'closed' : 'rows'} older than ${cutoff}`;
      console.log(`${table}: ${what} ${dryRun ? 'would go' : 'deleted'}`);
    }
  } finally {
    await store.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The record is written or spooled by now; a database call still hanging (a lock held by
    // another session) must not keep the process alive with its port closed.
    setTimeout(() => process.exit(code), 1_000).unref();
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
