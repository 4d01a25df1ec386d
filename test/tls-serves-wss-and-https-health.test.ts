import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { RoomServer } from '../src/server.js';
import { PROJECT_ROOT } from './helpers/cli.js';
import { TestClient } from './helpers/client.js';
import { sqliteOnly } from './helpers/db.js';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { tryUpgrade } from './helpers/tokens.js';

/** A self-signed certificate for localhost / 127.0.0.1, valid for 100 years (see its README). */
const CERT = join(PROJECT_ROOT, 'test/fixtures/tls/cert.pem');
const KEY = join(PROJECT_ROOT, 'test/fixtures/tls/key.pem');
const ca = readFileSync(CERT);

describe('--tls-cert / --tls-key: the port serves wss:// and https://', () => {
  let srv: TestServer;
  const logLines: string[] = [];
  let wss = '';

  before(async () => {
    srv = await startServer({ tlsCert: CERT, tlsKey: KEY }, undefined, { logLines });
    wss = `wss://127.0.0.1:${srv.port}`;
  });
  after(async () => {
    await srv.stop();
    removeDir(srv.dir);
  });

  it('logs a wss:// URL', () => {
    const listening = logLines
      .map((line) => JSON.parse(line) as { msg: string; url?: string })
      .find((l) => l.msg === 'listening');
    assert.match(listening?.url ?? '', /^wss:\/\/127\.0\.0\.1:\d+$/);
  });

  it('a client that trusts the certificate talks to a room over wss://, and it is recorded', async () => {
    const a = await TestClient.connect(wss, { ca });
    a.send({ device_id: 'tls-a', identity: 'phone' });
    const reply = await a.next();
    assert.equal(reply.status, 'created_new');
    const b = await TestClient.connect(`${wss}/any/path`, { ca });
    b.send({ device_id: 'tls-b', identity: 'screen', room_id: reply.room_id });
    assert.equal((await b.next()).status, 'joined_existing');
    b.send('{"over":"tls"}');
    assert.equal(await a.nextText(), '{"over":"tls"}');
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where from_device_id = ?',
      'tls-b',
    );
    assert.deepEqual(rows, [{ message_content: '{"over":"tls"}' }]);
    await a.close();
    await b.close();
  });

  it('a client that does not trust the certificate is refused by its own TLS check', async () => {
    await assert.rejects(tryUpgrade(wss), /self[- ]signed|certificate/i);
  });

  it('GET /healthz answers over https://', async () => {
    const { status, body } = await new Promise<{ status: number | undefined; body: string }>(
      (resolve, reject) => {
        get(`https://127.0.0.1:${srv.port}/healthz`, { ca }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode, body: text }));
        }).on('error', reject);
      },
    );
    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(body), { status: 'ok' });
  });
});

describe('TLS settings are checked', sqliteOnly, () => {
  it('--tls-cert without --tls-key (or the reverse) is a configuration error naming both', () => {
    for (const overrides of [{ tlsCert: CERT }, { tlsKey: KEY }]) {
      assert.throws(
        () => loadConfig({ overrides }),
        (err: Error) =>
          err.name === 'ConfigError' && /--tls-cert/.test(err.message) && /--tls-key/.test(err.message),
      );
    }
  });

  async function startError(overrides: Partial<Config>): Promise<Error> {
    const dir = tempDir();
    const config = loadConfig({
      overrides: { port: 0, databaseUrl: `sqlite:${join(dir, 'db.sqlite')}`, spoolDir: dir, ...overrides },
    });
    const server = new RoomServer(config, { logger: pino({ level: 'silent' }) });
    try {
      await server.start();
    } catch (err) {
      return err as Error;
    } finally {
      await server.stop();
      removeDir(dir);
    }
    throw new Error('the server started');
  }

  it('an unreadable certificate file stops the start with a message naming the setting', async () => {
    const err = await startError({ tlsCert: '/nonexistent/cert.pem', tlsKey: KEY });
    assert.match(err.message, /--tls-cert.*cannot read \/nonexistent\/cert\.pem/);
  });

  it('a key that is not PEM stops the start with a message naming both settings', async () => {
    const err = await startError({ tlsCert: CERT, tlsKey: CERT });
    assert.match(err.message, /--tls-cert.*--tls-key.*not a usable/);
  });
});
