import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TestServer, useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';

/** Connects with the given headers, says hello, and returns the client_ip recorded for it. */
async function recordedIp(
  srv: TestServer,
  deviceId: string,
  headers: Record<string, string>,
): Promise<string> {
  const client = await TestClient.connect(srv.url, { headers });
  client.send({ device_id: deviceId, identity: 'x' });
  const reply = await client.next();
  assert.equal(reply.type, 'room');
  const rows = await srv.rows<{ client_ip: string }>(
    'select client_ip from connections where device_id = ?',
    deviceId,
  );
  await client.close();
  assert.equal(rows.length, 1);
  return rows[0]!.client_ip;
}

describe('client_ip with a trusted proxy (127.0.0.1)', () => {
  const srv = useServer({ trustedProxies: ['127.0.0.1'] });

  it('X-Forwarded-For is recorded as client_ip', async () => {
    assert.equal(await recordedIp(srv, 'tp-xff', { 'X-Forwarded-For': '203.0.113.7' }), '203.0.113.7');
  });

  it('X-Forwarded-For with several hops: the nearest untrusted address is recorded', async () => {
    assert.equal(
      await recordedIp(srv, 'tp-xff-hops', { 'X-Forwarded-For': '198.51.100.1, 203.0.113.8, 127.0.0.1' }),
      '203.0.113.8',
    );
  });

  it('X-Real-IP is recorded as client_ip', async () => {
    assert.equal(await recordedIp(srv, 'tp-real', { 'X-Real-IP': '198.51.100.23' }), '198.51.100.23');
  });

  it('without proxy headers the peer address is recorded', async () => {
    assert.equal(await recordedIp(srv, 'tp-none', {}), '127.0.0.1');
  });
});

describe('client_ip without trusted proxies', () => {
  const srv = useServer();

  it('X-Forwarded-For is ignored and 127.0.0.1 is recorded', async () => {
    assert.equal(await recordedIp(srv, 'ut-xff', { 'X-Forwarded-For': '203.0.113.7' }), '127.0.0.1');
  });

  it('X-Real-IP is ignored and 127.0.0.1 is recorded', async () => {
    assert.equal(await recordedIp(srv, 'ut-real', { 'X-Real-IP': '198.51.100.23' }), '127.0.0.1');
  });
});
