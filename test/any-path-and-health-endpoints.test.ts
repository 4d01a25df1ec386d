import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';

describe('WebSocket on any path, HTTP health on the same port', () => {
  const srv = useServer();

  for (const path of ['', '/', '/ws', '/anything/else', '/ws?token=abc']) {
    it(`ws://host:port${path} gets the connection frame and works`, async () => {
      const client = new TestClient(`${srv.url}${path}`);
      await client.opened;
      const first = await client.next();
      assert.equal(first.type, 'connection');
      assert.equal(first.message, 'Connected successfully');
      client.send({ device_id: `path-${path}`, identity: 'x' });
      const reply = await client.next();
      assert.equal(reply.type, 'room');
      assert.equal(reply.status, 'created_new');
      await client.close();
    });
  }

  it('GET /healthz → 200', async () => {
    const res = await fetch(`http://127.0.0.1:${srv.port}/healthz`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });

  it('GET /readyz → 200 with database up', async () => {
    const res = await fetch(`http://127.0.0.1:${srv.port}/readyz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { database?: string };
    assert.equal(body.database, 'up');
  });
});
