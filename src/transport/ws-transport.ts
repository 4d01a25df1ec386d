/**
 * The WebSocket side of the port: upgrades on any path, one Session per socket, and the list of
 * live sockets for shutdown. Plain HTTP requests on the same port go to the http module.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { sendEnvelopeFramed, sendFramed } from './framing.js';
import type { Logger } from 'pino';
import { CloseCode } from '../protocol/codes.js';
import { Session, type SessionContext, type SessionSocket } from '../rooms/session.js';
import type { ClientIpResolver } from './client-ip.js';

export interface WsTransportOptions {
  maxFrameBytes: number;
  connectionFrame: string;
}

/** Frames beyond this many times the frame limit are cut by ws itself (close 1009). */
export const HARD_CAP_FACTOR = 4;

export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly live = new Map<WebSocket, Session>();
  private accepting = true;

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
    server.on('upgrade', this.onUpgrade);
  }

  get size(): number {
    return this.live.size;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
  };

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const ip = this.ips.resolve(req);
    const socket: SessionSocket = {
      sendText: (text) => {
        if (ws.readyState === ws.OPEN) ws.send(text);
      },
      sendFrame: (message) => {
        if (ws.readyState === ws.OPEN) sendFramed(ws, message);
      },
      sendEnvelope: (message) => {
        if (ws.readyState === ws.OPEN) sendEnvelopeFramed(ws, message);
      },
      close: (code, reason) => {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
      },
    };
    const session = new Session(this.ctx, socket, ip);
    this.live.set(ws, session);
    this.log.info({ conn: session.id, ip, path: req.url }, 'connected');
    ws.on('message', (data: Buffer, isBinary) => session.onFrame(data, isBinary));
    ws.on('close', (code) => {
      this.live.delete(ws);
      session.onClose(code);
    });
    ws.on('error', (err) => {
      // ws closes the socket itself after a protocol error (bad UTF-8, frame over the hard cap).
      this.log.info({ conn: session.id, err: err.message }, 'socket error');
    });
    ws.send(this.options.connectionFrame);
  }

  /**
   * Stops taking connections and closes every live one with 1001 (recorded at once); sockets
   * that have not finished the closing handshake within `graceMs` are cut.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.accepting = false;
    const sockets = [...this.live.entries()];
    for (const [, session] of sockets) session.end(CloseCode.GoingAway, 'Server shutting down');
    const deadline = Date.now() + graceMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.live.keys()) ws.terminate();
    this.live.clear();
    this.wss.close();
  }
}
