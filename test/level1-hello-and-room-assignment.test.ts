import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';

describe('hello and room assignment', () => {
  const srv = useServer();

  it('greets with the connection frame', async () => {
    const client = new TestClient(srv.url);
    await client.opened;
    const first = await client.next();
    assert.equal(first.type, 'connection');
    assert.equal(first.message, 'Connected successfully');
    await client.close();
  });

  it('creates a new room for a new device, and reconnects it there', async () => {
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'dev-new',
      identity: 'mobile_user',
    });
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    assert.match(String(reply.room_id), /^[A-Z0-9]{8}$/);
    assert.equal(reply.message, `created_new: joined room ${reply.room_id}`);
    await client.close();
    const again = await TestClient.join(srv.url, { device_id: 'dev-new', identity: 'mobile_user' });
    assert.deepEqual(again.reply, {
      type: 'room',
      room_id: reply.room_id,
      status: 'reconnected',
      message: `reconnected: joined room ${reply.room_id}`,
    });
    await again.client.close();
  });

  it('forwards a message unchanged to the others and never to the sender', async () => {
    const a = await TestClient.join(srv.url, { device_id: 'fa', identity: 'screen' });
    const roomId = String(a.reply.room_id);
    const b = await TestClient.join(srv.url, {
      device_id: 'fb',
      identity: 'phone',
      room_id: roomId.toLowerCase(),
    });
    assert.equal(b.reply.status, 'joined_existing');
    assert.equal(b.reply.room_id, roomId);
    const text = '{"z":1,"a":{"nested":[1,2,{"x":null}]},"u":"h\\u00e9llo ✓","type":"custom"}';
    a.client.send(text);
    assert.equal(await b.client.nextText(), text);
    const info = await a.client.queryRoom();
    assert.deepEqual(info, {
      type: 'room_info',
      room_id: roomId,
      total_clients: 2,
      clients: [{ device_id: 'fb', identity: 'phone' }],
    });
    const rows = await srv.rows<{ message_content: string; to_device_id: string | null }>(
      'select message_content, to_device_id from messages where room_id = ?',
      roomId,
    );
    assert.deepEqual(rows, [{ message_content: text, to_device_id: null }]);
    await a.client.close();
    await b.client.close();
  });
});
