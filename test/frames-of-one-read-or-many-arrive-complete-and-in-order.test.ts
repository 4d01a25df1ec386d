import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import type { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';

/**
 * The server writes a frame at once when the read it came in carried only that frame, and corks
 * the recipients until the end of the tick when more frames of the same read follow
 * (src/transport/framing.ts). Either way every member gets every frame, in the order sent.
 */

/** Sends `texts` with one socket write: the server reads them together. */
function sendInOneWrite(client: TestClient, texts: string[]): void {
  const raw = (client.ws as unknown as { _socket: Socket })._socket;
  raw.cork();
  for (const text of texts) client.send(text);
  raw.uncork();
}

async function receive(client: TestClient, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(await client.nextText());
  return out;
}

describe('frames of one read or of many arrive complete and in order', () => {
  const srv = useServer();

  it('bursts in one write, single frames and two senders at once: every member gets all, in order', async () => {
    const a = await joinNew(srv.url, 'ord-a', 'phone');
    const b = await joinExisting(srv.url, 'ord-b', 'screen', a.roomId);
    const c = await joinExisting(srv.url, 'ord-c', 'tablet', a.roomId);
    const text = (from: string, i: number) => JSON.stringify({ from, i, pad: 'é'.repeat(i % 7) });

    // A burst of 300 frames in one write, then single frames each answered before the next.
    const burst = Array.from({ length: 300 }, (_, i) => text('a', i));
    sendInOneWrite(a.client, burst);
    assert.deepEqual(await receive(b, 300), burst);
    assert.deepEqual(await receive(c, 300), burst);
    const singles: string[] = [];
    for (let i = 300; i < 320; i++) {
      singles.push(text('a', i));
      a.client.send(singles.at(-1)!);
      assert.equal(await b.nextText(), singles.at(-1));
      assert.equal(await c.nextText(), singles.at(-1));
    }

    // Two senders at once, bursts and single frames mixed: each sender's frames keep their order.
    const fromA = Array.from({ length: 200 }, (_, i) => text('a', 1000 + i));
    const fromB = Array.from({ length: 200 }, (_, i) => text('b', i));
    for (let i = 0; i < 200; i += 50) {
      sendInOneWrite(a.client, fromA.slice(i, i + 40));
      for (const t of fromA.slice(i + 40, i + 50)) a.client.send(t);
      for (const t of fromB.slice(i, i + 10)) b.send(t);
      sendInOneWrite(b, fromB.slice(i + 10, i + 50));
    }
    const atC = await receive(c, 400);
    assert.deepEqual(
      atC.filter((t) => t.startsWith('{"from":"a"')),
      fromA,
    );
    assert.deepEqual(
      atC.filter((t) => t.startsWith('{"from":"b"')),
      fromB,
    );
    assert.deepEqual(await receive(b, 200), fromA);
    assert.deepEqual(await receive(a.client, 200), fromB);

    // And every one of them is recorded, in each sender's order.
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by seq',
      a.roomId,
    );
    const recorded = rows.map((r) => r.message_content);
    assert.equal(recorded.length, 720);
    assert.deepEqual(recorded.slice(0, 320), [...burst, ...singles]);
    assert.deepEqual(
      recorded.slice(320).filter((t) => t.startsWith('{"from":"a"')),
      fromA,
    );
    for (const client of [a.client, b, c]) await client.close();
  });
});
