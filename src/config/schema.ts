/**
 * The one configuration schema. Every setting has a CLI flag, an environment variable, a
 * default and a description; `room-manager serve --help` and the README table are made from
 * this list, so a new setting is added here and nowhere else.
 */
import { z } from 'zod';
import { PAUSE_BUDGET_MS } from './writer-pacing.js';

/** A whole number in [min, max]; anything else (abc, 1.5, 1e3, an empty value) is told so plainly. */
const int = (min: number, max: number) => {
  const expected = { error: `expected a whole number from ${min} to ${max}` };
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
    z.number(expected).int(expected).min(min, expected).max(max, expected),
  );
};
const list = z.union([z.array(z.string()), z.string()]).transform((v) =>
  (Array.isArray(v) ? v : v.split(','))
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean),
);

/** A switch: the flag gives true (--x) or false (--no-x); the environment variable true/false/1/0. */
const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: 'expected true, false, 1 or 0' })
  .transform((v) => v === true || v === 'true' || v === '1');

const DURATION_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `30d`, `12h`, `90m`, `45s` → milliseconds; empty → undefined (no limit). */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const m = /^(\d+)\s*([smhd])$/i.exec(t);
  if (!m || Number(m[1]) === 0) return Number.NaN;
  return Number(m[1]) * DURATION_UNITS_MS[m[2]!.toLowerCase()]!;
}

