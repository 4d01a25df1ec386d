#!/usr/bin/env -S node --max-semi-space-size=32 --heap-growing-percent=20 --no-parallel-scavenge
/**
 * The `room-manager` command: `serve` runs the server, `migrate` brings the database schema up to
 * date. Every setting is a flag or an environment variable (src/config/schema.ts).
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, redactUrl } from '../config/load.js';
import { SETTINGS } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { RoomServer } from '../server.js';
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

const EXIT_CODES = [
  'Exit codes: 0 ok; 1 could not start, or failed while running; 2 bad usage or configuration;',
  '3 the database is held by another running server (one database takes one server).',
];

function usage(command?: Command): string {
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
  const settings =
    command === 'migrate'
      ? SETTINGS.filter((s) => ['databaseUrl', 'logLevel', 'logFormat'].includes(s.key))
      : command === 'prune'
        ? SETTINGS.filter((s) => PRUNE_SETTINGS.includes(s.key))
        : SETTINGS;
  const lines = [
    `Usage: room-manager ${command} [options]`,
    '',
    COMMANDS[command],
    '',
    'Options (flag / environment variable, default):',
  ];
  for (const s of settings) {
    lines.push(`  --${s.flag} <value>   ${s.env}   default ${s.shownDefault}`);
    lines.push(`      ${s.description}`);
  }
  if (command === 'prune')
    lines.push('  --dry-run   Say per table how many rows would go, and delete nothing.');
  lines.push('  -h, --help   Show this help.');
  if (command === 'serve') lines.push('', ...EXIT_CODES);
  return lines.join('\n');
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
    console.error(`Unknown command: ${first}\n\n${usage()}`);
    return 2;
  }
  const command = first as Command;
  if (command === 'bench') {
    // The bench has its own options (room-manager bench --help); loaded only when asked for.
    const { runBench } = await import('../bench/run.js');
    return runBench(rest);
  }

  let flags: Record<string, string | boolean | undefined>;
  try {
    const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
      help: { type: 'boolean', short: 'h' },
    };
    for (const s of SETTINGS) options[s.flag] = { type: 'string' };
    if (command === 'prune') options['dry-run'] = { type: 'boolean' };
    flags = parseArgs({ args: rest, options, strict: true, allowPositionals: false }).values as typeof flags;
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage(command)}`);
    return 2;
  }
  if (flags.help) {
    console.log(usage(command));
    return 0;
  }

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
    const store = openStore(config.databaseUrl);
    try {
      const applied = await store.migrate();
      log.info(
        { database: redactUrl(config.databaseUrl), applied },
        applied.length ? 'migrations applied' : 'schema is up to date',
      );
    } finally {
      await store.close();
    }
    return 0;
  }

  if (command === 'prune') return prune(config, flags['dry-run'] === true);

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
    log.fatal({ err }, 'could not start');
    await server.stop().catch(() => undefined);
    return 1;
  }
  // Until a signal, or until the server stops by itself (it logged why).
  const stoppedByItself = await new Promise<boolean>((resolve) => {
    const end = (byItself: boolean) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(byItself);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down');
      end(false);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void server.fatal.then(() => end(true));
  });
  await server.stop();
  return stoppedByItself ? 1 : 0;
}

const PRUNE_SETTINGS = [
  'databaseUrl',
  'retainMessages',
  'retainRoomQueries',
  'retainConnections',
  'retainRooms',
  'logLevel',
  'logFormat',
];

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
