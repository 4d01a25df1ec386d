import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';

describe('a client that never says hello is closed after the hello timeout', () => {
  const srv = useServer({ helloTimeoutMs: 300 });

  it('gets error hello_timeout, then close 4008', async () => {
    const client = await TestClient.connect(srv.url);
    const frame = await client.next();
    assert.deepEqual(Object.keys(frame).sort(), ['code', 'message', 'type']);
    assert.equal(frame.type, 'error');
    assert.equal(frame.code, 'hello_timeout');
    assert.equal(typeof frame.message, 'string');
    assert.ok(String(frame.message).length > 0);
    const closed = await client.closed;
    assert.equal(closed.code, CloseCode.HelloTimeout);
    assert.deepEqual(await srv.rows('select id from connections'), []);
  });

  it('a client that says hello in time is not closed by the timeout', async () => {
    const client = await TestClient.connect(srv.url);
    client.send({ device_id: 'ht-ok', identity: 'x' });
    const reply = await client.next();
    assert.equal(reply.type, 'room');
    // Wait past the timeout by waiting for something that takes longer: a second silent client's
    // timeout; then the first is still answering.
    const silent = await TestClient.connect(srv.url);
    assert.equal((await silent.closed).code, CloseCode.HelloTimeout);
    const info = await client.queryRoom();
    assert.equal(info.type, 'room_info');
    await client.close();
  });
});
