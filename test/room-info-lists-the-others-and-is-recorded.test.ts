import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import type { Frame } from './helpers/client.js';
import { joinExisting, joinNew, roomInfoWhenTotal } from './helpers/rooms.js';
import { ISO_MS } from './helpers/wait.js';

type Member = { device_id: string; identity: string };

function sortMembers(list: unknown): Member[] {
  return [...(list as Member[])].sort((a, b) => a.device_id.localeCompare(b.device_id));
}

describe('room_info lists the other members, counts everyone, and is recorded', () => {
  const srv = useServer();

  it('alone in the room: total_clients 1, clients []', async () => {
    const a = await joinNew(srv.url, 'ri-alone', 'screen');
    const info = await a.client.queryRoom();
    assert.deepEqual(info, { type: 'room_info', room_id: a.roomId, total_clients: 1, clients: [] });
    await a.client.close();
  });

  it('with three members each sees the two others and total_clients 3', async () => {
    const a = await joinNew(srv.url, 'ri-a', 'screen');
    const b = await joinExisting(srv.url, 'ri-b', 'phone', a.roomId);
    const c = await joinExisting(srv.url, 'ri-c', 'tablet', a.roomId);
    const everyone: Member[] = [
      { device_id: 'ri-a', identity: 'screen' },
      { device_id: 'ri-b', identity: 'phone' },
      { device_id: 'ri-c', identity: 'tablet' },
    ];
    for (const [client, self] of [
      [a.client, 'ri-a'],
      [b, 'ri-b'],
      [c, 'ri-c'],
    ] as const) {
      const info: Frame = await client.queryRoom();
      assert.deepEqual(Object.keys(info).sort(), ['clients', 'room_id', 'total_clients', 'type']);
      assert.equal(info.type, 'room_info');
      assert.equal(info.room_id, a.roomId);
      assert.equal(info.total_clients, 3);
      assert.deepEqual(
        sortMembers(info.clients),
        everyone.filter((m) => m.device_id !== self),
      );
    }
    await c.close();
    // After a member left, the count follows.
    const after = await roomInfoWhenTotal(a.client, 2);
    assert.deepEqual(after.clients, [{ device_id: 'ri-b', identity: 'phone' }]);
    await b.close();
    await a.client.close();
  });

  it('query_room with extra fields is still a query, and is not forwarded', async () => {
    const a = await joinNew(srv.url, 'ri-extra-a', 'x');
    const b = await joinExisting(srv.url, 'ri-extra-b', 'y', a.roomId);
    a.client.send({ type: 'query_room', extra: [1, 2], room_id: 'ZZZZZZZZ' });
    const info = await a.client.next();
    assert.deepEqual(info, {
      type: 'room_info',
      room_id: a.roomId,
      total_clients: 2,
      clients: [{ device_id: 'ri-extra-b', identity: 'y' }],
    });
    // b's next frame is the marker a sends after the query: the query was not forwarded.
    a.client.send('{"marker":1}');
    assert.equal(await b.nextText(), '{"marker":1}');
    const messages = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(messages, [{ message_content: '{"marker":1}' }]);
    await b.close();
    await a.client.close();
  });

  it('each query is recorded in room_queries (device_id, room_id, queried_at)', async () => {
    const a = await joinNew(srv.url, 'rq-a', 'x');
    const b = await joinExisting(srv.url, 'rq-b', 'y', a.roomId);
    const before = new Date().toISOString();
    await a.client.queryRoom();
    await b.queryRoom();
    await a.client.queryRoom();
    const after = new Date().toISOString();
    const rows = await srv.rows<{ device_id: string; room_id: string; queried_at: string }>(
      'select device_id, room_id, queried_at from room_queries where room_id = ? order by id',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => ({ device_id: r.device_id, room_id: r.room_id })),
      [
        { device_id: 'rq-a', room_id: a.roomId },
        { device_id: 'rq-b', room_id: a.roomId },
        { device_id: 'rq-a', room_id: a.roomId },
      ],
    );
    for (const r of rows) {
      assert.match(r.queried_at, ISO_MS);
      assert.ok(
        r.queried_at >= before && r.queried_at <= after,
        `${r.queried_at} within [${before}, ${after}]`,
      );
    }
    assert.ok(rows[0]!.queried_at <= rows[1]!.queried_at && rows[1]!.queried_at <= rows[2]!.queried_at);
    await b.close();
    await a.client.close();
  });
});
