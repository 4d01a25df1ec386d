import assert from 'node:assert/strict';
import { get } from 'node:http';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { TestClient } from './helpers/client.js';
import { sqliteOnly } from './helpers/db.js';
import { useServer } from './helpers/server.js';
import { tryUpgrade } from './helpers/tokens.js';

const REFUSED = { status: 403, body: '{"error":"origin_not_allowed"}' };

describe('--allowed-origins: upgrades from other origins are refused with HTTP 403', () => {
  const srv = useServer({ allowedOrigins: ['https://app.example.com', 'http://localhost:3000'] });

  it('a foreign Origin gets 403 before any WebSocket exists; nothing is recorded', async () => {
    assert.deepEqual(await tryUpgrade(srv.url, { origin: 'https://evil.example' }), REFUSED);
    assert.deepEqual(await tryUpgrade(srv.url, { origin: 'https://app.example.com.evil.example' }), REFUSED);
    assert.deepEqual(await tryUpgrade(srv.url, { origin: 'http://app.example.com' }), REFUSED); // scheme differs
    assert.deepEqual(await tryUpgrade(srv.url, { origin: 'http://localhost:3001' }), REFUSED); // port differs
    assert.deepEqual(await tryUpgrade(srv.url, { origin: 'null' }), REFUSED); // sandboxed page, file://
    const rows = await srv.rows('select id from connections');
    assert.equal(rows.length, 0);
    assert.equal(srv.server.status().connections, 0);
  });

  it('a listed Origin connects (scheme and host compared case-insensitively)', async () => {
    const origins = ['https://app.example.com', 'HTTPS://App.Example.COM', 'http://localhost:3000'];
    for (const [i, origin] of origins.entries()) {
      const client = await TestClient.connect(srv.url, { origin });
      client.send({ device_id: `origin-ok-${i}`, identity: 'tab' });
      assert.equal((await client.next()).type, 'room');
      await client.close();
    }
  });

  it('no Origin header (a client that is not a browser) connects', async () => {
    assert.equal(await tryUpgrade(srv.url), 'open');
    const client = await TestClient.connect(srv.url);
    client.send({ device_id: 'origin-none', identity: 'sensor' });
    assert.equal((await client.next()).type, 'room');
    await client.close();
  });

  it('plain HTTP on the same port is not affected', async () => {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      get(`http://127.0.0.1:${srv.port}/healthz`, { headers: { Origin: 'https://evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    });
    assert.equal(status, 200);
  });
});

describe('without --allowed-origins any Origin connects (as the original)', () => {
  const srv = useServer();

  it('a page on any site connects', async () => {
    assert.equal(await tryUpgrade(srv.url, { origin: 'https://anywhere.example' }), 'open');
  });
});

describe('--allowed-origins entries are checked at start', sqliteOnly, () => {
  it('an entry that is not an origin is refused by name', () => {
    for (const bad of ['app.example.com', 'https://app.example.com/path', 'not a url']) {
      assert.throws(
        () => loadConfig({ overrides: { allowedOrigins: [bad] } }),
        (err: Error) => err.name === 'ConfigError' && /--allowed-origins/.test(err.message),
      );
    }
  });
});
