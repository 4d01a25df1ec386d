/**
 * /metrics counts what clients did: a scrape before, clients that connect, join, talk, err, are
 * refused and leave, a scrape after; every counter and gauge moved by exactly that.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { scrape } from './helpers/metrics.js';
import { useServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

describe('GET /metrics', () => {
  const srv = useServer();
  const metricsUrl = () => `http://127.0.0.1:${srv.port}/metrics`;

  it('names websocket_active_connections with the help text the original asks for', async () => {
    const { text } = await scrape(metricsUrl());
    assert.match(text, /^# HELP websocket_active_connections Current active WebSocket connections$/m);
    assert.match(text, /^# TYPE websocket_active_connections gauge$/m);
    // Node's default process metrics are there too.
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  });

  it('moves every counter and gauge by exactly what the clients did', async () => {
    const before = await scrape(metricsUrl());
    /** Every frame the clients sent, as sent. */
    const sent: string[] = [];
    const clients: TestClient[] = [];
    const send = (client: TestClient, value: unknown): void => {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      sent.push(text);
      client.send(text);
    };
    const hello = async (value: Record<string, unknown>) => {
      const client = await TestClient.connect(srv.url);
      clients.push(client);
      send(client, value);
      return { client, reply: await client.next() };
    };

    // Three members of one room: two at Level 1, one at Level 2.
    const { client: a, reply: created } = await hello({ device_id: 'm-a', identity: 'A' });
    assert.equal(created.status, 'created_new');
    const roomId = String(created.room_id);
    const { client: b, reply: joined } = await hello({ device_id: 'm-b', identity: 'B', room_id: roomId });
    assert.equal(joined.status, 'joined_existing');
    const { client: c, reply: joinedL2 } = await hello({
      device_id: 'm-c',
      identity: 'C',
      room_id: roomId,
      protocol: 2,
    });
    assert.equal(joinedL2.status, 'joined_existing');

    const live = await scrape(metricsUrl());
    assert.equal(live.since(before, 'websocket_active_connections'), 3);
    assert.equal(live.since(before, 'room_manager_rooms_active'), 1);
    assert.equal(live.since(before, 'room_manager_members', { protocol: 'level1' }), 2);
    assert.equal(live.since(before, 'room_manager_members', { protocol: 'level2' }), 1);

    // 32 messages from A, each to B and C: no other frame reaches the server meanwhile, so two
    // of them are timed (one frame in 16 is).
    for (let i = 0; i < 32; i++) send(a, { n: i });
    for (let i = 0; i < 32; i++) {
      assert.deepEqual(await b.next(), { n: i });
      assert.equal((await c.next()).type, 'message');
    }
    // One error frame that leaves B connected.
    send(b, 'not json');
    assert.equal((await b.next()).code, 'invalid_json');
    // Two refused hellos.
    const { client: d, reply: noIdentity } = await hello({ device_id: 'm-d' });
    assert.equal(noIdentity.code, 'missing_identity');
    assert.equal((await d.closed).code, 4001);
    const { client: e, reply: notFound } = await hello({
      device_id: 'm-e',
      identity: 'E',
      room_id: 'ZZZZZZZZ',
    });
    assert.equal(notFound.code, 'room_not_found');
    assert.equal((await e.closed).code, 4004);
    // Everyone leaves; C sees A and B go first, so that it has every frame meant for it.
    await a.close();
    assert.equal((await c.next()).type, 'member_left');
    await b.close();
    assert.equal((await c.next()).type, 'member_left');
    await c.close();

    await waitFor('the server to see every close', async () => {
      const s = await scrape(metricsUrl());
      return s.value('websocket_active_connections') === before.value('websocket_active_connections');
    });
    await srv.server.flushRecords();
    const after = await scrape(metricsUrl());
    const moved = (name: string, labels?: Record<string, string>) => after.since(before, name, labels);

    assert.equal(moved('websocket_active_connections'), 0);
    assert.equal(moved('room_manager_rooms_active'), 0);
    assert.equal(moved('room_manager_members', { protocol: 'level1' }), 0);
    assert.equal(moved('room_manager_members', { protocol: 'level2' }), 0);
    assert.equal(moved('room_manager_messages_received_total'), 32);
    assert.equal(moved('room_manager_messages_delivered_total'), 64);
    assert.equal(moved('room_manager_messages_recorded_total'), 32);
    assert.equal(moved('room_manager_delivery_seconds_count'), 2);
    assert.equal(moved('room_manager_delivery_seconds_bucket', { le: '+Inf' }), 2);
    assert.ok(moved('room_manager_delivery_seconds_sum') > 0);
    assert.equal(
      moved('room_manager_bytes_received_total'),
      sent.reduce((n, t) => n + Buffer.byteLength(t), 0),
    );
    const received = clients.flatMap((client) => client.received);
    assert.equal(
      moved('room_manager_bytes_sent_total'),
      received.reduce((n, t) => n + Buffer.byteLength(t), 0),
    );
    assert.equal(moved('room_manager_handshakes_total', { outcome: 'created_new' }), 1);
    assert.equal(moved('room_manager_handshakes_total', { outcome: 'joined_existing' }), 2);
    assert.equal(moved('room_manager_handshakes_total', { outcome: 'missing_identity' }), 1);
    assert.equal(moved('room_manager_handshakes_total', { outcome: 'room_not_found' }), 1);
    assert.equal(moved('room_manager_handshake_seconds_count'), 5);
    assert.equal(moved('room_manager_errors_total', { code: 'invalid_json' }), 1);
    assert.equal(moved('room_manager_errors_total', { code: 'missing_identity' }), 1);
    assert.equal(moved('room_manager_errors_total', { code: 'room_not_found' }), 1);
    assert.equal(moved('room_manager_closes_total', { code: '1000' }), 3);
    assert.equal(moved('room_manager_closes_total', { code: '4001' }), 1);
    assert.equal(moved('room_manager_closes_total', { code: '4004' }), 1);
    assert.equal(after.value('room_manager_records_pending'), 0);
    assert.equal(after.value('room_manager_records_spooled'), 0);
    assert.equal(after.value('room_manager_database_up'), 1);
    assert.ok(moved('room_manager_writer_batch_seconds_count') >= 1, 'the flushed batch is timed');

    // The record agrees: the 32 messages are in the database.
    const rows = await srv.rows<{ n: number }>(
      'SELECT COUNT(*) AS n FROM messages WHERE room_id = ?',
      roomId,
    );
    assert.equal(Number(rows[0]!.n), 32);
  });
});

