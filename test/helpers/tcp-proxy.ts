/**
 * A TCP proxy in front of a database server that a test can cut and restore, to make an outage
 * without stopping the shared server. Cut: every open connection is reset and new ones are reset
 * as they arrive (as when the server is down), or, in `blackhole` mode, accepted and never
 * answered (as when packets are dropped: only timeouts notice).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type CutMode = 'reset' | 'blackhole';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private mode: CutMode | undefined;
  /** Connections accepted so far (while not cut). */
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined = undefined;
    const server = createServer((client) => proxy!.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    proxy = new TcpProxy(server, address.port);
    return proxy;
  }

  get isCut(): boolean {
    return this.mode !== undefined;
  }

  /** Starts the outage: open connections are reset, new ones refused (or left hanging). */
  cut(mode: CutMode = 'reset'): void {
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Ends the outage: new connections reach the server again. */
  restore(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.mode = undefined;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, host: string, port: number): void {
    client.on('error', () => undefined);
    if (this.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    if (this.mode === 'blackhole') return; // accepted, never answered
    this.connections++;
    const upstream = connect(port, host);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
