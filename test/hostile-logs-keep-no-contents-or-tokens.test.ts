import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, type TestServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { waitFor } from './helpers/wait.js';
import { refusedFirstFrame } from './helpers/hostile.js';

/** Markers that must never reach a log line. */
const SECRET = {
  queryToken: 'QUERY-TOKEN-5f1c',
  headerToken: 'HEADER-TOKEN-9a7e',
  helloToken: 'HELLO-TOKEN-2b6d',
  content: 'MESSAGE-CONTENT-77aa',
  badHello: 'REJECTED-HELLO-CONTENT-41c3',
};

describe('what is logged: events and codes, never message contents or tokens', () => {
  const logLines: string[] = [];
  let srv: TestServer;
  before(async () => {
    // Debug: the per-connection lines (connected, room assigned, disconnected) are debug lines.
    srv = await startServer({}, undefined, { logLines, logLevel: 'debug' });
  });
  after(async () => {
    await srv.stop();
    removeDir(srv.dir);
  });

  const messages = () => logLines.map((l) => (JSON.parse(l) as { msg: string }).msg);

  it('a session with tokens and contents leaves its events in the log and none of the secrets', async () => {
    // A token in the query string and in an Authorization header (browsers and backends pass them so).
    const client = await TestClient.connect(`${srv.url}/ws?token=${SECRET.queryToken}`, {
      headers: { Authorization: `Bearer ${SECRET.headerToken}` },
    });
    client.send({ device_id: 'log-a', identity: 'logger', token: SECRET.helloToken });
    const reply = await client.next();
    assert.equal(reply.type, 'room');
    const mate = await joinExisting(srv.url, 'log-b', 'mate', String(reply.room_id));
    client.send({ type: 'chat', text: SECRET.content });
    assert.match(await mate.nextText(), new RegExp(SECRET.content));
    client.send(`not json ${SECRET.content}`);
    await client.next();

    // A refused hello, an unknown room and a replaced connection are logged too.
    await refusedFirstFrame(srv.url, `{"identity":"${SECRET.badHello}"`);
    await refusedFirstFrame(
      srv.url,
      JSON.stringify({ device_id: 'log-c', identity: 'x', room_id: 'ZZZZZZZ9' }),
    );
    const replacer = await joinExisting(srv.url, 'log-b', 'mate-again', String(reply.room_id));
    await mate.closed;
    await replacer.close();
    await client.close();

    await waitFor('the disconnect lines', () => messages().filter((m) => m === 'disconnected').length >= 5);
    for (const line of logLines) {
      for (const secret of Object.values(SECRET))
        assert.ok(!line.includes(secret), `log line leaks ${secret}: ${line}`);
    }
    const seen = new Set(messages());
    for (const m of [
      'connected',
      'room assigned',
      'disconnected',
      'hello rejected',
      'room not found',
      'replaced by a newer connection',
    ])
      assert.ok(seen.has(m), `no "${m}" line`);
    // The disconnect line carries the close code.
    const disconnects = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'disconnected');
    assert.ok(disconnects.every((l) => typeof l.code === 'number'));
  });

  it('a hostile client\u2019s rejected frames leave no content in the log', async () => {
    const a = await joinNew(srv.url, 'log-hostile', 'x');
    a.client.send(`{"unterminated":"${SECRET.content}`);
    await a.client.next();
    a.client.ws.send(Buffer.from([0xff, ...Buffer.from(SECRET.content)]), { binary: true });
    await a.client.next();
    await a.client.close();
    await waitFor('the disconnect line', () =>
      logLines.some((l) => l.includes('"msg":"disconnected"') && l.includes('"device":"log-hostile"')),
    );
    for (const line of logLines) assert.ok(!line.includes(SECRET.content), `log line leaks content: ${line}`);
  });
});
