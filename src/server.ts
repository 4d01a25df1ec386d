/**
 * Puts the parts together: store → writer → directory → rooms → bus → transport, on one port
 * that serves WebSocket and HTTP. `start()` and `stop()` are the whole lifecycle.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { redactUrl } from './config/load.js';
import { LocalBus } from './bus/local-bus.js';
import { RedisBus } from './bus/redis-bus.js';
import { RedisLink } from './cluster/redis-link.js';
import { RedisNodes } from './cluster/redis-nodes.js';
import { RedisPresence } from './presence/redis-presence.js';
import type { PresenceEntry } from './presence/presence.js';
import { RedisLastRooms } from './rooms/redis-last-rooms.js';
import { OriginAllowList } from './auth/origins.js';
import { createPortServer, loadTls } from './auth/tls.js';
import { JwtVerifier } from './auth/token-verifier.js';
import { IpLimits } from './limits/ip-limits.js';
import type { Bus } from './bus/bus.js';
import { createHttpHandler, createMetricsHandler } from './http/http-handler.js';
import { createLogger } from './log/logger.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { connectionFrame } from './protocol/encode.js';
import { Directory } from './rooms/directory.js';
import { Lobby } from './rooms/lobby.js';
import { RoomHistory } from './rooms/room-history.js';
import { RoomRegistry } from './rooms/room-registry.js';
import { SeqReservations } from './bus/seq-reservations.js';
import { LocalPresence } from './presence/local-presence.js';
import type { Presence } from './presence/presence.js';
import { RoomChannel } from './rooms/room-channel.js';
import { ServerIds } from './store/server-ids.js';
import { openStore } from './store/open-store.js';
import { sqliteWriterOptions } from './store/sqlite-store.js';
import { RecordWriter, type WriterState } from './store/record-writer.js';
import { legacySpoolFileFor, spoolFileFor } from './store/spool.js';
import type { Store } from './store/store.js';
import { LeaseHeldError, WriterLease, needsWriterLease, newNodeId } from './store/writer-lease.js';
import { Retention, retentionWanted, type RetentionCounts } from './store/retention.js';
import { forgetGuard } from './rooms/forget-guard.js';
import { ClientIpResolver } from './transport/client-ip.js';
import { WsTransport } from './transport/ws-transport.js';
import { VERSION } from './version.js';

/** How long reading stays paused once nothing can be recorded, before messages are refused. */
const STUCK_PAUSE_MS = 1_000;

/** How long closing clients get to finish the closing handshake at shutdown. */
const SHUTDOWN_GRACE_MS = 2_000;

export interface RoomServerOptions {
  logger?: Logger;
}

export interface StopOptions {
  /** Closes the clients in batches over this many ms first (the CLI's --drain-ms); 0 = at once. */
  drainMs?: number;
}

export class RoomServer {
  readonly log: Logger;
  /** This server among others: host, process and a random part (see writer-lease.ts). */
  readonly nodeId = newNodeId();
  private lease: WriterLease | undefined;
  /** Cluster mode (--redis-url): the node's Redis connections and its membership. */
  private link: RedisLink | undefined;
  private nodes: RedisNodes | undefined;
  private connectionIds: ServerIds | undefined;
  private store: Store | undefined;
  private writer: RecordWriter | undefined;
  private registry: RoomRegistry | undefined;
  private directory: Directory | undefined;
  private ipLimits: IpLimits | undefined;
  private bus: Bus | undefined;
  private presence: Presence | undefined;
  private http: HttpServer | undefined;
  /** The --metrics-port listener, when /metrics is served apart. */
  private metricsHttp: HttpServer | undefined;
  private transport: WsTransport | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private retention: Retention | undefined;
  /** Set at stop(): draining while clients are closed in batches, stopping after. */
  private stopping: false | 'draining' | 'stopping' = false;
  private readonly loopHistogram = monitorEventLoopDelay({ resolution: 10 });
  private stopped: Promise<void> | undefined;
  private resolveFatal: (err: Error) => void = () => undefined;
  /**
   * Resolves, once the server has stopped, if it stopped by itself: another server took its
   * database over (its writer lease was lost). Never resolves otherwise.
   */
  readonly fatal = new Promise<Error>((resolve) => (this.resolveFatal = resolve));

  constructor(
    readonly config: Config,
    options: RoomServerOptions = {},
  ) {
    this.log = options.logger ?? createLogger(config);
  }

