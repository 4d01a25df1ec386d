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
import { VERSION } from '../version.js';

const COMMANDS = {
  serve: 'Run the server (WebSocket and HTTP on one port).',
  migrate: 'Apply pending database migrations and exit (serve also does this at start).',
  bench: 'Run the benchmark: room-manager beside a minimal relay (the ceiling); see docs/performance.md.',
} as const;
type Command = keyof typeof COMMANDS;

const EXIT_CODES = [
  'Exit codes: 0 ok, also when stopped by SIGTERM/SIGINT (a second one ends the drain at once; the',
  'record is still written or spooled); 1 could not start, or failed while running; 2 bad usage or',
  'configuration; 3 the database is held by another running server (one database takes one server).',
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
