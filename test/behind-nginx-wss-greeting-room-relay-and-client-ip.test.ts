/**
 * The nginx site in deploy/ works as shipped: a real nginx (where it is installed; .ci/run
 * installs it) runs deploy/nginx/room-manager.conf, with only its ports, upstream, certificate
 * and log folder replaced, in front of a server started with --trusted-proxies 127.0.0.1, and a
 * real client talks to the server through it over wss://.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROJECT_ROOT } from './helpers/cli.js';
import { TestClient } from './helpers/client.js';
import { Nginx, freePort, nginxSkip, render } from './helpers/nginx.js';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const SITE = join(PROJECT_ROOT, 'deploy/nginx/room-manager.conf');
/** The throwaway certificate of the TLS test (localhost / 127.0.0.1, see its README). */
const CERT = join(PROJECT_ROOT, 'test/fixtures/tls/cert.pem');
const KEY = join(PROJECT_ROOT, 'test/fixtures/tls/key.pem');
const ca = readFileSync(CERT);
/** The client's own address: nginx sees it, the server sees nginx (127.0.0.1). */
const CLIENT_IP = '127.0.0.2';

interface Answer {
  status: number | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

function get(url: string): Promise<Answer> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('behind nginx with deploy/nginx/room-manager.conf', { skip: nginxSkip() }, () => {
  let srv: TestServer;
  let nginx: Nginx | undefined;
  let dir = '';
  let wss = '';
  let https = '';
  let http = '';

  before(async () => {
    srv = await startServer({ trustedProxies: ['127.0.0.1'] });
    dir = tempDir('rm-nginx-');
    const [tlsPort, httpPort] = [await freePort(), await freePort()];
    const site = render(readFileSync(SITE, 'utf8'), [
      ['127.0.0.1:8765', `127.0.0.1:${srv.port}`],
      ['listen 443 ssl;', `listen 127.0.0.1:${tlsPort} ssl;`],
      ['listen 80;', `listen 127.0.0.1:${httpPort};`],
      // One loopback address is enough here (and IPv6 may be off).
      ['listen [::]:443 ssl;', ''],
      ['listen [::]:80;', ''],
      ['/etc/letsencrypt/live/rooms.example.com/fullchain.pem', CERT],
      ['/etc/letsencrypt/live/rooms.example.com/privkey.pem', KEY],
      ['/var/log/nginx/', `${dir}/`],
    ]);
    nginx = await Nginx.start(dir, site, tlsPort);
    wss = `wss://127.0.0.1:${tlsPort}`;
    https = `https://127.0.0.1:${tlsPort}`;
    http = `http://127.0.0.1:${httpPort}`;
  });
  after(async () => {
    try {
      await nginx?.stop();
    } finally {
      await srv?.stop();
      if (srv) removeDir(srv.dir);
      if (dir) removeDir(dir);
    }
  });

  const options = { ca, localAddress: CLIENT_IP };

  it('a wss:// client gets the greeting and a room, a second joins it, and a message relays', async () => {
    const a = new TestClient(wss, options);
    await a.opened;
    const greeting = await a.next();
    assert.equal(greeting.type, 'connection');
    assert.equal(greeting.message, 'Connected successfully');
    a.send({ device_id: 'nginx-a', identity: 'phone' });
    const room = await a.next();
    assert.equal(room.type, 'room');
    assert.equal(room.status, 'created_new');

    const b = await TestClient.connect(`${wss}/any/path`, options);
    b.send({ device_id: 'nginx-b', identity: 'screen', room_id: room.room_id });
    assert.equal((await b.next()).status, 'joined_existing');
    b.send('{"via":"nginx"}');
    assert.equal(await a.nextText(), '{"via":"nginx"}');

    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where from_device_id = ?',
      'nginx-b',
    );
    assert.deepEqual(rows, [{ message_content: '{"via":"nginx"}' }]);
    await a.close();
    await b.close();
  });

  it("the client's address is recorded, not nginx's, and a forged X-Real-IP does not get through", async () => {
    const honest = await TestClient.connect(wss, options);
    const forger = await TestClient.connect(wss, {
      ...options,
      headers: { 'X-Real-IP': '203.0.113.9', 'X-Forwarded-For': '198.51.100.1' },
    });
    honest.send({ device_id: 'nginx-ip', identity: 'x' });
    forger.send({ device_id: 'nginx-forged-ip', identity: 'x' });
    assert.equal((await honest.next()).type, 'room');
    assert.equal((await forger.next()).type, 'room');
    const rows = await srv.rows<{ device_id: string; client_ip: string }>(
      "select device_id, client_ip from connections where device_id in ('nginx-ip', 'nginx-forged-ip') order by device_id",
    );
    assert.deepEqual(rows, [
      { device_id: 'nginx-forged-ip', client_ip: CLIENT_IP },
      { device_id: 'nginx-ip', client_ip: CLIENT_IP },
    ]);
    await honest.close();
    await forger.close();
  });

  it('/healthz answers 200 through nginx; /metrics is not served there', async () => {
    const health = await get(`${https}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
    assert.equal((await get(`${https}/metrics`)).status, 404);
  });

  it('plain http:// is redirected to https://', async () => {
    const answer = await get(`${http}/some/path?x=1`);
    assert.equal(answer.status, 301);
    assert.equal(answer.headers.location, 'https://127.0.0.1/some/path?x=1');
  });

  it("nginx's access log keeps no ?token= (a browser's JWT)", async () => {
    const client = await TestClient.connect(`${wss}/rooms?token=not-for-the-log`, options);
    await client.close();
    const lines = await waitFor('the access log line of /rooms', () => {
      const all = nginx!.accessLog();
      return all.some((line) => line.includes('/rooms')) && all;
    });
    assert.ok(
      lines.every((line) => !line.includes('not-for-the-log')),
      lines.join('\n'),
    );
    assert.ok(lines.some((line) => line.startsWith(`${CLIENT_IP} `)));
  });
});
