import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { ISO_MS } from './helpers/wait.js';

describe('after a restart on the same database, rooms, devices and seq carry on', () => {
  const dir = tempDir();
  let first: TestServer | undefined;
  let second: TestServer | undefined;
  let roomId = '';
  let seqBefore = 0;

  before(async () => {
    first = await startServer({}, dir);
    const a = await joinNew(first.url, 'rs-a', 'screen');
    roomId = a.roomId;
    const b = await joinExisting(first.url, 'rs-b', 'phone', roomId);
    a.client.send('{"before":1}');
    a.client.send('{"before":2}');
    b.send('{"before":3}');
    assert.equal(await b.nextText(), '{"before":1}');
    assert.equal(await b.nextText(), '{"before":2}');
    assert.equal(await a.client.nextText(), '{"before":3}');
    await first.stop();
    assert.equal((await a.client.closed).code, 1012);
    assert.equal((await b.closed).code, 1012);
    seqBefore = (
      await first.rows<{ seq: number }>('select max(seq) as seq from messages where room_id = ?', roomId)
    )[0]!.seq;
    assert.equal(seqBefore, 3);
    second = await startServer({}, dir);
  });
  after(async () => {
    await first?.stop();
    await second?.stop();
    removeDir(dir);
  });

  it('the device reconnects with no room_id into the same room', async () => {
    const { client, reply } = await TestClient.join(second!.url, { device_id: 'rs-a', identity: 'screen' });
    assert.deepEqual(reply, {
      type: 'room',
      room_id: roomId,
      status: 'reconnected',
      message: `reconnected: joined room ${roomId}`,
    });
    await client.close();
  });

  it('the room is joinable by its code', async () => {
    const c = await joinExisting(second!.url, 'rs-c', 'tablet', roomId.toLowerCase());
    await c.close();
  });

  it('message seq continues from the previous maximum', async () => {
    const a = await TestClient.join(second!.url, { device_id: 'rs-a', identity: 'screen' });
    assert.equal(a.reply.status, 'reconnected');
    const b = await TestClient.join(second!.url, { device_id: 'rs-b', identity: 'phone' });
    assert.equal(b.reply.status, 'reconnected');
    assert.equal(b.reply.room_id, roomId);
    a.client.send('{"after":1}');
    assert.equal(await b.client.nextText(), '{"after":1}');
    b.client.send('{"after":2}');
    assert.equal(await a.client.nextText(), '{"after":2}');
    const rows = await second!.rows<{ message_content: string; seq: number; from_device_id: string }>(
      'select from_device_id, message_content, seq from messages where room_id = ? order by seq',
      roomId,
    );
    assert.deepEqual(rows, [
      { from_device_id: 'rs-a', message_content: '{"before":1}', seq: 1 },
      { from_device_id: 'rs-a', message_content: '{"before":2}', seq: 2 },
      { from_device_id: 'rs-b', message_content: '{"before":3}', seq: 3 },
      { from_device_id: 'rs-a', message_content: '{"after":1}', seq: seqBefore + 1 },
      { from_device_id: 'rs-b', message_content: '{"after":2}', seq: seqBefore + 2 },
    ]);
    await b.client.close();
    await a.client.close();
  });

  it('the first run’s connections were all closed in the record; the devices kept their first connection time', async () => {
    const rows = await second!.rows<{ device_id: string; disconnected_at: string | null }>(
      'select device_id, disconnected_at from connections order by id limit 2',
    );
    assert.deepEqual(
      rows.map((r) => r.device_id),
      ['rs-a', 'rs-b'],
    );
    for (const r of rows) assert.match(String(r.disconnected_at), ISO_MS);
    const devices = await second!.rows<{ first_connected_at: string; last_connected_at: string }>(
      "select first_connected_at, last_connected_at from devices where device_id = 'rs-a'",
    );
    const firstConn = await second!.rows<{ connected_at: string }>(
      "select connected_at from connections where device_id = 'rs-a' order by id limit 1",
    );
    assert.ok(devices[0]!.first_connected_at <= firstConn[0]!.connected_at);
    assert.ok(devices[0]!.last_connected_at > devices[0]!.first_connected_at);
  });

  it('a new room after the restart does not reuse a code and is distinct', async () => {
    const fresh = await joinNew(second!.url, 'rs-new', 'x');
    assert.notEqual(fresh.roomId, roomId);
    const rooms = await second!.rows('select room_id from rooms order by created_at');
    assert.deepEqual(rooms, [{ room_id: roomId }, { room_id: fresh.roomId }]);
    await fresh.client.close();
  });
});
