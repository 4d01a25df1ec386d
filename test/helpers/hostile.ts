/**
 * Shared pieces of the hostile-input battery (test/hostile-*.test.ts): raw first frames, refused
 * connections, and the check every hostile test ends with — the server still serves an honest
 * pair of clients and records their message.
 */
import assert from 'node:assert/strict';
import { TestClient, type Frame } from './client.js';
import type { TestServer } from './server.js';

/** Error frame texts the server has always used. */
export const INVALID_JSON_TEXT = '{"type":"error","message":"Invalid JSON format","code":"invalid_json"}';
export const INVALID_HELLO = {
  type: 'error',
  message: 'Invalid JSON format for identity',
  code: 'invalid_identity',
};

/** A client whose greeting is not consumed (the server may refuse before or after it). */
export async function openClient(url: string, options?: ConstructorParameters<typeof TestClient>[1]) {
  const client = new TestClient(url, options);
  await client.opened;
  return client;
}

/** The next frame that is not the `connection` greeting, or undefined if the socket closed first. */
export async function nextAfterGreeting(client: TestClient): Promise<Frame | undefined> {
  for (;;) {
    let frame: Frame;
    try {
      frame = await client.next();
    } catch {
      return undefined;
    }
    if (frame.type !== 'connection') return frame;
  }
}

/**
 * Sends `first` as the connection's first frame (text, or binary bytes) and returns the one frame
 * the server answers and the close code: for a hello the server must refuse.
 */
export async function refusedFirstFrame(
  url: string,
  first: string | Buffer,
  binary = false,
): Promise<{ frame: Frame | undefined; code: number }> {
  const client = await TestClient.connect(url);
  client.ws.send(first, { binary });
  const frame = await nextAfterGreeting(client);
  const closed = await client.closed;
  return { frame, code: closed.code };
}

/**
 * A hello on a new connection; the answer (room reply or error), the client, and — for a refusal —
 * the close. The greeting is skipped whether or not a refusing server sends it first.
 */
export async function tryHello(
  url: string,
  hello: Record<string, unknown>,
  options?: ConstructorParameters<typeof TestClient>[1],
): Promise<{ client: TestClient; reply: Frame | undefined }> {
  const client = new TestClient(url, options);
  try {
    await client.opened;
  } catch {
    return { client, reply: undefined };
  }
  let first: Frame;
  try {
    first = await client.next();
  } catch {
    return { client, reply: undefined };
  }
  if (first.type !== 'connection') return { client, reply: first };
  client.send(hello);
  return { client, reply: await nextAfterGreeting(client) };
}

/** Retries a hello while the server refuses it only because a per-IP connection slot is not free yet. */
async function helloWhenSlotFree(
  url: string,
  hello: Record<string, unknown>,
): Promise<{ client: TestClient; reply: Frame }> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const { client, reply } = await tryHello(url, hello);
    if (reply?.code !== 'too_many_connections') return { client, reply: reply ?? { type: 'closed' } };
    await client.closed;
    // The server learns of an earlier close a moment after the client does.
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no connection slot became free');
}

/**
 * The server is still up and working: a fresh pair of honest clients joins a room, exchanges a
 * message, and exactly that message is recorded.
 */
export async function assertStillServes(srv: TestServer, tag: string): Promise<void> {
  const a = await helloWhenSlotFree(srv.url, { device_id: `${tag}-honest-a`, identity: 'honest' });
  assert.equal(a.reply.type, 'room', `honest hello answered ${JSON.stringify(a.reply)}`);
  assert.equal(a.reply.status, 'created_new');
  const roomId = String(a.reply.room_id);
  const b = await helloWhenSlotFree(srv.url, {
    device_id: `${tag}-honest-b`,
    identity: 'honest',
    room_id: roomId,
  });
  assert.equal(b.reply.type, 'room', `honest join answered ${JSON.stringify(b.reply)}`);
  assert.equal(b.reply.status, 'joined_existing');
  const text = JSON.stringify({ honest: tag });
  a.client.send(text);
  assert.equal(await b.client.nextText(), text);
  const rows = await srv.rows(
    'select from_device_id, message_content from messages where room_id = ? order by id',
    roomId,
  );
  assert.deepEqual(rows, [{ from_device_id: `${tag}-honest-a`, message_content: text }]);
  await b.client.close();
  await a.client.close();
}

/** How many rows a table has (after a flush). */
export async function countRows(srv: TestServer, table: string, where = '1 = 1', ...params: unknown[]) {
  const rows = await srv.rows<{ n: number | string }>(
    `select count(*) as n from ${table} where ${where}`,
    ...params,
  );
  return Number(rows[0]!.n);
}

/** `[` × depth then `]` × depth: an array nested `depth` deep. */
export function nestedArrays(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}
