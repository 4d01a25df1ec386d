/**
 * A real WebSocket client (ws) with a queue of received frames, so a test can await the next
 * frame in order. No timers decide a test's outcome: ordering is proven by the server's answers.
 */
import WebSocket from 'ws';

export type Frame = Record<string, unknown> & { type?: string };

export interface Closed {
  code: number;
  reason: string;
}

export class TestClient {
  readonly ws: WebSocket;
  /** Raw text of every frame received, in order. */
  readonly received: string[] = [];
  private cursor = 0;
  private waiting: (() => void) | undefined;
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    this.ws.on('message', (data: Buffer) => {
      this.received.push(data.toString('utf8'));
      this.waiting?.();
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.waiting?.();
      });
    });
    this.ws.on('error', () => undefined);
  }

  /** Connects and consumes the server's `connection` frame. */
  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<TestClient> {
    const client = new TestClient(url, options);
    await client.opened;
    const first = await client.next();
    if (first.type !== 'connection')
      throw new Error(`expected connection frame, got ${JSON.stringify(first)}`);
    return client;
  }

  /** Connects, says hello and returns the room reply (or error frame). */
  static async join(
    url: string,
    hello: Record<string, unknown>,
  ): Promise<{ client: TestClient; reply: Frame }> {
    const client = await TestClient.connect(url);
    client.send(hello);
    const reply = await client.next();
    return { client, reply };
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** The next frame's raw text; rejects if the socket closes first. */
  async nextText(): Promise<string> {
    while (this.cursor >= this.received.length) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('socket closed while waiting for a frame');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = undefined;
    }
    return this.received[this.cursor++]!;
  }

  async next(): Promise<Frame> {
    return JSON.parse(await this.nextText()) as Frame;
  }

  /** Sends query_room and returns the room_info reply: also proves every earlier frame was handled. */
  async queryRoom(): Promise<Frame> {
    this.send({ type: 'query_room' });
    return this.next();
  }

  async close(): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(1000);
    return this.closed;
  }
}
