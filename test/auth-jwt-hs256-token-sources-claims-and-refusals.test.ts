import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UnsecuredJWT } from 'jose';
import { loadConfig } from '../src/config/load.js';
import { TestClient, type Frame } from './helpers/client.js';
import { sqliteOnly } from './helpers/db.js';
import { removeDir, startServer, type TestServer } from './helpers/server.js';
import { SECRET, expectUnauthorized, mint, nowSeconds } from './helpers/tokens.js';

describe('authentication with an HS256 shared secret (--jwt-secret)', () => {
  let srv: TestServer;
  const logLines: string[] = [];
  /** Every token a test used, to check afterwards that none reached the log. */
  const tokens: string[] = [];

  before(async () => {
    // Debug: the connected line (where the ?token= path is logged) is a debug line.
    srv = await startServer({ jwtSecret: SECRET }, undefined, { logLines, logLevel: 'debug' });
  });
  after(async () => {
    await srv.stop();
    removeDir(srv.dir);
  });

  async function token(sub: string | undefined, claims: Record<string, unknown> = {}, exp?: number | null) {
    const t = await mint(sub, claims, exp === undefined ? {} : { exp });
    tokens.push(t);
    return t;
  }

  async function helloWith(hello: Record<string, unknown>, options = {}): Promise<TestClient> {
    const client = await TestClient.connect(srv.url, options);
    client.send(hello);
    return client;
  }

  async function recorded(deviceId: string): Promise<{ connections: number; devices: number }> {
    const [c] = await srv.rows<{ n: number }>(
      'select count(*) as n from connections where device_id = ?',
      deviceId,
    );
    const [d] = await srv.rows<{ n: number }>(
      'select count(*) as n from devices where device_id = ?',
      deviceId,
    );
    return { connections: Number(c!.n), devices: Number(d!.n) };
  }

  async function expectRoom(client: TestClient, status: string): Promise<Frame> {
    const reply = await client.next();
    assert.equal(reply.type, 'room', JSON.stringify(reply));
    assert.equal(reply.status, status);
    return reply;
  }

  it('a valid token in the hello\'s "token" field: the hello is served and recorded', async () => {
    const client = await helloWith({ device_id: 'hs-ok', identity: 'phone', token: await token('hs-ok') });
    await expectRoom(client, 'created_new');
    assert.equal((await client.queryRoom()).type, 'room_info');
    assert.deepEqual(await recorded('hs-ok'), { connections: 1, devices: 1 });
    await client.close();
  });

  it('a token in the upgrade\'s "Authorization: Bearer" header', async () => {
    const t = await token('hs-header');
    const client = await helloWith(
      { device_id: 'hs-header', identity: 'screen' },
      { headers: { Authorization: `Bearer ${t}` } },
    );
    await expectRoom(client, 'created_new');
    await client.close();
  });

  it('a token in the "token" query parameter (browsers cannot set headers)', async () => {
    const t = await token('hs-query');
    const client = await TestClient.connect(`${srv.url}/ws?token=${encodeURIComponent(t)}`);
    client.send({ device_id: 'hs-query', identity: 'tab' });
    await expectRoom(client, 'created_new');
    await client.close();
  });

  it("the hello's token is taken before the header's", async () => {
    const wrong = await token('someone-else');
    const client = await helloWith(
      { device_id: 'hs-first', identity: 'x', token: await token('hs-first') },
      { headers: { Authorization: `Bearer ${wrong}` } },
    );
    await expectRoom(client, 'created_new');
    await client.close();
  });

  it('no token anywhere → unauthorized, close 4003, nothing recorded', async () => {
    const client = await helloWith({ device_id: 'hs-none', identity: 'x' });
    assert.match(await expectUnauthorized(client), /token is required/i);
    assert.deepEqual(await recorded('hs-none'), { connections: 0, devices: 0 });
  });

  it('a token signed with another secret → unauthorized, close 4003, nothing recorded', async () => {
    const t = await mint('hs-badsig', {}, { key: new TextEncoder().encode(`${SECRET}-but-not-this-one`) });
    const client = await helloWith({ device_id: 'hs-badsig', identity: 'x', token: t });
    assert.match(await expectUnauthorized(client, t), /signature/i);
    assert.deepEqual(await recorded('hs-badsig'), { connections: 0, devices: 0 });
  });

  it('a tampered token (payload changed after signing) → unauthorized', async () => {
    const t = await token('hs-tamper');
    const [h, , s] = t.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'hs-tamper', exp: nowSeconds() + 9e6 })).toString('base64url')}.${s}`;
    const client = await helloWith({ device_id: 'hs-tamper', identity: 'x', token: forged });
    await expectUnauthorized(client, forged);
    assert.deepEqual(await recorded('hs-tamper'), { connections: 0, devices: 0 });
  });

  it('an expired token → unauthorized ("Token expired"), close 4003, nothing recorded', async () => {
    const t = await token('hs-expired', {}, nowSeconds() - 60);
    const client = await helloWith({ device_id: 'hs-expired', identity: 'x', token: t });
    assert.equal(await expectUnauthorized(client, t), 'Token expired');
    assert.deepEqual(await recorded('hs-expired'), { connections: 0, devices: 0 });
  });

  it('a token without exp → unauthorized (exp is required)', async () => {
    const t = await token('hs-noexp', {}, null);
    const client = await helloWith({ device_id: 'hs-noexp', identity: 'x', token: t });
    assert.match(await expectUnauthorized(client, t), /"exp"/);
    assert.deepEqual(await recorded('hs-noexp'), { connections: 0, devices: 0 });
  });

  it('a token not valid yet (nbf in the future) → unauthorized', async () => {
    const t = await token('hs-nbf', { nbf: nowSeconds() + 600 });
    const client = await helloWith({ device_id: 'hs-nbf', identity: 'x', token: t });
    assert.match(await expectUnauthorized(client, t), /not valid yet/);
  });

  it('sub ≠ device_id → unauthorized, close 4003, nothing recorded for either device', async () => {
    const t = await token('hs-owner');
    const client = await helloWith({ device_id: 'hs-thief', identity: 'x', token: t });
    assert.match(await expectUnauthorized(client, t), /sub.*device_id/);
    assert.deepEqual(await recorded('hs-thief'), { connections: 0, devices: 0 });
    assert.deepEqual(await recorded('hs-owner'), { connections: 0, devices: 0 });
  });

  it('an unsigned token (alg "none"), garbage, or a token field of the wrong type → unauthorized', async () => {
    const unsigned = new UnsecuredJWT({}).setSubject('hs-none-alg').setExpirationTime('1h').encode();
    for (const t of [unsigned, 'not-a-jwt', 'a.b.c']) {
      const client = await helloWith({ device_id: 'hs-none-alg', identity: 'x', token: t });
      await expectUnauthorized(client, t);
    }
    const client = await helloWith({ device_id: 'hs-none-alg', identity: 'x', token: 42 });
    assert.match(await expectUnauthorized(client), /token must be a string/);
    assert.deepEqual(await recorded('hs-none-alg'), { connections: 0, devices: 0 });
  });

  describe('the "rooms" and "create" claims', () => {
    let allowed = '';
    let other = '';

    before(async () => {
      // Two rooms made by devices whose tokens allow anything.
      for (const device of ['hs-maker-1', 'hs-maker-2']) {
        const client = await helloWith({ device_id: device, identity: 'maker', token: await token(device) });
        const reply = await expectRoom(client, 'created_new');
        if (allowed) other = String(reply.room_id);
        else allowed = String(reply.room_id);
        await client.close();
      }
    });

    it('a token whose rooms list a room joins it (codes compared case-insensitively)', async () => {
      const t = await token('hs-r-ok', { rooms: [allowed.toLowerCase()] });
      const client = await helloWith({ device_id: 'hs-r-ok', identity: 'x', room_id: allowed, token: t });
      const reply = await expectRoom(client, 'joined_existing');
      assert.equal(reply.room_id, allowed);
      await client.close();
    });

    it('a room not in the rooms claim → unauthorized, close 4003, nothing recorded', async () => {
      const t = await token('hs-r-no', { rooms: [allowed] });
      const client = await helloWith({ device_id: 'hs-r-no', identity: 'x', room_id: other, token: t });
      assert.match(await expectUnauthorized(client, t), new RegExp(`does not allow room ${other}`));
      assert.deepEqual(await recorded('hs-r-no'), { connections: 0, devices: 0 });
    });

    it('a code that does not exist and is not in the claim → unauthorized, not room_not_found', async () => {
      const t = await token('hs-r-guess', { rooms: [allowed] });
      const client = await helloWith({
        device_id: 'hs-r-guess',
        identity: 'x',
        room_id: 'ZZZZ9999',
        token: t,
      });
      await expectUnauthorized(client, t);
    });

    it('reconnecting (no room_id) to a last room the claim does not list → unauthorized', async () => {
      // hs-maker-2's last room is `other`.
      const t = await token('hs-maker-2', { rooms: [allowed] });
      const client = await helloWith({ device_id: 'hs-maker-2', identity: 'maker', token: t });
      assert.match(await expectUnauthorized(client, t), /last room/);
      // Its last room is unchanged, and it can still go back with a token that allows it.
      const ok = await helloWith({
        device_id: 'hs-maker-2',
        identity: 'maker',
        token: await token('hs-maker-2', { rooms: [other] }),
      });
      const reply = await expectRoom(ok, 'reconnected');
      assert.equal(reply.room_id, other);
      await ok.close();
    });

    it('create: false refuses a hello that would create a room; nothing created or recorded', async () => {
      const [before] = await srv.rows<{ n: number }>('select count(*) as n from rooms');
      const t = await token('hs-c-no', { create: false });
      const client = await helloWith({ device_id: 'hs-c-no', identity: 'x', token: t });
      assert.match(await expectUnauthorized(client, t), /creating a room/);
      const [afterwards] = await srv.rows<{ n: number }>('select count(*) as n from rooms');
      assert.equal(Number(afterwards!.n), Number(before!.n));
      assert.deepEqual(await recorded('hs-c-no'), { connections: 0, devices: 0 });
    });

    it('create: false still joins an existing room by its code', async () => {
      const t = await token('hs-c-join', { create: false });
      const client = await helloWith({ device_id: 'hs-c-join', identity: 'x', room_id: allowed, token: t });
      await expectRoom(client, 'joined_existing');
      await client.close();
    });

    it('a malformed rooms claim → unauthorized', async () => {
      const t = await token('hs-r-bad', { rooms: 'ABCD1234' });
      const client = await helloWith({ device_id: 'hs-r-bad', identity: 'x', token: t });
      assert.match(await expectUnauthorized(client, t), /"rooms"/);
    });

    it('Level 2 resume into a room the claim does not list → unauthorized', async () => {
      const t = await token('hs-r-resume', { rooms: [allowed] });
      const client = await helloWith({
        device_id: 'hs-r-resume',
        identity: 'x',
        protocol: 2,
        resume: { room_id: other, last_seq: 0 },
        token: t,
      });
      await expectUnauthorized(client, t);
    });

    it('Level 2 join_room into a room the claim does not list → error unauthorized, the connection stays', async () => {
      const t = await token('hs-r-l2', { rooms: [allowed] });
      const client = await helloWith({
        device_id: 'hs-r-l2',
        identity: 'x',
        protocol: 2,
        room_id: allowed,
        token: t,
      });
      await expectRoom(client, 'joined_existing');
      client.send({ type: 'join_room', room_id: other, ack_id: 7 });
      assert.deepEqual(await client.next(), {
        type: 'error',
        message: `Token does not allow room ${other}`,
        code: 'unauthorized',
        ack_id: 7,
      });
      // Still connected, still in its room.
      client.send({ type: 'ping' });
      assert.deepEqual(await client.next(), { type: 'pong' });
      const info = await client.queryRoom();
      assert.equal(info.room_id, allowed);
      const rows = await srv.rows<{ room_id: string; disconnected_at: string | null }>(
        'select room_id, disconnected_at from connections where device_id = ?',
        'hs-r-l2',
      );
      assert.deepEqual(rows, [{ room_id: allowed, disconnected_at: null }]);
      await client.close();
    });
  });

  it('no token appears in the log (the ?token= path is logged as ***)', async () => {
    await srv.server.flushRecords();
    assert.ok(tokens.length > 10);
    const log = logLines.join('');
    for (const t of tokens) assert.ok(!log.includes(t), 'a token reached the log');
    assert.ok(log.includes('token=***'), 'the query token is redacted in the connected line');
    assert.ok(log.includes('"msg":"unauthorized"'), 'refusals are logged');
  });
});

describe('authentication settings are checked at start', sqliteOnly, () => {
  it('a secret shorter than 32 bytes is refused, without echoing it', () => {
    assert.throws(
      () => loadConfig({ overrides: { jwtSecret: 'short-secret' } }),
      (err: Error) =>
        err.name === 'ConfigError' &&
        /--jwt-secret/.test(err.message) &&
        !err.message.includes('short-secret'),
    );
  });

  it('two ways to verify at once are refused, naming both', () => {
    assert.throws(
      () => loadConfig({ overrides: { jwtSecret: SECRET, jwtJwks: '/tmp/keys.json' } }),
      /--jwt-secret.*--jwt-jwks/,
    );
  });

  it('--jwt-issuer without authentication is refused', () => {
    assert.throws(() => loadConfig({ overrides: { jwtIssuer: 'https://auth.example' } }), /--jwt-issuer/);
  });
});
