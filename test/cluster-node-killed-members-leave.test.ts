/**
 * Nodes die (issue 23): when a node is killed (kill -9), the others notice once its heartbeat has
 * been missing for the node TTL (--node-ttl-ms 3000 here): its members leave room_info,
 * member_left goes to the rest of each room, and its open `connections` rows get their
 * disconnected_at. Traffic among the survivors goes on with seqs unbroken, and the node, started
 * again, takes members back without closing anyone else's connection. Also: room codes drawn on
 * different nodes at once never collide (the database's primary key decides).
 *
 * No timed assertion: every wait is for a frame or a row (the TTL bounds how long it takes; the
 * test only waits for it to happen), bounded only against a hang.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pollUntil } from './helpers/chaos.js';
import { TestClient } from './helpers/client.js';
import {
  acksOf,
  clusterOnly,
  deviceIds,
  envelopesOf,
  presenceOf,
  roomInfoUntil,
  useCluster,
  waitForFrame,
} from './helpers/cluster.js';
import { joinExistingL2, newRoomL2 } from './helpers/level2.js';
import { joinExisting } from './helpers/rooms.js';
import { ROOM_CODE } from './helpers/wait.js';

interface ConnectionRow {
  id: number;
  device_id: string;
  disconnected_at: string | null;
}

/** Every seq a Level 2 member knows of: its envelopes' and its own acks', sorted. */
function knownSeqs(client: TestClient): number[] {
  return [...envelopesOf(client).map((e) => e.frame.seq), ...[...acksOf(client).values()].flat()].sort(
    (a, b) => a - b,
  );
}