  /**
   * Opens and migrates the database, takes its writer lease (LeaseHeldError when another server
   * holds it), writes what an earlier process left in the spool, closes connections a crash left
   * open, then listens.
   */
  async start(): Promise<{ port: number; url: string; metricsPort: number | undefined }> {
    const { config, log } = this;
    // Certificate and key files first: one that is missing or unusable stops the start with a
    // message naming its setting, before the database is touched.
    const tls = loadTls(config);
    const tokens = await JwtVerifier.fromConfig(config);
    const store = (this.store = openStore(
      config.databaseUrl,
      { max: config.dbPoolMax, idle: config.dbPoolIdle, connectTimeoutMs: config.dbTimeoutMs },
      log,
      sqliteWriterOptions(config),
    ));
    const applied = await store.migrate();
    if (applied.length) log.info({ migrations: applied }, 'database migrated');
    const cluster = config.redisUrl !== '';
    if (cluster) {
      // Several servers share the database: Redis membership takes the writer lease's place.
      await this.joinCluster(store);
    } else if (needsWriterLease(config.databaseUrl)) {
      // Before anything is written: the spool's records and everything after are this server's.
      const lease = new WriterLease(store, this.nodeId, config.leaseTtlMs, log, (holder) =>
        this.leaseLost(holder),
      );
      try {
        await lease.acquire();
      } catch (err) {
        // A refused start leaves nothing open: there is nothing for the caller to stop.
        if (err instanceof LeaseHeldError) {
          this.store = undefined;
          await store.close();
        }
        throw err;
      }
      this.lease = lease;
    }

    const writer = (this.writer = new RecordWriter(
      store,
      {
        batchSize: config.writerBatchSize,
        flushMs: config.writerFlushMs,
        queueMax: config.writerQueueMax,
        writeTimeoutMs: config.writerTimeoutMs,
        spoolPath: spoolFileFor(config.spoolDir, config.databaseUrl, cluster ? config.port : undefined),
        legacySpoolPath: legacySpoolFileFor(config.spoolDir, config.databaseUrl),
        idSlot: this.nodes?.slot(),
      },
      log,
    ));
    // Before anything else touches the record: the spool holds the oldest records (connections
    // among them, which the next step closes) and ids the generators must stay above.
    await writer.replaySpool();
    if (!cluster) {
      const closed = await store.closeOpenConnections(new Date().toISOString());
      if (closed) log.warn({ connections: closed }, 'closed connections left open by an earlier crash');
    }
    // Cluster mode: a crashed node's connections are closed by the node that reaps it (RedisNodes).
    writer.roomQueryIds.raise(await store.maxRoomQueryId());

    const metrics = new ServerMetrics({
      connections: () => this.transport?.size ?? 0,
      rooms: () => this.registry?.roomCount ?? 0,
      membersByLevel: () => this.registry?.membersByLevel() ?? [0, 0],
      recordsPending: () => writer.pending,
      recordsSpooled: () => writer.spooled,
      databaseUp: () => !writer.databaseFailing,
      redisUp: () => this.link?.connected,
      retentionDeleted: () => this.retention?.deleted,
    });
    writer.onBatchWritten(metrics.batchWritten);

    const link = this.link;
    const directory = (this.directory = new Directory(
      store,
      writer,
      config.roomCacheSize,
      link && new RedisLastRooms(link, log),
    ));
    const reservations = new SeqReservations(writer);
    const bus = (this.bus = link
      ? new RedisBus({
          link,
          nodeId: this.nodeId,
          historyWindow: config.historyWindow,
          reserve: (roomId, through) => reservations.reserveThrough(roomId, through),
          log,
        })
      : new LocalBus(this.nodeId, reservations));
    // Before listening: a command for this node (replace, kick) must not find it unsubscribed.
    if (bus instanceof RedisBus) await bus.ready();
    const presence = (this.presence = link
      ? new RedisPresence({ link, nodeId: this.nodeId, log })
      : new LocalPresence());
    const registry = (this.registry = new RoomRegistry(directory, bus, presence, {
      sameDevice: config.sameDevice,
      historyWindow: config.historyWindow,
      maxRoomMembers: config.maxRoomMembers,
      traffic: metrics,
    }));
    const ipLimits = (this.ipLimits = new IpLimits(config));
    const connectionIds = (this.connectionIds = new ServerIds(
      await store.maxConnectionId(),
      this.nodes?.slot(),
    ));

    const http = (this.http = createPortServer(
      tls,
      createHttpHandler({
        pingDatabase: () => withTimeout(store.ping(), config.dbTimeoutMs, 'database ping timed out'),
        records: () => ({
          pending: writer.pending,
          spooled: writer.spooled,
          behind: writer.behind,
          writes: writer.state,
          ...(writer.problem && { problem: writer.problem }),
        }),
        stopping: () => this.stopping,
        status: () => this.status(),
        ...(link && { redis: () => (link.connected ? ('up' as const) : ('down' as const)) }),
        metrics: config.metricsPort === undefined ? metrics : undefined,
      }),
    ));
    this.transport = new WsTransport(
      http,
      {
        log,
        lobby: new Lobby(directory),
        registry,
        directory,
        channel: new RoomChannel(bus, writer, metrics),
        nodeId: this.nodeId,
        writer,
        history: new RoomHistory(store, writer, bus),
        connectionIds,
        helloTimeoutMs: config.helloTimeoutMs,
        maxFrameBytes: config.maxFrameBytes,
        resumeMaxMessages: config.resumeMaxMessages,
        maxBufferedBytes: config.maxBufferedBytes,
        ipLimits,
        rateLimitPerSecond: config.rateLimitPerSecond,
        rateLimitBurst: config.rateLimitBurst,
        tokens,
        traffic: metrics,
      },
      new ClientIpResolver(config.trustedProxies),
      log,
      {
        maxFrameBytes: config.maxFrameBytes,
        connectionFrame: connectionFrame(VERSION),
        allowedOrigins: config.allowedOrigins.length ? new OriginAllowList(config.allowedOrigins) : undefined,
        maxBufferedBytes: config.maxBufferedBytes,
        pingIntervalMs: config.pingIntervalMs,
        ipLimits,
      },
    );
    const transport = this.transport;
    new ReadingPolicy(writer, transport);

    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host || undefined, () => {
        http.off('error', reject);
        resolve();
      });
    });
    const port = (http.address() as AddressInfo).port;
    const url = `${tls ? 'wss' : 'ws'}://${urlHost(config.host)}:${port}`;
    const metricsPort =
      config.metricsPort === undefined
        ? undefined
        : await this.listenMetrics(createPortServer(tls, createMetricsHandler(metrics)), config.metricsPort);
    log.info(
      {
        url,
        port,
        ...(metricsPort !== undefined && { metricsPort }),
        node: this.nodeId,
        database: redactUrl(config.databaseUrl),
        version: VERSION,
        auth: tokens ? 'jwt' : 'off',
        allowedOrigins: config.allowedOrigins.length ? config.allowedOrigins : 'any',
      },
      'listening',
    );

    if (retentionWanted(config)) {
      this.retention = new Retention(store, config, log, forgetGuard(registry, directory, writer));
      this.retention.start();
    }
    this.loopHistogram.enable();
    if (config.statusIntervalMs > 0) {
      this.statusTimer = setInterval(() => log.info(this.status(), 'status'), config.statusIntervalMs);
      this.statusTimer.unref();
    }
    return { port, url, metricsPort };
  }

  /** Listens on --metrics-port (same --host); resolves with the port. */
  private async listenMetrics(server: HttpServer, port: number): Promise<number> {
    this.metricsHttp = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.host || undefined, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  /** The spool file of this server's database (records waiting on local disk, if any). */
  get spoolPath(): string | undefined {
    return this.writer?.spoolPath;
  }

  /** A retention pass now (after the one in progress); undefined when no retain-* setting is set. */
  async retentionPass(): Promise<RetentionCounts | undefined> {
    return this.retention?.runNow();
  }

  /** Resolves once every record made so far is in the database. */
  async flushRecords(): Promise<void> {
    await this.writer?.drain();
  }

  status(): Record<string, unknown> {
    return {
      connections: this.transport?.size ?? 0,
      members: this.registry?.connectionCount ?? 0,
      rooms: this.registry?.roomCount ?? 0,
      pendingRecords: this.writer?.pending ?? 0,
      spooledRecords: this.writer?.spooled ?? 0,
      databaseWrites: this.writer?.state ?? 'unknown',
      recordConflicts: this.writer?.conflicts ?? 0,
      ...(this.retention && { retentionDeleted: { ...this.retention.deleted } }),
      ...this.loopDelay(),
      ...memory(),
    };
  }

  /** Event-loop delay since the last status (how long a ready message could wait), in ms. */
  private loopDelay(): Record<string, number> {
    const h = this.loopHistogram;
    const result = { loopDelayP99Ms: round2(h.percentile(99) / 1e6), loopDelayMaxMs: round2(h.max / 1e6) };
    h.reset();
    return result;
  }

  /**
   * Graceful stop: report not ready, refuse new connections, close every client with 1012 (in
   * batches over `drainMs`, at once by default) and record its disconnect, write every pending
   * record, close the database. When the database is away, what cannot be written goes to the
   * spool (the next start writes it) and the stop completes. A call during a drain without
   * `drainMs` ends the drain: the clients not closed yet are closed together.
   */
  stop(options: StopOptions = {}): Promise<void> {
    const drainMs = options.drainMs ?? 0;
    if (this.stopped) {
      if (drainMs === 0) this.transport?.hurry();
      return this.stopped;
    }
    this.stopped = this.doStop(drainMs);
    return this.stopped;
  }

  /**
   * Cluster mode: connects to Redis and joins the nodes (a heartbeat, and an id slot that keeps
   * this node's connection ids apart from the others'). A Redis that does not answer stops the
   * start: the node could serve no room.
   */
  private async joinCluster(store: Store): Promise<void> {
    const { config, log } = this;
    const link = (this.link = new RedisLink({
      url: config.redisUrl,
      prefix: config.redisPrefix,
      nodeId: this.nodeId,
      log,
    }));
    const nodes = new RedisNodes({
      link,
      nodeId: this.nodeId,
      ttlMs: config.nodeTtlMs,
      onReaped: (entries) => this.reaped(entries),
      onSlotChanged: (slot) => {
        this.connectionIds?.useSlot(slot);
        this.writer?.roomQueryIds.useSlot(slot);
      },
      onEvicted: () => this.transport?.restartAll(),
      log,
    });
    try {
      await link.connect();
      await nodes.start();
    } catch (err) {
      // A refused start leaves nothing open: there is nothing for the caller to stop.
      await nodes.stop().catch(() => undefined);
      await link.close().catch(() => undefined);
      this.link = undefined;
      this.store = undefined;
      await store.close();
      throw new ClusterStartError(config.redisUrl, err as Error);
    }
    this.nodes = nodes;
    log.info(
      { node: this.nodeId, slot: nodes.slot(), redis: redactUrl(config.redisUrl) },
      'joined the cluster',
    );
  }

  /** A dead node's connections, just taken out of their rooms: recorded closed (once: we reaped it). */
  private reaped(entries: { roomId: string; entry: PresenceEntry }[]): void {
    const at = new Date().toISOString();
    for (const { entry } of entries) this.writer?.append({ kind: 'connection_close', id: entry.connId, at });
    const nodes = [...new Set(entries.map((e) => e.entry.node))];
    this.log.warn({ nodes, connections: entries.length }, 'dead node reaped: its members left their rooms');
  }

  private async leaveCluster(): Promise<void> {
    await this.nodes
      ?.stop()
      .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'node stop'));
    await this.link?.close().catch(() => undefined);
  }

  /** Another server took the database over (our lease had expired): two writers, so this one stops. */
  private leaseLost(holder: string): void {
    const message = `writer lease lost to node ${holder}`;
    this.log.error({ node: this.nodeId, holder }, `${message}; stopping`);
    void this.stop()
      .catch((err: unknown) => this.log.error({ err }, 'stop failed'))
      .then(() => this.resolveFatal(new Error(message)));
  }

  private async doStop(drainMs: number): Promise<void> {
    // Not ready first (/readyz 503), then no new connections (the port is closed), then the
    // drain: until its batch, a client's messages are relayed, recorded and acked as before.
    this.stopping = 'draining';
    clearInterval(this.statusTimer);
    this.loopHistogram.disable();
    const retentionStopped = this.retention?.stop(); // ends after its statement in progress
    const http = this.http;
    const closedHttp = http ? new Promise<void>((r) => http.close(() => r())) : Promise.resolve();
    await this.transport?.drain(drainMs);
    this.stopping = 'stopping';
    // Scraped through the drain; closed with the rest.
    this.metricsHttp?.close().closeAllConnections();
    // Everything below fits in the shutdown timeout: past it, what is not written is spooled.
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    await this.transport?.shutdown(Math.min(SHUTDOWN_GRACE_MS, this.config.shutdownTimeoutMs / 4));
    this.ipLimits?.close();
    http?.closeAllConnections();
    await closedHttp;
    await this.bus?.close();
    await this.presence?.close();
    await this.leaveCluster();
    // Rooms no longer in memory give their unused seqs back: after a clean stop none is skipped.
    this.directory?.giveBackAll();
    await withTimeout(retentionStopped ?? Promise.resolve(), 1_000, '').catch(() => undefined);
    if (this.writer) await this.closeWriter(this.writer, deadline);
    if (this.lease) {
      // Once every record is written, so that the next server may start at once. Best effort: a
      // lease left behind expires, or is taken over when its process is gone.
      const ms = Math.max(100, Math.min(this.config.dbTimeoutMs, deadline - Date.now()));
      await withTimeout(this.lease.release(), ms, 'lease release timed out').catch((err: unknown) =>
        this.log.debug({ err: (err as Error).message }, 'writer lease not released'),
      );
    }
    if (this.store) {
      // A pool waiting on a dead server must not hold the exit.
      const ms = Math.max(100, Math.min(this.config.dbTimeoutMs, deadline - Date.now()));
      await withTimeout(this.store.close(), ms, 'database close timed out').catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message }, 'database close'),
      );
    }
    this.log.info('stopped');
  }

  /** Writes or spools the record at shutdown, and says which happened. */
  private async closeWriter(writer: RecordWriter, deadline: number): Promise<void> {
    const failing = writer.databaseFailing;
    // A second of the timeout is kept for closing the database and exiting.
    const { written, spooled, lost, timedOut } = await writer.close(deadline - 1_000);
    const spool = writer.spoolPath;
    if (lost > 0) {
      this.log.error(
        { written, spooled, lost, spool, problem: writer.problem },
        'records lost at shutdown: neither the database nor the spool took them',
      );
    } else if (spooled > 0) {
      this.log.warn(
        { written, spooled, spool },
        timedOut
          ? 'record writes timed out at shutdown: records spooled for the next start'
          : failing
            ? 'database unavailable at shutdown: records spooled for the next start'
            : 'database writes failed at shutdown: records spooled for the next start',
      );
    } else {
      this.log.info({ records: written }, 'pending records written');
    }
  }
}

