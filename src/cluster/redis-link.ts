/**
 * The node's two connections to Redis, shared by RedisBus, RedisPresence and RedisNodes: one for
 * commands and Lua scripts, one for subscriptions. Every channel of this node is on the one
 * subscriber connection, so a room's presence events and messages arrive in the order Redis
 * published them.
 *
 * While either connection is down the link is not `connected`: commands fail at once instead of
 * queueing (a message must be refused, not numbered minutes later), and ioredis reconnects with
 * backoff. The subscriber's channels are subscribed again by the link itself before it reports
 * `connected`, so that a listener of `onState(true)` may read state knowing that every event
 * published from then on reaches it.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisLinkOptions {
  url: string;
  /** Put before every key and channel name (several clusters or test runs can share a Redis). */
  prefix: string;
  /** This node's id: the heartbeat connection is named after it (see heartbeatClientName). */
  nodeId?: string;
  log: Logger;
}

/**
 * The client name of a node's heartbeat connection, as CLIENT LIST shows it: the other nodes
 * look for it before they reap a node whose heartbeat lapsed (see RedisNodes).
 */
export function heartbeatClientName(prefix: string, nodeId: string): string {
  return `${prefix}node:${nodeId}`.replace(/[^A-Za-z0-9:_.-]/g, '_');
}

/** Receives a channel's messages, as bytes (payloads are UTF-8 JSON with framing: see the bus). */
export type ChannelHandler = (message: Buffer) => void;

/** Told when the link is cut off (false) and when it is back, channels subscribed again (true). */
export type LinkStateListener = (connected: boolean) => void;

/** A Lua script run with EVALSHA (loaded again by ioredis after Redis restarted without it). */
export interface LuaScript {
  /** Unique among the scripts of a link (it becomes a command name). */
  name: string;
  lua: string;
  /** How many of the arguments are keys (they come first). */
  keys: number;
  readOnly?: boolean;
}

export type ScriptArg = string | number | Buffer;

/** A command refused because the link is cut off from Redis. */
export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/** Longest wait between two reconnection attempts. */
const MAX_RETRY_DELAY_MS = 2_000;
/**
 * A connection whose pending command gets no byte back within this is taken for dead and
 * reconnected (a cut without a reset: only silence shows it). Well above the event-loop stalls
 * a busy node goes through (thousands of clients closing at once): the socket's timer fires on
 * the first turn after a stall, before the replies that did come are read, and a false cut
 * costs a reconnect, a resubscription and a presence rebuild.
 */
const SOCKET_TIMEOUT_MS = 15_000;
/** How long a connection attempt may take. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Each connection is pinged this often, so a dead subscriber is noticed too (it sends nothing). */
const PING_EVERY_MS = 1_000;
/** Channels per SUBSCRIBE when subscribing again after a reconnect. */
const SUBSCRIBE_CHUNK = 1_000;

export class RedisLink {
  readonly prefix: string;
  /** The command connection: plain commands for the other cluster parts. */
  readonly commands: Redis;
  private readonly subscriber: Redis;
  /**
   * Heartbeats only (RedisNodes): on the command connection a heartbeat could wait behind
   * thousands of presence scripts (a mass disconnect, a rebuild after a cut) past the node TTL,
   * and the others would take this live node for dead.
   */
  private readonly heartbeats: Redis;
  private readonly heartbeatScripts = new Set<string>();
  private readonly handlers = new Map<string, ChannelHandler>();
  private readonly stateListeners: LinkStateListener[] = [];
  private readonly definedScripts = new Set<string>();
  private readonly log: Logger;
  private readonly safeUrl: string;
  private readonly pinger: NodeJS.Timeout;
  private commandsReady = false;
  private subscriberReady = false;
  /** Bumped at each subscriber close: a resubscription begun before it must not report ready. */
  private subscriberEpoch = 0;
  private isConnected = false;
  private hasBeenConnected = false;
  private cutOffSince: number | undefined;
  private lastError: string | undefined;
  private closed = false;

