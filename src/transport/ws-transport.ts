/**
 * The WebSocket side of the port: upgrades on any path, one Session per socket, and the list of
 * live sockets for shutdown. Plain HTTP requests on the same port go to the http module.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  frameEnds,
  frameStarts,
  isCorked,
  preframed,
  sendEnvelopeFramed,
  sendFramed,
  sendPreframed,
} from './framing.js';
import type { Logger } from 'pino';
import { CloseCode, ErrorCode } from '../protocol/codes.js';
import { errorFrame } from '../protocol/encode.js';
import type { IpLimits } from '../limits/ip-limits.js';
import { Session, type SessionContext, type SessionSocket } from '../rooms/session.js';
import { ORIGIN_NOT_ALLOWED_RESPONSE, type OriginAllowList } from '../auth/origins.js';
import { pathForLog, tokenFromUpgrade } from '../auth/session-auth.js';
import type { ClientIpResolver } from './client-ip.js';

export interface WsTransportOptions {
  maxFrameBytes: number;
  connectionFrame: string;
  /** --allowed-origins: upgrades from other browser origins get 403 (absent = any origin). */
  allowedOrigins?: OriginAllowList;
  /** Unsent bytes a client may have waiting before it is cut as a slow consumer. */
  maxBufferedBytes: number;
  /** How often every client is pinged; 0 = never. */
  pingIntervalMs: number;
  ipLimits: IpLimits;
}

/** A live socket's state. */
interface Connection {
  session: Session;
  ip: string;
  /** Whether it answered the last ping (or none was sent yet). */
  alive: boolean;
  /** The ping slice it is in (see pingSlice). */
  slice: Set<WebSocket> | undefined;
  /** Its drain turn came: no longer read, closed once what it sent is durable (see drain()). */
  draining: boolean;
}

/**
 * Clients are pinged in slices, one slice this often, each client once per --ping-interval-ms.
 * Pinging every client at once meant, with 1,000 clients, one event-loop turn of 1,000 ping
 * writes (then 1,000 pongs to read) every 30 s: in 6 bench runs of 6, the 5-second relay window
 * holding one had the run's highest p99 (35-65 ms; 4.7-37 ms in the others). Socket.IO and
 * Centrifugo likewise spread their pings (a timer per client).
 */
const PING_SLICE_MS = 100;

/** A drain closes at most one batch of clients this often (see drain()). */
const DRAIN_STEP_MS = 100;

/** The reason of the close frame at a stop (code 1012), for clients and their logs. */
const RESTART_REASON = 'server restarting: reconnect';

/** Frames beyond this many times the frame limit are cut by ws itself (close 1009). */
export const HARD_CAP_FACTOR = 4;