/**
 * When the server reads from clients, by the record writer's state. Behind: not at all, until
 * the database catches up (backpressure). Stuck (nothing can be recorded): not for a moment, in
 * case the spool or the database comes straight back; then again, so that each message is
 * answered `unavailable` (refused, not delivered) rather than left unread without a word.
 */
class ReadingPolicy {
  private refusing = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    writer: RecordWriter,
    private readonly transport: WsTransport,
  ) {
    writer.onState((state) => this.onState(state));
  }

  private onState(state: WriterState): void {
    clearTimeout(this.timer);
    if (state === 'stuck') {
      this.timer = setTimeout(() => {
        this.refusing = true;
        this.transport.pauseReading(false, 'nothing can be recorded: reading again, every message refused');
      }, STUCK_PAUSE_MS);
      this.timer.unref();
    }
    const wasRefusing = this.refusing;
    this.refusing = false;
    if (state === 'behind') {
      this.transport.pauseReading(true, 'the database is behind the record: reading from clients paused');
    } else if (state === 'stuck') {
      this.transport.pauseReading(
        true,
        'neither the database nor the spool takes records: reading from clients paused',
      );
    } else {
      this.transport.pauseReading(
        false,
        wasRefusing || state === 'failing'
          ? 'records are kept again: reading from clients resumed'
          : 'the database caught up: reading from clients resumed',
      );
    }
  }
}

/** Rejects with `message` when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function round2(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 100) / 100 : 0;
}

function urlHost(host: string): string {
  if (!host || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** Memory in MiB: the process (RSS), the JS heap, and buffers outside it (socket data). */
function memory(): Record<string, number> {
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round(n / 104857.6) / 10;
  // The young generation (new space) and the old one move separately: a soak tells them apart.
  let newSpace = 0;
  let oldSpace = 0;
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === 'new_space') newSpace = s.space_size;
    else if (s.space_name === 'old_space') oldSpace = s.space_size;
  }
  return {
    rssMiB: mib(m.rss),
    heapTotalMiB: mib(m.heapTotal),
    heapUsedMiB: mib(m.heapUsed),
    newSpaceMiB: mib(newSpace),
    oldSpaceMiB: mib(oldSpace),
    externalMiB: mib(m.external),
  };
}

/** Cluster mode could not start: Redis did not answer (or has no slot left). One line for the CLI. */
export class ClusterStartError extends Error {
  override name = 'ClusterStartError';
  constructor(url: string, cause: Error) {
    super(`cluster mode: Redis at ${redactUrl(url)} is unavailable: ${cause.message}`);
  }
}