const duration = () =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const ms = typeof v === 'number' ? v : parseDuration(v);
      if (ms !== undefined && !(Number.isSafeInteger(ms) && ms > 0)) {
        ctx.addIssue({
          code: 'custom',
          message: 'expected a duration such as 30d, 12h, 90m or 45s (a whole number and s, m, h or d)',
        });
        return z.NEVER;
      }
      return ms;
    });

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
  /** A switch: `--flag` alone means true, `--no-flag` false (the variable takes true/false/1/0). */
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
    key: 'metricsPort',
    flag: 'metrics-port',
    env: 'METRICS_PORT',
    // Unset: /metrics on the server's port, nothing more to open. A port of its own lets the
    // public port stay without it (the firewall or the load balancer lets only Prometheus in).
    schema: int(0, 65535).optional(),
    shownDefault: '(the server port)',
    description:
      'TCP port that serves /metrics (Prometheus) instead of the server port, on the same --host (0 = any free port, logged at start). Unset: /metrics is served on the server port.',
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
    // record writer's thread has a pool of its own (2 connections), so 10 is plenty.
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
    key: 'leaseTtlMs',
    flag: 'lease-ttl-ms',
    env: 'LEASE_TTL_MS',
    // A server that crashed on another host holds its database until its lease expires: this
    // bounds how long a replacement must wait. Renewals come every third of it, so two may fail
    // (a database restart) before the lease runs out.
    schema: int(1000, 600_000).default(15_000),
    shownDefault: '15000',
    description:
      "The writer lease: how long a server's hold on its database lasts unless renewed (every third of it), in milliseconds. Another server on that database refuses to start while it holds.",
  },
  {
    key: 'redisUrl',
    flag: 'redis-url',
    env: 'REDIS_URL',
    // Unset: one node, and Redis is never touched.
    schema: z.string().default(''),
    shownDefault: '(none: one node)',
    description:
      'Cluster mode: redis://[USER:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS). Every node on the same Redis and the same MySQL/MariaDB or PostgreSQL database serves one room space; SQLite is refused. See docs/scaling.md.',
  },
  {
    key: 'redisPrefix',
    flag: 'redis-prefix',
    env: 'REDIS_PREFIX',
    // Lets several clusters (or a test run) share one Redis without seeing each other.
    schema: z.string().min(1).max(64).default('rm:'),
    shownDefault: 'rm:',
    description: 'Cluster mode: the prefix of every Redis key and channel this cluster uses.',
  },
  {
    key: 'nodeTtlMs',
    flag: 'node-ttl-ms',
    env: 'NODE_TTL_MS',
    // A killed node's members leave the rooms within about 1⅓ of this (the others look every third
    // of it); two heartbeats may be lost to a Redis hiccup before a live node counts as dead.
    schema: int(600, 600_000).default(10_000),
    shownDefault: '10000',
    description:
      'Cluster mode: a node that has not renewed its heartbeat for this long (ms) is dead: its members leave their rooms (member_left) and its connections are recorded closed, by the first other node to notice.',
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
    key: 'allowedOrigins',
    flag: 'allowed-origins',
    env: 'ALLOWED_ORIGINS',
    // Empty = any origin, as the original: the server cannot know which sites host its clients.
    // Set it when browsers connect, so other sites' pages cannot connect on a visitor's behalf.
    schema: list.default([]),
    shownDefault: '(any)',
    description:
      'Comma-separated origins (scheme://host[:port]) whose browser pages may connect; an upgrade with another Origin gets HTTP 403. Requests without Origin (non-browser clients) are allowed.',
  },
  {
    key: 'jwtSecret',
    flag: 'jwt-secret',
    env: 'JWT_SECRET',
    // Authentication is off by default so that existing clients (which send no token) keep
    // working; a shared secret has no sensible default. Prefer the variable: flags show in `ps`.
    schema: z.string().default(''),
    shownDefault: '(none)',
    description:
      'Turns authentication on with HS256 tokens signed with this shared secret (at least 32 bytes). Every hello then needs a valid JWT whose sub is its device_id (docs/security.md).',
  },
  {
    key: 'jwtPublicKey',
    flag: 'jwt-public-key',
    env: 'JWT_PUBLIC_KEY',
    // Off by default, as --jwt-secret. A public key lets the server verify without being able to mint.
    schema: z.string().default(''),
    shownDefault: '(none)',
    description:
      'Turns authentication on with tokens signed by the private half of this PEM public key file: RSA → RS256, P-256 → ES256, Ed25519 → EdDSA.',
  },
  {
    key: 'jwtJwks',
    flag: 'jwt-jwks',
    env: 'JWT_JWKS',
    // Off by default, as --jwt-secret. A key set allows rotation: tokens name their key by kid.
    schema: z.string().default(''),
    shownDefault: '(none)',
    description:
      'Turns authentication on with tokens signed by a key of this JWKS file ({"keys":[…]}; RS256, ES256, EdDSA).',
  },
  {
    key: 'jwtIssuer',
    flag: 'jwt-issuer',
    env: 'JWT_ISSUER',
    // Unchecked by default: many backends mint without iss. Set it when the key is shared.
    schema: z.string().default(''),
    shownDefault: '(not checked)',
    description: 'With authentication on: the iss claim every token must carry.',
  },
  {
    key: 'jwtAudience',
    flag: 'jwt-audience',
    env: 'JWT_AUDIENCE',
    // Unchecked by default, as --jwt-issuer. Set it when the same issuer mints for other services.
    schema: z.string().default(''),
    shownDefault: '(not checked)',
    description: 'With authentication on: the aud claim every token must carry (or include).',
  },
  {
    key: 'tlsCert',
    flag: 'tls-cert',
    env: 'TLS_CERT',
    // Plain ws:// by default, as the original (TLS was nginx's job); a certificate is per host.
    schema: z.string().default(''),
    shownDefault: '(none)',
    description:
      'PEM certificate (chain) file: with --tls-key, the port serves wss:// and https:// directly.',
  },
  {
    key: 'tlsKey',
    flag: 'tls-key',
    env: 'TLS_KEY',
    // As --tls-cert: both or neither.
    schema: z.string().default(''),
    shownDefault: '(none)',
    description: 'PEM private key file of --tls-cert.',
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
    key: 'rateLimitPerSecond',
    flag: 'rate-limit-per-second',
    env: 'RATE_LIMIT_PER_SECOND',
    // A 60 Hz controller sends 60/s and the bench's busiest sender ~400/s: both pass untouched;
    // a flood from one connection is refused long before it costs the room anything.
    schema: int(1, 1_000_000).default(1000),
    shownDefault: '1000',
    description:
      'Messages per second a connection may send after its hello (token bucket). Past it frames are refused with error rate_limited; a sender that keeps going is closed 4029.',
  },
  {
    key: 'rateLimitBurst',
    flag: 'rate-limit-burst',
    env: 'RATE_LIMIT_BURST',
    // Two seconds' worth: a client that reconnects and flushes its outbox is not punished.
    schema: int(1, 10_000_000).default(2000),
    shownDefault: '2000',
    description: 'Messages a connection may send at once above the rate (the bucket size).',
  },
  {
    key: 'maxConnectionsPerIp',
    flag: 'max-connections-per-ip',
    env: 'MAX_CONNECTIONS_PER_IP',
    // Room for a large office behind one NAT address; far below what one server holds.
    schema: int(0, 10_000_000).default(256),
    shownDefault: '256',
    description:
      'Open connections one client IP may have (0 = no limit); the next gets error too_many_connections and close 4029.',
  },
  {
    key: 'failedJoinsPerMinute',
    flag: 'failed-joins-per-minute',
    env: 'FAILED_JOINS_PER_MINUTE',
    // A person mistypes a code a few times. At 10 a minute, one address needs on average ~530
    // years to hit one of 1,000 live codes among 36^8 (~6 months for one of a million).
    schema: int(0, 1_000_000).default(10),
    shownDefault: '10',
    description:
      'Hellos / join_rooms naming a room that does not exist that one IP may make per minute (0 = no limit); past it, room codes from that IP are refused (too_many_failed_joins, close 4029).',
  },
  {
    key: 'limitLoopback',
    flag: 'limit-loopback',
    env: 'LIMIT_LOOPBACK',
    boolean: true,
    // Loopback peers are local: a reverse proxy on the same host without --trusted-proxies would
    // otherwise put every client under one address, and local load tests open thousands.
    schema: bool.default(false),
    shownDefault: 'false',
    description:
      'Apply the per-IP connection limit to loopback clients too (127.0.0.0/8, ::1); the failed-join limit always applies.',
  },
  {
    key: 'maxBufferedBytes',
    flag: 'max-buffered-bytes',
    env: 'MAX_BUFFERED_BYTES',
    // A reader that stalls cannot make the server hold more than this for it.
    schema: int(16_384, 1024 * 1024 * 1024).default(1_048_576),
    shownDefault: '1048576',
    description:
      'Unsent bytes a client may have waiting; past it the client is cut (slow consumer, recorded with 4010).',
  },
  {
    key: 'pingIntervalMs',
    flag: 'ping-interval-ms',
    env: 'PING_INTERVAL_MS',
    // Half a minute finds a phone that vanished within a minute, with one tiny frame per interval.
    schema: int(0, 3_600_000).default(30_000),
    shownDefault: '30000',
    description:
      'The server pings every client this often; one that has not answered the previous ping is cut and recorded as disconnected (4011). 0 = off.',
  },
  {
    key: 'maxRoomMembers',
    flag: 'max-room-members',
    env: 'MAX_ROOM_MEMBERS',
    // Far above a device-pairing room; bounds the cost of one message's fan-out.
    schema: int(0, 10_000_000).default(1000),
    shownDefault: '1000',
    description:
      'Most connections in one room (0 = no limit); a hello into a full room gets room_full and close 4015.',
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
    // A batch is what accumulated during one flush interval (or this many), so the cap matters
    // only when the writer is behind, and there it sets the pace: each batch waits for event-loop
    // turns (its hand-off, then its commit's answer), and an overloaded relay's turns last
    // 100-300 ms. Measured at 80,000 msg/s offered (relay 500×2, SQLite): 20,000-row batches
    // went through at ~57,000 rows/s, the queue reached its bound and reading paused
    // (41,000-43,000 msg/s delivered); with 100,000 the batches settled at 20,000-55,000 rows,
    // the writer kept up and 75,000-78,000 msg/s were delivered.
    schema: int(1, 1_000_000).default(100_000),
    shownDefault: '100000',
    description: 'Most records the batching writer puts in one transaction.',
  },
  {
    key: 'writerFlushMs',
    flag: 'writer-flush-ms',
    env: 'WRITER_FLUSH_MS',
    // Records reach the database within ~this long. Longer means larger transactions but longer
    // bursts of writer work beside the relay. Relay 500×2 at 16,275 msg/s on SQLite, 2 cores
    // shared with the load generator, rounds alternated with the ceiling: median p99 of 8.1 ms
    // (6 rounds) and 10.4 ms (8 rounds) at 50 against 11.3 and 12.9 ms at 200 (the ceiling's
    // 5.7 and 5.5), 18 ms at 1000; server CPU the same (66 % on average). At 60,000 msg/s, 50
    // delivered 58,500-60,100 msg/s and 200 delivered 60,300.
    schema: int(0, 60_000).default(50),
    shownDefault: '50',
    description: 'Longest a record waits in memory before the writer flushes it.',
  },
  {
    key: 'writerQueueMax',
    flag: 'writer-queue-max',
    env: 'WRITER_QUEUE_MAX',
    // A few tens of MB of typical messages. While the database answers but is slower than the
    // clients, reading from clients pauses at this many until the queue is down to half
    // (backpressure). While it is away, records go to the spool at every flush anyway.
    schema: int(1, 10_000_000).default(100_000),
    shownDefault: '100000',
    description:
      'Most records waiting in memory while the database is slower than the clients: reading from clients pauses until it catches up. (While the database is away, records go to the spool at every flush.)',
  },
  {
    key: 'writerTimeoutMs',
    flag: 'writer-timeout-ms',
    env: 'WRITER_TIMEOUT_MS',
    // Far above a healthy batch (100,000 rows: about 5 s at the ~20,000 rows/s MariaDB takes here) and
    // below MariaDB's 50 s lock wait; without a bound, a write stuck on a lock kept reading
    // paused for as long as the lock lasted.
    schema: int(100, 3_600_000).default(30_000),
    shownDefault: '30000',
    description:
      'Longest a batch write may go unanswered before the database counts as failing: reading from clients resumes and records spool until writes succeed again.',
  },
  {
    key: 'writerNice',
    flag: 'writer-nice',
    env: 'WRITER_NICE',
    // SQLite only. Measured on 2 cores shared with the load generator, relay 500×2: at nice 10 the
    // thread got ~14 % of a core and fell behind at 59,000 msg/s; at 0 it kept up (pending under
    // 15,000 records) with no p99 difference at a quarter of that load.
    schema: int(0, 19).default(0),
    shownDefault: '0',
    description:
      'Nice value of the SQLite writer thread (0 normal, 19 lowest): higher favours relay latency over keeping the record up to date.',
  },
  {
    key: 'writerSliceMs',
    flag: 'writer-slice-ms',
    env: 'WRITER_SLICE_MS',
    // SQLite only. A pause as long as each slice of batch work (PAUSE_BUDGET_MS at most), so that
    // the writer's CPU comes in short runs beside the relay: see Pacer (store/pacer.ts).
    // Relay 500×2 at 18,000 msg/s, 9 rounds alternated: median p99 3.5 ms at 1 against 4.0 ms at 0
    // (the ceiling's 1.9-2.5); saturation the same (88,000-90,000 msg/s at 90,000 offered).
    schema: int(0, 1000).default(1),
    shownDefault: '1',
    description: `SQLite only: the writer thread pauses as long after each this many ms of work in a batch (up to ${PAUSE_BUDGET_MS} ms a batch), which keeps its CPU from crowding the relay; 0 writes each batch in one go.`,
  },
  {
    key: 'drainMs',
    flag: 'drain-ms',
    env: 'DRAIN_MS',
    // Long enough that the clients' reconnects spread over the other nodes instead of landing in
    // one instant; short enough that with the shutdown timeout it stays under the stop timeouts
    // of Kubernetes (30 s) and systemd (90 s).
    schema: int(0, 600_000).default(5_000),
    shownDefault: '5000',
    description:
      'On SIGTERM/SIGINT, clients are closed with 1012 (reconnect) in batches spread over this many ms, the others working until their turn; new connections are refused. 0 = all at once.',
  },
  {
    key: 'shutdownTimeoutMs',
    flag: 'shutdown-timeout-ms',
    env: 'SHUTDOWN_TIMEOUT_MS',
    // Under the 30 s that Kubernetes and systemd give a stopping process before they kill it, so
    // that what the database has not taken by then is in the spool, not lost with the process.
    schema: int(1000, 3_600_000).default(20_000),
    shownDefault: '20000',
    description:
      'Longest a stop (SIGTERM, SIGINT) takes after the drain (--drain-ms): records are written until then; what the database has not taken goes to the spool for the next start, and the process exits.',
  },
  {
    key: 'spoolDir',
    flag: 'spool-dir',
    env: 'SPOOL_DIR',
    // Beside the default SQLite file; local disk, so that an outage of the database costs nothing.
    schema: z.string().min(1).default('./data/spool'),
    shownDefault: './data/spool',
    description:
      'Folder of the spool: records the database could not take yet (fsynced blocks of records), written in order when the database is back and at the next start.',
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
  {
    key: 'retainMessages',
    flag: 'retain-messages',
    env: 'RETAIN_MESSAGES',
    // Empty = keep forever, as the original server does: deleting the record is the operator's call.
    schema: duration(),
    shownDefault: '(keep forever)',
    description:
      'Delete messages older than this (a duration: 90s, 30m, 12h, 30d), in small batches off the hot path.',
  },
  {
    key: 'retainRoomQueries',
    flag: 'retain-room-queries',
    env: 'RETAIN_ROOM_QUERIES',
    // Keep forever by default, as the original.
    schema: duration(),
    shownDefault: '(keep forever)',
    description: 'Delete room queries older than this (s, m, h or d, e.g. 30d).',
  },
  {
    key: 'retainConnections',
    flag: 'retain-connections',
    env: 'RETAIN_CONNECTIONS',
    // Keep forever by default, as the original.
    schema: duration(),
    shownDefault: '(keep forever)',
    description:
      'Delete connections closed longer ago than this (s, m, h or d, e.g. 30d); open connections stay.',
  },
  {
    key: 'retainRooms',
    flag: 'retain-rooms',
    env: 'RETAIN_ROOMS',
    // Keep forever by default, as the original: a room code joins for as long as the database lasts.
    schema: duration(),
    shownDefault: '(keep forever)',
    description:
      'Forget rooms with no member and no message or connection for this long (s, m, h or d, e.g. 90d): the room, its messages, connections and room queries are deleted and its code no longer joins.',
  },
];