describe('a node killed with kill -9: its members leave', clusterOnly, () => {
  const cluster = useCluster({ nodeTtlMs: 3000 });

  it('rooms created on three nodes at once all get distinct codes', async () => {
    const PER_NODE = 40;
    const joins = await Promise.all(
      [0, 1, 2].flatMap((node) =>
        Array.from({ length: PER_NODE }, (_, i) =>
          TestClient.join(cluster.url(node), { device_id: `codes-${node}-${i}`, identity: `Codes${node}` }),
        ),
      ),
    );
    const ids = joins.map(({ reply }) => {
      assert.equal(reply.type, 'room', JSON.stringify(reply));
      assert.equal(reply.status, 'created_new');
      assert.match(String(reply.room_id), ROOM_CODE);
      return String(reply.room_id);
    });
    assert.equal(new Set(ids).size, ids.length, 'no code twice');
    const rows = await cluster.rows<{ room_id: string }>(
      `select room_id from rooms where room_id in (${ids.map(() => '?').join(', ')})`,
      ...ids,
    );
    assert.equal(rows.length, ids.length, 'each room has its row');
    await Promise.all(joins.map(({ client }) => client.close()));
  });

  it('within the node TTL the others get member_left, room_info drops them, their connections are closed in the record; survivors go on with seqs unbroken; the node comes back', async () => {
    // Room R: w0 (node 0), w1 (node 1) survive; v2 (Level 2) and u2 (Level 1) are on node 2.
    // Room S: x0 on node 0, y2 on node 2.
    const w0 = await newRoomL2(cluster.url(0), 'kill-w0', 'W0');
    const roomId = w0.roomId;
    const w1 = await joinExistingL2(cluster.url(1), 'kill-w1', 'W1', roomId);
    const v2 = await joinExistingL2(cluster.url(2), 'kill-v2', 'V2', roomId);
    const u2 = await joinExisting(cluster.url(2), 'kill-u2', 'U2', roomId);
    const x0 = await newRoomL2(cluster.url(0), 'kill-x0', 'X0');
    await joinExistingL2(cluster.url(2), 'kill-y2', 'Y2', x0.roomId);

    // Traffic from every member of R, the victims included, until both survivors have it all.
    const K = 10;
    for (let i = 1; i <= K; i++) {
      w0.client.send({ from: 'w0', i, ack_id: `w0-${i}` });
      w1.client.send({ from: 'w1', i, ack_id: `w1-${i}` });
      v2.client.send({ from: 'v2', i, ack_id: `v2-${i}` });
      u2.send(`{"from":"u2","i":${i}}`);
    }
    const before = 4 * K;
    for (const w of [w0, w1]) {
      await pollUntil(
        'a survivor knows every seq sent before the kill',
        () => knownSeqs(w.client).length,
        (n) => n >= before,
        1500,
        20,
      );
    }
    await pollUntil(
      "v2's acks",
      () => acksOf(v2.client).size,
      (n) => n >= K,
      1500,
      20,
    );

    // The victims' connections are in the record, open, before the kill.
    const victims = ['kill-v2', 'kill-u2', 'kill-y2'];
    const survivors = ['kill-w0', 'kill-w1', 'kill-x0'];
    const connections = (devices: string[]) =>
      cluster.rows<ConnectionRow>(
        `select id, device_id, disconnected_at from connections where device_id in (${devices.map(() => '?').join(', ')})`,
        ...devices,
      );
    await pollUntil(
      "the victims' open connections recorded",
      () => connections(victims),
      (rows) => rows.length === victims.length && rows.every((r) => r.disconnected_at === null),
      1500,
      20,
    );

    await cluster.kill9(2);

    // member_left for each of its devices, on both other nodes, in both rooms.
    for (const [w, gone] of [
      [w0.client, ['kill-v2', 'kill-u2']],
      [w1.client, ['kill-v2', 'kill-u2']],
      [x0.client, ['kill-y2']],
    ] as const) {
      for (const device of gone) {
        const room = w === x0.client ? x0.roomId : roomId;
        const left = await waitForFrame(
          w,
          `member_left ${device} after node 2 was killed`,
          presenceOf('member_left', room, device),
        );
        assert.deepEqual(left, {
          type: 'member_left',
          room_id: room,
          device_id: device,
          identity: device.slice('kill-'.length).toUpperCase(),
        });
      }
    }
    // room_info on the survivors no longer counts them.
    const info0 = await roomInfoUntil(w0.client, 'room_info on node 0: 2', (f) => f.total_clients === 2);
    assert.deepEqual(deviceIds(info0.clients), ['kill-w1']);
    const info1 = await roomInfoUntil(w1.client, 'room_info on node 1: 2', (f) => f.total_clients === 2);
    assert.deepEqual(deviceIds(info1.clients), ['kill-w0']);
    const infoS = await roomInfoUntil(x0.client, 'room_info of S on node 0: 1', (f) => f.total_clients === 1);
    assert.deepEqual(deviceIds(infoS.clients), []);

    // The killed node's connections are closed in the record; the survivors' stay open.
    const closed = await pollUntil(
      "the killed node's connections closed in the record",
      () => connections(victims),
      (rows) => rows.length === victims.length && rows.every((r) => r.disconnected_at !== null),
      1500,
      20,
    );
    assert.equal(closed.length, victims.length);
    const open = await connections(survivors);
    assert.deepEqual(
      open.map((r) => [r.device_id, r.disconnected_at]).sort(),
      survivors.map((d) => [d, null]),
    );

    // Traffic among the survivors goes on; every seq of the room, before and after, once.
    for (let i = K + 1; i <= 2 * K; i++) {
      w0.client.send({ from: 'w0', i, ack_id: `w0-${i}` });
      w1.client.send({ from: 'w1', i, ack_id: `w1-${i}` });
    }
    const total = before + 2 * K;
    for (const [name, w] of [
      ['w0', w0.client],
      ['w1', w1.client],
    ] as const) {
      await pollUntil(
        `${name} knows every seq`,
        () => knownSeqs(w).length,
        (n) => n >= total,
        1500,
        20,
      );
      assert.deepEqual(
        knownSeqs(w),
        Array.from({ length: total }, (_, i) => i + 1),
        `${name}: seqs 1..${total}, none missing, none twice`,
      );
    }

    // Node 2 started again: a victim says a bare hello there and is back in its room; starting
    // closed nobody else's connection.
    await cluster.restart(2);
    assert.deepEqual(
      (await connections(survivors)).map((r) => [r.device_id, r.disconnected_at]).sort(),
      survivors.map((d) => [d, null]),
      "a restarted node leaves the other nodes' connections open",
    );
    const back = await TestClient.join(cluster.url(2), { device_id: 'kill-v2', identity: 'V2', protocol: 2 });
    assert.equal(back.reply.status, 'reconnected', JSON.stringify(back.reply));
    assert.equal(back.reply.room_id, roomId);
    assert.deepEqual(deviceIds(back.reply.members), ['kill-v2', 'kill-w0', 'kill-w1']);
    await waitForFrame(w0.client, 'kill-v2 is back', presenceOf('member_joined', roomId, 'kill-v2'));
    w1.client.send({ from: 'w1', i: 'after-restart', ack_id: 'w1-after-restart' });
    const envelope = await waitForFrame(
      back.client,
      'v2 on the restarted node gets the next message',
      (f) => f.type === 'message',
    );
    assert.equal(envelope.seq, total + 1);

    await Promise.all([w0.client, w1.client, x0.client, back.client].map((c) => c.close()));
  });
});
