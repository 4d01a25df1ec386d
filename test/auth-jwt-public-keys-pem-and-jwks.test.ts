import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { RoomServer } from '../src/server.js';
import { pino } from 'pino';
import { TestClient } from './helpers/client.js';
import { sqliteOnly } from './helpers/db.js';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { expectUnauthorized, mint } from './helpers/tokens.js';

async function helloWith(url: string, deviceId: string, token: string): Promise<TestClient> {
  const client = await TestClient.connect(url);
  client.send({ device_id: deviceId, identity: 'x', token });
  return client;
}

async function expectCreated(client: TestClient): Promise<void> {
  const reply = await client.next();
  assert.equal(reply.type, 'room', JSON.stringify(reply));
  assert.equal(reply.status, 'created_new');
  await client.close();
}

describe('authentication with an RS256 public key in a PEM file (--jwt-public-key)', () => {
  let srv: TestServer;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let pem = '';

  before(async () => {
    const keyDir = tempDir('rm-keys-');
    rsa = await generateKeyPair('RS256', { extractable: true });
    pem = await exportSPKI(rsa.publicKey);
    const path = join(keyDir, 'public.pem');
    writeFileSync(path, pem);
    srv = await startServer({ jwtPublicKey: path }, keyDir);
  });
  after(async () => {
    await srv.stop();
    removeDir(srv.dir);
  });

  it('a token signed with the private key is accepted', async () => {
    const t = await mint('pem-ok', {}, { alg: 'RS256', key: rsa.privateKey });
    await expectCreated(await helloWith(srv.url, 'pem-ok', t));
  });

  it('a token signed with another RSA key → unauthorized, close 4003', async () => {
    const other = await generateKeyPair('RS256');
    const t = await mint('pem-other', {}, { alg: 'RS256', key: other.privateKey });
    assert.match(await expectUnauthorized(await helloWith(srv.url, 'pem-other', t), t), /signature/);
  });

  it('HS256 "signed" with the public key text (algorithm confusion) → unauthorized', async () => {
    const t = await mint('pem-confused', {}, { alg: 'HS256', key: new TextEncoder().encode(pem) });
    assert.match(await expectUnauthorized(await helloWith(srv.url, 'pem-confused', t), t), /algorithm/);
  });

  it('nothing of the refused hellos was recorded', async () => {
    const rows = await srv.rows<{ device_id: string }>(
      'select device_id from connections order by device_id',
    );
    assert.deepEqual(
      rows.map((r) => r.device_id),
      ['pem-ok'],
    );
  });
});

describe('authentication with ES256 and EdDSA keys from a JWKS file (--jwt-jwks), with issuer and audience', () => {
  let srv: TestServer;
  let es: Awaited<ReturnType<typeof generateKeyPair>>;
  let ed: Awaited<ReturnType<typeof generateKeyPair>>;
  const claims = { iss: 'https://auth.example', aud: 'room-manager' };

  before(async () => {
    const keyDir = tempDir('rm-keys-');
    es = await generateKeyPair('ES256', { extractable: true });
    ed = await generateKeyPair('EdDSA', { extractable: true });
    const keys = [
      { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
    ];
    const path = join(keyDir, 'jwks.json');
    writeFileSync(path, JSON.stringify({ keys }));
    srv = await startServer(
      { jwtJwks: path, jwtIssuer: 'https://auth.example', jwtAudience: 'room-manager' },
      keyDir,
    );
  });
  after(async () => {
    await srv.stop();
    removeDir(srv.dir);
  });

  it('an ES256 token (kid es-1) is accepted', async () => {
    const t = await mint('jwks-es', claims, { alg: 'ES256', key: es.privateKey, kid: 'es-1' });
    await expectCreated(await helloWith(srv.url, 'jwks-es', t));
  });

  it('an EdDSA token (kid ed-1) is accepted', async () => {
    const t = await mint('jwks-ed', claims, { alg: 'EdDSA', key: ed.privateKey, kid: 'ed-1' });
    await expectCreated(await helloWith(srv.url, 'jwks-ed', t));
  });

  it('a token from a key not in the set → unauthorized', async () => {
    const stranger = await generateKeyPair('ES256');
    const t = await mint('jwks-stranger', claims, { alg: 'ES256', key: stranger.privateKey, kid: 'es-1' });
    await expectUnauthorized(await helloWith(srv.url, 'jwks-stranger', t), t);
  });

  it('a wrong issuer or audience → unauthorized', async () => {
    for (const [device, wrong] of [
      ['jwks-iss', { ...claims, iss: 'https://elsewhere.example' }],
      ['jwks-aud', { ...claims, aud: 'another-service' }],
    ] as const) {
      const t = await mint(device, wrong, { alg: 'ES256', key: es.privateKey, kid: 'es-1' });
      assert.match(await expectUnauthorized(await helloWith(srv.url, device, t), t), /"(iss|aud)"/);
    }
  });

  it('nothing of the refused hellos was recorded', async () => {
    const rows = await srv.rows<{ device_id: string }>(
      'select device_id from connections order by device_id',
    );
    assert.deepEqual(
      rows.map((r) => r.device_id),
      ['jwks-ed', 'jwks-es'],
    );
  });
});

describe('a key file that cannot be used stops the start, naming the setting', sqliteOnly, () => {
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

  it('a missing PEM file', async () => {
    const err = await startError({ jwtPublicKey: '/nonexistent/public.pem' });
    assert.match(err.message, /--jwt-public-key.*cannot read \/nonexistent\/public\.pem/);
  });

  it('a JWKS file that is not a key set', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'jwks.json'), '{"not":"keys"}');
    const err = await startError({ jwtJwks: join(dir, 'jwks.json') });
    removeDir(dir);
    assert.match(err.message, /--jwt-jwks.*not a JWKS file/);
  });
});