export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly live = new Map<WebSocket, Connection>();
  private accepting = true;
  /** Set by hurry(): a drain under way stops waiting between its batches. */
  private hurried = false;
  private wake: (() => void) | undefined;
  /** Set while the record writer is behind: no socket is read (backpressure, see pauseReading). */
  private readingPaused = false;
  private readonly pinger: NodeJS.Timeout | undefined;
  /** Live sockets by ping slice; a new socket joins the next slice in turn. */
  private readonly pingSlices: Set<WebSocket>[] = [];
  private pingTurn = 0;
  private joinTurn = 0;
  /** The connection frame, framed once, and its payload's size. */
  private readonly connectionWire: readonly Buffer[];
  private readonly connectionBytes: number;

  constructor(
    server: HttpServer,
    private readonly ctx: SessionContext,
    private readonly ips: ClientIpResolver,
    private readonly log: Logger,
    private readonly options: WsTransportOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      // Frames up to the limit are handled; between it and the hard cap they are refused with an
      // error frame; past the hard cap ws stops reading them (1009) so memory stays bounded.
      maxPayload: options.maxFrameBytes * HARD_CAP_FACTOR,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.connectionWire = preframed(options.connectionFrame);
    this.connectionBytes = Buffer.byteLength(options.connectionFrame);
    server.on('upgrade', this.onUpgrade);
    if (options.pingIntervalMs > 0) {
      const slices = Math.max(1, Math.floor(options.pingIntervalMs / PING_SLICE_MS));
      for (let i = 0; i < slices; i++) this.pingSlices.push(new Set());
      this.pinger = setInterval(this.pingSlice, options.pingIntervalMs / slices);
      this.pinger.unref();
    }
  }

  /** Cuts the peers of this turn's slice that did not answer their previous ping, pings the rest. */
  private readonly pingSlice = (): void => {
    const slice = this.pingSlices[this.pingTurn++ % this.pingSlices.length]!;
    for (const ws of slice) {
      const conn = this.live.get(ws);
      if (!conn) continue;
      // A paused socket's pong is not read: no one is judged dead while reading is paused.
      if (this.readingPaused) {
        conn.alive = true;
        continue;
      }
      if (!conn.alive) {
        this.cut(ws, conn, CloseCode.DeadPeer, 'no pong to the previous ping');
        continue;
      }
      conn.alive = false;
      ws.ping();
    }
  };

  /**
   * Ends a connection without a closing handshake (a dead peer, or one that does not read): the
   * session records the disconnect with `code` now, then the socket is destroyed.
   */
  private cut(ws: WebSocket, conn: Connection, code: number, why: string): void {
    this.log.warn({ conn: conn.session.id, ip: conn.ip, code, reason: why }, 'connection cut');
    conn.session.onClose(code);
    ws.terminate();
  }

  /**
   * Stops (true) or resumes (false) reading from every client: while the record cannot keep up
   * (the database behind, or neither it nor the spool taking records), frames wait in the
   * kernel's socket buffers and then in the clients' (TCP flow control) instead of in our memory.
   * Sending to clients goes on; new connections start paused. `why` is logged.
   */
  pauseReading(paused: boolean, why: string): void {
    if (this.readingPaused === paused) return;
    this.readingPaused = paused;
    this.log.warn({ connections: this.live.size }, why);
    for (const [ws, conn] of this.live) {
      if (paused) ws.pause();
      else if (!conn.draining) ws.resume();
    }
  }

  get size(): number {
    return this.live.size;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const origins = this.options.allowedOrigins;
    if (origins && !origins.allows(req.headers.origin)) {
      const origin = req.headers.origin?.slice(0, 200);
      this.log.info({ ip: this.ips.resolve(req), origin }, 'origin not allowed');
      socket.end(ORIGIN_NOT_ALLOWED_RESPONSE);
      return;
    }
    // The 101 response and the connection frame leave in one write: one segment, and one read
    // for the client, instead of two of each per connection.
    socket.cork();
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
    } finally {
      socket.uncork();
    }
  };

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const ip = this.ips.resolve(req);
    const { ipLimits, maxBufferedBytes } = this.options;
    const traffic = this.ctx.traffic;
    if (!ipLimits.openConnection(ip)) {
      // Refused before a session exists: reported here as a session reports its own refusals.
      this.log.warn({ ip }, 'too many connections from this IP');
      const frame = errorFrame(ErrorCode.TooManyConnections, 'Too many connections from your address');
      ws.send(frame);
      traffic.bytesSent(Buffer.byteLength(frame));
      traffic.errorSent(ErrorCode.TooManyConnections);
      traffic.handshakeEnded(ErrorCode.TooManyConnections, 0);
      traffic.closed(CloseCode.RateLimited);
      ws.close(CloseCode.RateLimited, ErrorCode.TooManyConnections);
      return;
    }
    // A client whose unsent data passes the bound is cut (slow consumer). Judged after the write
    // reached the kernel: at once for a plain write, after the uncork (once per tick) for corked
    // ones. What is left then is what the client did not read.
    let checkDue = false;
    const checkBuffer = (): void => {
      checkDue = false;
      if (ws.readyState === ws.OPEN && ws.bufferedAmount > maxBufferedBytes) {
        const conn = this.live.get(ws);
        if (conn) this.cut(ws, conn, CloseCode.SlowConsumer, `over ${maxBufferedBytes} unsent bytes`);
      }
    };
    const wrote = (): void => {
      if (checkDue) return;
      // Written at once and within the bound: nothing to judge later (the cut itself always
      // waits for the end of the tick, outside the room's delivery loop).
      if (!isCorked(ws) && ws.bufferedAmount <= maxBufferedBytes) return;
      checkDue = true;
      process.nextTick(checkBuffer); // queued after framing.ts's uncork of this tick
    };
    const socket: SessionSocket = {
      sendText: (text) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(text);
        traffic.bytesSent(Buffer.byteLength(text));
        wrote();
      },
      sendFrame: (message) => {
        if (ws.readyState !== ws.OPEN) return;
        traffic.bytesSent(sendFramed(ws, message));
        wrote();
      },
      sendEnvelope: (message) => {
        if (ws.readyState !== ws.OPEN) return;
        traffic.bytesSent(sendEnvelopeFramed(ws, message));
        wrote();
      },
      bufferedAmount: () => ws.bufferedAmount,
      drained: () =>
        new Promise<boolean>((resolve) => {
          if (ws.readyState !== ws.OPEN) return resolve(false);
          const raw = (ws as unknown as { _socket: import('node:net').Socket })._socket;
          const done = (ok: boolean) => () => {
            raw.off('drain', onDrain);
            ws.off('close', onClose);
            resolve(ok);
          };
          const onDrain = done(true);
          const onClose = done(false);
          raw.once('drain', onDrain);
          ws.once('close', onClose);
        }),
      close: (code, reason) => {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
      },
    };
    const session = new Session(this.ctx, socket, ip, this.ctx.tokens ? tokenFromUpgrade(req) : undefined);
    const slices = this.pingSlices;
    const slice = slices.length ? slices[this.joinTurn++ % slices.length] : undefined;
    slice?.add(ws);
    const conn: Connection = { session, ip, alive: true, slice, draining: false };
    this.live.set(ws, conn);
    this.log.debug({ conn: session.id, ip, path: pathForLog(req.url) }, 'connected');
    ws.on('message', (data: Buffer, isBinary) => {
      traffic.frameRead(data.length);
      frameStarts(ws);
      try {
        session.onFrame(data, isBinary);
      } catch (err) {
        // A bug must cost one frame, never the process: answer it and keep the connection.
        this.log.error({ err, conn: session.id }, 'frame handling failed');
        if (ws.readyState === ws.OPEN) {
          const frame = errorFrame(ErrorCode.Internal, 'The server failed to handle this message');
          ws.send(frame);
          traffic.bytesSent(Buffer.byteLength(frame));
          traffic.errorSent(ErrorCode.Internal);
        }
      } finally {
        frameEnds();
        traffic.frameDone();
      }
    });
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('close', (code) => {
      this.live.delete(ws);
      conn.slice?.delete(ws);
      ipLimits.closeConnection(ip);
      session.onClose(code);
    });
    ws.on('error', (err) => {
      // ws closes the socket itself after a protocol error (bad UTF-8, frame over the hard cap).
      this.log.info({ conn: session.id, err: err.message }, 'socket error');
    });
    sendPreframed(ws, this.connectionWire);
    traffic.bytesSent(this.connectionBytes);
    if (this.readingPaused) ws.pause();
  }

  /**
   * Stops taking connections, then closes the live ones with 1012 in batches spread evenly over
   * `drainMs`, at most one batch per DRAIN_STEP_MS: the reconnects reach the other nodes spread
   * out, and connections waiting their turn keep working. Resolves once every batch has had its
   * turn, early when hurry() is called; shutdown() then closes what is still open.
   */
  async drain(drainMs: number): Promise<void> {
    this.accepting = false;
    const queue = [...this.live];
    if (queue.length === 0 || drainMs <= 0) return;
    const batches = Math.min(queue.length, Math.max(1, Math.floor(drainMs / DRAIN_STEP_MS)));
    const size = Math.ceil(queue.length / batches);
    const gapMs = drainMs / batches;
    this.log.info({ connections: queue.length, batches, drainMs }, 'draining: closing clients in batches');
    for (let at = 0; at < queue.length && !this.hurried; at += size) {
      if (at > 0) await this.pause(gapMs);
      for (const [ws, conn] of queue.slice(at, at + size)) this.closeForRestart(ws, conn);
    }
    // The last batch waits for its record too (at most a gap) before shutdown() closes the rest.
    const writer = this.ctx.writer;
    if (!this.hurried) await this.pause(gapMs, (wake) => writer.whenDurable(writer.ticket, wake));
  }

  /**
   * Closes every live connection with 1012 as a drain does, at once, and keeps serving: for a
   * cluster node the others declared dead (its members were taken out of their rooms and
   * recorded closed), so that its clients reconnect and the rooms and the record tell the truth.
   */
  restartAll(): void {
    for (const [ws, conn] of [...this.live]) this.closeForRestart(ws, conn);
  }

  /**
   * A drain's close of one connection: nothing more is read from it, and once what it sent is
   * durable (its acks sent, which wait for that) it is closed with 1012 and its disconnect
   * recorded. So a Level 2 client knows what was taken: every message acked, or not taken.
   */
  private closeForRestart(ws: WebSocket, conn: Connection): void {
    if (conn.draining || !this.live.has(ws)) return; // gone by itself meanwhile
    conn.draining = true;
    // Not pinged any more: the close handshake is under way (or a paused socket reads no pong).
    conn.slice?.delete(ws);
    // Level 1 has no acks: closed at once, and what it sends until it sees the close is still taken.
    if (conn.session.unacknowledged)
      return conn.session.endAfterReply(CloseCode.ServiceRestart, RESTART_REASON);
    ws.pause();
    const writer = this.ctx.writer;
    writer.whenDurable(writer.ticket, () => {
      conn.session.end(CloseCode.ServiceRestart, RESTART_REASON);
      ws.resume(); // for the client's close frame; the ended session ignores any message
    });
  }

  /** Ends a drain under way: what it has not closed yet, shutdown() closes at once. */
  hurry(): void {
    this.hurried = true;
    this.wake?.();
  }

  /** Waits `ms`, or less: until hurry(), or until `early` calls its wake back. */
  private pause(ms: number, early?: (wake: () => void) => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        if (this.wake !== wake) return; // a late call of a pause that is over
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wake = wake;
      early?.(wake);
    });
  }

  /**
   * Stops taking connections and closes every live one with 1012 at once (recorded at once);
   * sockets that have not finished the closing handshake within `graceMs` are cut.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.accepting = false;
    this.hurry();
    clearInterval(this.pinger);
    const sockets = [...this.live.values()];
    for (const { session } of sockets) session.endAfterReply(CloseCode.ServiceRestart, RESTART_REASON);
    const deadline = Date.now() + graceMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const [ws, { session }] of this.live) {
      session.end(CloseCode.ServiceRestart, RESTART_REASON); // its disconnect recorded now
      ws.terminate();
    }
    this.live.clear();
    for (const slice of this.pingSlices) slice.clear();
    this.wss.close();
  }
}