describe('GET /metrics, refusals before a room', () => {
  const srv = useServer({ maxConnectionsPerIp: 1, limitLoopback: true, helloTimeoutMs: 300 });

  it('counts a connection refused for its address and a hello that never came', async () => {
    const url = `http://127.0.0.1:${srv.port}/metrics`;
    const before = await scrape(url);
    // A holds this address's one connection and says nothing; B is refused at once.
    const a = await TestClient.connect(srv.url);
    const b = new TestClient(srv.url);
    assert.equal((await b.next()).code, 'too_many_connections');
    assert.equal((await b.closed).code, 4029);
    assert.equal((await a.next()).code, 'hello_timeout');
    assert.equal((await a.closed).code, 4008);
    const after = await waitFor('the server to see both closes', async () => {
      const s = await scrape(url);
      return s.value('websocket_active_connections') === 0 && s;
    });
    const moved = (name: string, labels?: Record<string, string>) => after.since(before, name, labels);
    assert.equal(moved('room_manager_handshakes_total', { outcome: 'too_many_connections' }), 1);
    assert.equal(moved('room_manager_handshakes_total', { outcome: 'hello_timeout' }), 1);
    assert.equal(moved('room_manager_handshake_seconds_count'), 2);
    assert.equal(moved('room_manager_errors_total', { code: 'too_many_connections' }), 1);
    assert.equal(moved('room_manager_errors_total', { code: 'hello_timeout' }), 1);
    assert.equal(moved('room_manager_closes_total', { code: '4029' }), 1);
    assert.equal(moved('room_manager_closes_total', { code: '4008' }), 1);
    const received = [...a.received, ...b.received];
    assert.equal(
      moved('room_manager_bytes_sent_total'),
      received.reduce((n, t) => n + Buffer.byteLength(t), 0),
    );
    assert.equal(moved('room_manager_bytes_received_total'), 0);
    assert.equal(moved('room_manager_messages_received_total'), 0);
  });
});
