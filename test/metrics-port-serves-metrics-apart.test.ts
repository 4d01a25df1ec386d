/**
 * --metrics-port: /metrics on a port of its own (so that the public port need not serve it), and
 * no longer on the server's port; health stays on the server's port.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { joinNew } from './helpers/rooms.js';
import { scrape } from './helpers/metrics.js';
import { useServer } from './helpers/server.js';

describe('--metrics-port', () => {
  const srv = useServer({ metricsPort: 0 });

  it('serves /metrics on its own port, counting the server port’s clients', async () => {
    assert.ok(srv.metricsPort, 'the metrics port is listening');
    assert.notEqual(srv.metricsPort, srv.port);
    const before = await scrape(`http://127.0.0.1:${srv.metricsPort}/metrics`);
    const { client } = await joinNew(srv.url, 'mp-a', 'A');
    const during = await scrape(`http://127.0.0.1:${srv.metricsPort}/metrics`);
    assert.equal(during.since(before, 'websocket_active_connections'), 1);
    assert.equal(during.since(before, 'room_manager_handshakes_total', { outcome: 'created_new' }), 1);
    await client.close();
  });

  it('answers 404 for /metrics on the server port, which keeps its health endpoints', async () => {
    const main = `http://127.0.0.1:${srv.port}`;
    assert.equal((await fetch(`${main}/metrics`)).status, 404);
    assert.equal((await fetch(`${main}/healthz`)).status, 200);
    assert.equal((await fetch(`${main}/readyz`)).status, 200);
  });

  it('serves nothing but /metrics on the metrics port', async () => {
    const res = await fetch(`http://127.0.0.1:${srv.metricsPort}/healthz`);
    assert.equal(res.status, 404);
  });
});

describe('without --metrics-port', () => {
  const srv = useServer();

  it('serves /metrics on the server port', async () => {
    assert.equal(srv.metricsPort, undefined);
    const { text } = await scrape(`http://127.0.0.1:${srv.port}/metrics`);
    assert.match(text, /^websocket_active_connections \d+$/m);
  });
});
