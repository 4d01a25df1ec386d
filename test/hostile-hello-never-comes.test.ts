import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { assertStillServes, countRows } from './helpers/hostile.js';

const HELLO_TIMEOUT_MS = 300;
const TIMEOUT_FRAME = {
  type: 'error',
  message: `No identity received within ${HELLO_TIMEOUT_MS} ms`,
  code: 'hello_timeout',
};

/** The client is told hello_timeout and closed with 4008, and got nothing else. */
async function expectTimedOut(client: TestClient): Promise<void> {
  assert.deepEqual(await client.next(), TIMEOUT_FRAME);
  assert.equal((await client.closed).code, CloseCode.HelloTimeout);
  assert.equal(client.received.length, 2, client.received.join(' | '));
}

describe('a hello that never comes', () => {
  const srv = useServer({ helloTimeoutMs: HELLO_TIMEOUT_MS });

  it('twenty silent connections are each told hello_timeout and closed 4008', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(srv.url)));
    await Promise.all(clients.map(expectTimedOut));
    assert.equal(await countRows(srv, 'connections'), 0);
    await assertStillServes(srv, 'ht-silent');
  });

  it('a hello whose last fragment never comes times out like silence', async () => {
    const client = await TestClient.connect(srv.url);
    const hello = Buffer.from(JSON.stringify({ device_id: 'ht-fragment', identity: 'x' }));
    client.ws.send(hello.subarray(0, 10), { binary: false, fin: false });
    client.ws.send(hello.subarray(10, 20), { binary: false, fin: false });
    await expectTimedOut(client);
    assert.equal(await countRows(srv, 'devices', "device_id = 'ht-fragment'"), 0);
  });

  it('a frame header that is never completed times out like silence', async () => {
    const client = await TestClient.connect(srv.url);
    // One byte of a text frame's header (FIN + opcode 1), then nothing: a slowloris on the frame layer.
    (client.ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x81]));
    await expectTimedOut(client);
  });

  it('WebSocket pings keep nobody from the hello timeout', async () => {
    const client = await TestClient.connect(srv.url);
    const pinger = setInterval(() => client.ws.ping(), 20);
    try {
      await expectTimedOut(client);
    } finally {
      clearInterval(pinger);
    }
    await assertStillServes(srv, 'ht-pings');
  });
});