const shape: Record<string, z.ZodType> = {};
for (const s of SETTINGS) shape[s.key] = s.schema;

export const ConfigSchema = z.object(shape).strict() as unknown as z.ZodType<Config>;

export interface Config {
  port: number;
  host: string;
  metricsPort: number | undefined;
  databaseUrl: string;
  trustedProxies: string[];
  allowedOrigins: string[];
  jwtSecret: string;
  jwtPublicKey: string;
  jwtJwks: string;
  jwtIssuer: string;
  jwtAudience: string;
  tlsCert: string;
  tlsKey: string;
  helloTimeoutMs: number;
  maxFrameBytes: number;
  sameDevice: 'replace' | 'allow';
  historyWindow: number;
  resumeMaxMessages: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  maxConnectionsPerIp: number;
  failedJoinsPerMinute: number;
  limitLoopback: boolean;
  maxBufferedBytes: number;
  pingIntervalMs: number;
  maxRoomMembers: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  logFormat: 'auto' | 'json' | 'pretty';
  statusIntervalMs: number;
  writerBatchSize: number;
  writerFlushMs: number;
  writerNice: number;
  writerSliceMs: number;
  writerQueueMax: number;
  writerTimeoutMs: number;
  drainMs: number;
  shutdownTimeoutMs: number;
  spoolDir: string;
  dbPoolMax: number;
  dbPoolIdle: number;
  dbTimeoutMs: number;
  leaseTtlMs: number;
  redisUrl: string;
  redisPrefix: string;
  nodeTtlMs: number;
  roomCacheSize: number;
  /** Retention periods in ms; undefined = keep forever. */
  retainMessages: number | undefined;
  retainRoomQueries: number | undefined;
  retainConnections: number | undefined;
  retainRooms: number | undefined;
}
