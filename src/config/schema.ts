/**
 * The one configuration schema. Every setting has a CLI flag, an environment variable, a
 * default and a description; `room-manager serve --help` and the README table are made from
 * this list, so a new setting is added here and nowhere else.
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const list = z.union([z.array(z.string()), z.string()]).transform((v) =>
  (Array.isArray(v) ? v : v.split(','))
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean),
);

export interface SettingSpec {
  /** Key in the parsed Config object. */
  key: string;
  /** Long CLI flag without the dashes. */
  flag: string;
  /** Environment variable. */
  env: string;
  /** Shown by --help and in the README. */
  description: string;
  /** Default as shown to a person. */
  shownDefault: string;
  /** Whether the flag takes no value (`--flag` alone means true). */
  boolean?: boolean;
  schema: z.ZodType;
}

// Each entry: the setting, its default, and why the default is what it is.
export const SETTINGS: SettingSpec[] = [
  {
    key: 'port',
    flag: 'port',
    env: 'PORT',
    // 8765 is the original server's port; existing clients connect there. 0 picks a free port.
    schema: int(0, 65535).default(8765),
    shownDefault: '8765',
    description: 'TCP port for WebSocket and HTTP (0 = any free port, logged at start).',
  },
  {
    key: 'host',
    flag: 'host',
    env: 'HOST',
    // Empty = every interface, IPv6 and IPv4 alike (Node's default), as the original listened.
    schema: z.string().default(''),
    shownDefault: '(all interfaces)',
    description: 'Address to listen on.',
  },
  {
    key: 'databaseUrl',
    flag: 'database-url',
    env: 'DATABASE_URL',
    // Embedded SQLite so that a fresh machine needs nothing else; the folder is created.
    schema: z.string().min(1).default('sqlite:./data/room-manager.db'),
    shownDefault: 'sqlite:./data/room-manager.db',
    description:
      'Where the record is kept: sqlite:PATH (sqlite::memory: for a throwaway database), mysql://USER:PASSWORD@HOST:PORT/DB (MySQL 5.7+, MariaDB 10.6+) or postgres://USER:PASSWORD@HOST:PORT/DB.',
  },
  {
    key: 'dbPoolMax',
    flag: 'db-pool-max',
    env: 'DB_POOL_MAX',
    // The original Go server's pool: SetMaxOpenConns(10). Reads happen only at hello time and the
    // writer uses one connection, so 10 is plenty.
    schema: int(1, 1000).default(10),
    shownDefault: '10',
    description: 'MySQL/PostgreSQL: most open database connections.',
  },
  {
    key: 'dbPoolIdle',
    flag: 'db-pool-idle',
    env: 'DB_POOL_IDLE',
    // The original's SetMaxIdleConns(5): half the pool stays warm, the rest is closed when idle.
    schema: int(0, 1000).default(5),
    shownDefault: '5',
    description: 'MySQL/PostgreSQL: most idle connections kept open (at most --db-pool-max).',
  },
  {
    key: 'dbTimeoutMs',
    flag: 'db-timeout-ms',
    env: 'DB_TIMEOUT_MS',
    // Short, so that during an outage a hello that needs the database is answered `unavailable`
    // within seconds instead of hanging, and /readyz answers promptly.
    schema: int(100, 120_000).default(3000),
    shownDefault: '3000',
    description: 'MySQL/PostgreSQL connect timeout, and the /readyz database ping timeout, in milliseconds.',
  },
  {
    key: 'trustedProxies',
    flag: 'trusted-proxies',
    env: 'TRUSTED_PROXIES',
    // Nobody is trusted by default: X-Forwarded-For from an untrusted peer is spoofable.
    schema: list.default([]),
    shownDefault: '(none)',
    description:
      'Comma-separated IPs or CIDRs of reverse proxies whose X-Real-IP / X-Forwarded-For are believed.',
  },
  {
    key: 'helloTimeoutMs',
    flag: 'hello-timeout-ms',
    env: 'HELLO_TIMEOUT_MS',
    // Long enough for a phone on a bad network, short enough that idle sockets do not pile up.
    schema: int(100, 600_000).default(10_000),
    shownDefault: '10000',
    description: 'A connection that sends no hello within this many milliseconds is closed.',
  },
  {
    key: 'maxFrameBytes',
    flag: 'max-frame-bytes',
    env: 'MAX_FRAME_BYTES',
    // 64 KiB fits any realistic control/state message and bounds per-frame memory.
    schema: int(1024, 16 * 1024 * 1024).default(65_536),
    shownDefault: '65536',
    description:
      'Largest accepted frame in bytes. Larger frames get error payload_too_large; frames over 4x are cut with close 1009.',
  },
  {
    key: 'sameDevice',
    flag: 'same-device',
    env: 'SAME_DEVICE',
    // A phone that reconnects before its old socket timed out should not appear twice.
    schema: z.enum(['replace', 'allow']).default('replace'),
    shownDefault: 'replace',
    description:
      'A second connection of a device_id in the same room: replace closes the older one (4009); allow keeps both.',
  },
  {
    key: 'historyWindow',
    flag: 'history-window',
    env: 'HISTORY_WINDOW',
    // A phone that switches networks misses seconds of traffic: a few hundred messages per room
    // serve most resumes from memory. Rooms of Level 1 clients only keep none (they cannot resume).
    schema: int(0, 100_000).default(256),
    shownDefault: '256',
    description:
      'Last messages each room keeps in memory (once a Level 2 client joined it) for resume and history; older ones are read from the database. 0 = always the database.',
  },
  {
    key: 'resumeMaxMessages',
    flag: 'resume-max-messages',
    env: 'RESUME_MAX_MESSAGES',
    // Bounds the replay a single reconnect can ask for; a device gone longer starts fresh.
    schema: int(1, 1_000_000).default(10_000),
    shownDefault: '10000',
    description:
      'Most messages a Level 2 resume replays; a device that missed more gets recovered: false and goes live.',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'LOG_LEVEL',
    // info: one line per connect, room assignment, disconnect and error; never per message.
    schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    shownDefault: 'info',
    description: 'trace | debug | info | warn | error | fatal | silent.',
  },
  {
    key: 'logFormat',
    flag: 'log-format',
    env: 'LOG_FORMAT',
    // auto: human-readable on a terminal, JSON lines otherwise (for log shippers).
    schema: z.enum(['auto', 'json', 'pretty']).default('auto'),
    shownDefault: 'auto',
    description: 'auto (pretty on a terminal, JSON otherwise) | json | pretty.',
  },
  {
    key: 'statusIntervalMs',
    flag: 'status-interval-ms',
    env: 'STATUS_INTERVAL_MS',
    // The original printed its status report every minute.
    schema: int(0, 86_400_000).default(60_000),
    shownDefault: '60000',
    description: 'Interval of the status log line (live connections, active rooms); 0 turns it off.',
  },
  {
    key: 'writerBatchSize',
    flag: 'writer-batch-size',
    env: 'WRITER_BATCH_SIZE',
    // Large transactions amortise commit cost (each dirty index page is written once per commit).
    schema: int(1, 100_000).default(5000),
    shownDefault: '5000',
    description: 'Most records the batching writer puts in one transaction.',
  },
  {
    key: 'writerFlushMs',
    flag: 'writer-flush-ms',
    env: 'WRITER_FLUSH_MS',
    // Records reach the database within ~this long; longer means larger, cheaper transactions
    // (measured: SQLite rows cost 6 µs in batches of ~4000, 14 µs in batches of ~750).
    schema: int(0, 60_000).default(200),
    shownDefault: '200',
    description: 'Longest a record waits in memory before the writer flushes it.',
  },
  {
    key: 'writerQueueMax',
    flag: 'writer-queue-max',
    env: 'WRITER_QUEUE_MAX',
    // Records waiting in memory while the database is away (a few tens of MB of typical
    // messages); past this they go to the spool file, so memory stays bounded in a long outage.
    schema: int(1, 10_000_000).default(100_000),
    shownDefault: '100000',
    description:
      'Most records waiting in memory for the database; past this they are appended to the spool file.',
  },
  {
    key: 'spoolDir',
    flag: 'spool-dir',
    env: 'SPOOL_DIR',
    // Beside the default SQLite file; local disk, so that an outage of the database costs nothing.
    schema: z.string().min(1).default('./data/spool'),
    shownDefault: './data/spool',
    description:
      'Folder of the spool: records that could not be written yet (JSON lines), replayed in order when the database is back and at the next start.',
  },
  {
    key: 'roomCacheSize',
    flag: 'room-cache-size',
    env: 'ROOM_CACHE_SIZE',
    // Known room and device entries kept in memory so that hellos rarely read the database.
    schema: int(0, 10_000_000).default(100_000),
    shownDefault: '100000',
    description: 'How many known rooms and devices are cached in memory (0 = always ask the database).',
  },
];

const shape: Record<string, z.ZodType> = {};
for (const s of SETTINGS) shape[s.key] = s.schema;

export const ConfigSchema = z.object(shape).strict() as unknown as z.ZodType<Config>;

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  trustedProxies: string[];
  helloTimeoutMs: number;
  maxFrameBytes: number;
  sameDevice: 'replace' | 'allow';
  historyWindow: number;
  resumeMaxMessages: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  logFormat: 'auto' | 'json' | 'pretty';
  statusIntervalMs: number;
  writerBatchSize: number;
  writerFlushMs: number;
  writerQueueMax: number;
  spoolDir: string;
  dbPoolMax: number;
  dbPoolIdle: number;
  dbTimeoutMs: number;
  roomCacheSize: number;
}