  constructor(options: RedisLinkOptions) {
    this.prefix = options.prefix;
    this.log = options.log;
    this.safeUrl = redactUrl(options.url);
    const common: RedisOptions = {
      // Capped backoff: a Redis that comes back is found within a couple of seconds.
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), MAX_RETRY_DELAY_MS),
      // Fail fast: a command sent while cut off, or in flight when the connection dropped, is
      // rejected at once; resending it later could number a message twice.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // The link subscribes again itself, then reports connected (see the file comment).
      autoResubscribe: false,
      socketTimeout: SOCKET_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
    };
    // Commands made in one turn of the event loop go out in one write (a burst of joins or
    // leaves, a room's publishes): one syscall for many instead of one each.
    this.commands = new Redis(options.url, {
      ...common,
      connectionName: 'room-manager',
      enableAutoPipelining: true,
    });
    this.subscriber = new Redis(options.url, { ...common, connectionName: 'room-manager-sub' });
    this.heartbeats = new Redis(options.url, {
      ...common,
      connectionName: options.nodeId
        ? heartbeatClientName(options.prefix, options.nodeId)
        : 'room-manager-nodes',
    });
    this.heartbeats.on('error', () => undefined); // its failures are the heartbeat's to report

    for (const connection of [this.commands, this.subscriber]) {
      connection.on('error', (err: Error) => {
        this.lastError = err.message || String(err);
      });
    }
    this.commands.on('ready', () => {
      this.commandsReady = true;
      this.updateState();
    });
    this.commands.on('close', () => {
      this.commandsReady = false;
      this.updateState();
    });
    this.subscriber.on('ready', () => void this.subscribeAgain());
    this.subscriber.on('close', () => {
      this.subscriberEpoch++;
      this.subscriberReady = false;
      this.updateState();
    });
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      this.handlers.get(channel.toString())?.(message);
    });

    this.pinger = setInterval(() => {
      for (const connection of [this.commands, this.subscriber, this.heartbeats]) {
        if (connection.status === 'ready') connection.ping().catch(() => undefined);
      }
    }, PING_EVERY_MS);
    this.pinger.unref();
  }

  /** Whether both connections are up (and every channel subscribed). */
  get connected(): boolean {
    return this.isConnected;
  }

  /** `prefix` + the parts joined by ':'. */
  key(...parts: (string | number)[]): string {
    return this.prefix + parts.join(':');
  }

  /** Adds a state listener; returns what removes it. */
  onState(listener: LinkStateListener): () => void {
    this.stateListeners.push(listener);
    return () => {
      const i = this.stateListeners.indexOf(listener);
      if (i >= 0) this.stateListeners.splice(i, 1);
    };
  }

  /** Resolves once connected; rejects after `timeoutMs` (the link goes on trying). */
  connect(timeoutMs = 10_000): Promise<void> {
    if (this.isConnected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const stop = this.onState((connected) => {
        if (!connected) return;
        stop();
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        stop();
        reject(
          new RedisUnavailableError(
            `cannot reach Redis at ${this.safeUrl} within ${timeoutMs} ms` +
              (this.lastError ? `: ${this.lastError}` : ''),
          ),
        );
      }, timeoutMs);
    });
  }

  /**
   * Sends `channel`'s messages to `handler` (one handler per channel). Resolves once Redis has
   * confirmed the subscription; rejects while cut off, but the channel stays registered and is
   * subscribed when the link is back (unlisten() to give it up).
   */
  async listen(channel: string, handler: ChannelHandler): Promise<void> {
    this.handlers.set(channel, handler);
    if (this.subscriber.status !== 'ready') throw this.unavailable();
    await this.subscriber.subscribe(channel);
  }

  unlisten(channel: string): void {
    if (!this.handlers.delete(channel)) return;
    if (this.subscriber.status === 'ready') this.subscriber.unsubscribe(channel).catch(() => undefined);
  }

  /** Runs a script on the command connection; replies' strings as Buffers when `buffers`. */
  run<T = unknown>(script: LuaScript, keys: string[], args: ScriptArg[], buffers = false): Promise<T> {
    if (!this.definedScripts.has(script.name)) {
      this.commands.defineCommand(script.name, {
        lua: script.lua,
        numberOfKeys: script.keys,
        readOnly: script.readOnly,
      });
      this.definedScripts.add(script.name);
    }
    if (!this.commandsReady) return Promise.reject(this.unavailable());
    const name = buffers ? `${script.name}Buffer` : script.name;
    const command = (this.commands as unknown as Record<string, (...a: ScriptArg[]) => Promise<T>>)[name]!;
    return command.call(this.commands, ...keys, ...args);
  }

  /** Runs a script on the heartbeat connection (see `heartbeats`). */
  runHeartbeat<T = unknown>(script: LuaScript, keys: string[], args: ScriptArg[]): Promise<T> {
    if (!this.heartbeatScripts.has(script.name)) {
      this.heartbeats.defineCommand(script.name, { lua: script.lua, numberOfKeys: script.keys });
      this.heartbeatScripts.add(script.name);
    }
    // Not connected yet (at start) or reconnecting: the command connection will do meanwhile.
    if (this.heartbeats.status !== 'ready') return this.run<T>(script, keys, args);
    const command = (this.heartbeats as unknown as Record<string, (...a: ScriptArg[]) => Promise<T>>)[
      script.name
    ]!;
    return command.call(this.heartbeats, ...keys, ...args);
  }

  /** The error for a command refused while cut off. */
  unavailable(): RedisUnavailableError {
    return new RedisUnavailableError(
      `cut off from Redis at ${this.safeUrl}` + (this.lastError ? ` (${this.lastError})` : ''),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    this.handlers.clear();
    this.isConnected = false;
    await Promise.all(
      [this.commands, this.subscriber, this.heartbeats].map(async (connection) => {
        try {
          if (connection.status === 'ready') await connection.quit();
        } catch {
          // Quitting a connection that just dropped: disconnect() below ends it either way.
        }
        connection.disconnect();
      }),
    );
  }

  /** After the subscriber (re)connected: every registered channel again, then ready. */
  private async subscribeAgain(): Promise<void> {
    const epoch = this.subscriberEpoch;
    const channels = [...this.handlers.keys()];
    try {
      for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
        await this.subscriber.subscribe(...channels.slice(i, i + SUBSCRIBE_CHUNK));
      }
    } catch (err) {
      // Dropped again meanwhile: the next 'ready' starts over.
      this.lastError = (err as Error).message;
      return;
    }
    if (epoch !== this.subscriberEpoch || this.closed) return;
    this.subscriberReady = true;
    this.updateState();
  }

  private updateState(): void {
    const connected = !this.closed && this.commandsReady && this.subscriberReady;
    if (connected === this.isConnected) return;
    this.isConnected = connected;
    if (connected) {
      if (this.cutOffSince !== undefined) {
        this.log.info(
          { redis: this.safeUrl, cutOffMs: Date.now() - this.cutOffSince },
          'redis: connected again',
        );
      } else if (!this.hasBeenConnected) {
        this.log.info({ redis: this.safeUrl, prefix: this.prefix }, 'redis: connected');
      }
      this.hasBeenConnected = true;
      this.cutOffSince = undefined;
    } else if (!this.closed) {
      this.cutOffSince = Date.now();
      this.log.warn({ redis: this.safeUrl, err: this.lastError }, 'redis: cut off; reconnecting');
    }
    for (const listener of [...this.stateListeners]) {
      try {
        listener(connected);
      } catch (err) {
        this.log.error({ err }, 'redis: a state listener failed');
      }
    }
  }
}

/** The URL without its password, for logs and errors. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable Redis URL)';
  }
}
