/**
 * A node that stalls (here: SIGSTOP) for longer than the node TTL is taken for dead by the others:
 * its members leave their rooms (member_left) and their connections are recorded closed. When it
 * wakes up it learns that it was reaped and closes its clients with 1012, so that they reconnect
 * and the rooms and the record tell the truth again (no member the others think gone, no open
 * socket behind a closed row).
 *
 * No timed assertion: every wait is for a frame, a close or a row, bounded only against a hang.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pollUntil } from './helpers/chaos.js';
import {
  clusterOnly,
  deviceIds,
  presenceOf,
  roomInfoUntil,
  useCluster,
  waitForFrame,
} from './helpers/cluster.js';
import { joinExistingL2, newRoomL2 } from './helpers/level2.js';

interface ConnectionRow {
  id: number;
  disconnected_at: string | null;
}

describe('a node stalled past its TTL', clusterOnly, () => {
  const cluster = useCluster({ nodeTtlMs: 1500 });

  it('is reaped by the others, and once awake closes its clients with 1012; they come back', async () => {
    const w0 = await newRoomL2(cluster.url(0), 'stall-w0', 'W0');
    const roomId = w0.roomId;
    const v1 = await joinExistingL2(cluster.url(1), 'stall-v1', 'V1', roomId);
    await waitForFrame(w0.client, 'member_joined stall-v1', presenceOf('member_joined', roomId, 'stall-v1'));
    const rowsOf = (device: string) =>
      cluster.rows<ConnectionRow>('select id, disconnected_at from connections where device_id = ?', device);
    const [first] = await pollUntil(
      "v1's connection recorded",
      () => rowsOf('stall-v1'),
      (rows) => rows.length === 1,
      1500,
      20,
    );

    const pid = cluster.run(1).proc.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await waitForFrame(w0.client, 'member_left stall-v1', presenceOf('member_left', roomId, 'stall-v1'));
      await pollUntil(
        "v1's connection recorded closed by the reaper",
        () => rowsOf('stall-v1'),
        (rows) => rows[0]?.disconnected_at !== null,
        1500,
        20,
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    // Awake: the node finds it was reaped and closes its clients to reconnect.
    const closed = await v1.client.closed;
    assert.equal(closed.code, 1012, `v1 closed with ${closed.code} ${closed.reason}`);

    // v1 reconnects (to the same node) and is in the room again, for everyone.
    const back = await joinExistingL2(cluster.url(1), 'stall-v1', 'V1', roomId);
    const info = await roomInfoUntil(
      w0.client,
      'room_info on node 0 counts v1 again',
      (f) => f.total_clients === 2,
    );
    assert.deepEqual(deviceIds(info.clients), ['stall-v1']);
    back.client.send({ hello: 'after the stall', ack_id: 'a1' });
    const message = await waitForFrame(w0.client, 'v1 heard after the stall', (f) => f.type === 'message');
    assert.deepEqual(message.data, { hello: 'after the stall' });

    const rows = await pollUntil(
      "v1's connections in the record: the first closed, the new one open",
      () => rowsOf('stall-v1'),
      (r) => r.length === 2,
      1500,
      20,
    );
    const byId = new Map(rows.map((r) => [Number(r.id), r.disconnected_at]));
    assert.notEqual(byId.get(Number(first!.id)), null);
    assert.deepEqual(
      rows.filter((r) => r.disconnected_at === null).length,
      1,
      'exactly one open connection of v1',
    );
    await back.client.close();
    await w0.client.close();
  });
});
