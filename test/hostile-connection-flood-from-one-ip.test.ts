import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient, type Frame } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';
import { assertStillServes, countRows, nextAfterGreeting, openClient, tryHello } from './helpers/hostile.js';

const MAX_PER_IP = 5;

/** A connection the server must refuse: error too_many_connections, then close 4029. */
async function expectRefused(client: TestClient): Promise<void> {
  const frame = await nextAfterGreeting(client);
  assert.equal(frame?.type, 'error', `got ${JSON.stringify(frame)}`);
  assert.equal(frame?.code, 'too_many_connections');
  assert.equal((await client.closed).code, CloseCode.RateLimited);
}

describe('a connection flood from one IP (--max-connections-per-ip, loopback limited)', () => {
  const srv = useServer({ maxConnectionsPerIp: MAX_PER_IP, limitLoopback: true });

  it('the connection past the limit gets too_many_connections and 4029; the others keep working', async () => {
    const held: TestClient[] = [];
    // Connections count whether or not they said hello yet.
    for (let i = 0; i < MAX_PER_IP; i++) held.push(await TestClient.connect(srv.url));
    held[0]!.send({ device_id: 'cf-held-0', identity: 'held' });
    assert.equal((await held[0]!.next()).type, 'room');

    await expectRefused(await openClient(srv.url));

    // The held connections are untouched: one that has not said hello yet still may.
    held[1]!.send({ device_id: 'cf-held-1', identity: 'held' });
    assert.equal((await held[1]!.next()).type, 'room');
    assert.equal((await held[0]!.queryRoom()).type, 'room_info');

    // A freed slot can be used again (the server sees the close a moment after the client).
    await held.pop()!.close();
    const again = await waitFor('a freed connection slot', async () => {
      const attempt = await tryHello(srv.url, { device_id: 'cf-again', identity: 'again' });
      if (attempt.reply?.type === 'room') return attempt.client;
      await attempt.client.closed;
      return undefined;
    });
    await again.close();
    for (const c of held) await c.close();
    await assertStillServes(srv, 'cf');
  });

  it('fifty simultaneous connections: exactly the limit get in, the rest are refused and leave no record', async () => {
    // Start from no live connection (the server sees the previous test's closes a moment later).
    await waitFor('no live connection', () => srv.server.status().connections === 0);
    const attempts = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        tryHello(srv.url, { device_id: `cf-burst-${i}`, identity: 'burst' }),
      ),
    );
    const admitted = attempts.filter((a) => a.reply?.type === 'room');
    const refused = attempts.filter((a) => a.reply?.type !== 'room');
    assert.equal(admitted.length, MAX_PER_IP);
    for (const r of refused) {
      assert.equal(r.reply?.code, 'too_many_connections', JSON.stringify(r.reply));
      assert.equal((await r.client.closed).code, CloseCode.RateLimited);
    }
    assert.equal(await countRows(srv, 'connections', "device_id like 'cf-burst-%'"), MAX_PER_IP);
    for (const a of admitted) await a.client.close();
    await assertStillServes(srv, 'cf-burst');
  });
});

describe('a connection flood through a trusted proxy is limited per forwarded client IP', () => {
  const srv = useServer({ maxConnectionsPerIp: 2, trustedProxies: ['127.0.0.1'] });

  const fromIp = (ip: string) => ({ headers: { 'X-Real-IP': ip } });

  it('the third connection of 203.0.113.7 is refused; 203.0.113.8 still gets in', async () => {
    // Not loopback once the proxy's header is believed: limited without --limit-loopback.
    const first = await TestClient.connect(srv.url, fromIp('203.0.113.7'));
    const second = await TestClient.connect(srv.url, fromIp('203.0.113.7'));
    await expectRefused(await openClient(srv.url, fromIp('203.0.113.7')));
    const other = await tryHello(
      srv.url,
      { device_id: 'cf-proxy-other', identity: 'x' },
      fromIp('203.0.113.8'),
    );
    assert.equal(other.reply?.type, 'room', JSON.stringify(other.reply));
    const rows = await srv.rows("select client_ip from connections where device_id = 'cf-proxy-other'");
    assert.deepEqual(rows, [{ client_ip: '203.0.113.8' }]);
    for (const c of [first, second, other.client]) await c.close();
    await assertStillServes(srv, 'cf-proxy');
  });
});

describe('loopback peers are exempt from the per-IP limit by default', () => {
  const srv = useServer({ maxConnectionsPerIp: 2 });

  it('five loopback connections all get in', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 5; i++) {
      const { client, reply } = await tryHello(srv.url, { device_id: `cf-lo-${i}`, identity: 'lo' });
      assert.equal((reply as Frame | undefined)?.type, 'room', JSON.stringify(reply));
      clients.push(client);
    }
    for (const c of clients) await c.close();
  });
});
