/**
 * A device across nodes (issue 23): the same-device rule (replace, by default) holds wherever the
 * older connection lives; a device reconnecting to another node with a bare hello lands in its
 * last room; and a Level 2 device that dropped on one node resumes on another with exactly the
 * messages it missed, nothing twice, nothing missing, while traffic goes on.
 *
 * No timed assertion: every wait is for a frame or a row, bounded only against a hang.
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
  framesOf,
  presenceOf,
  roomInfoUntil,
  useCluster,
  waitForFrame,
} from './helpers/cluster.js';
import { joinExistingL2, joinL2, newRoomL2, resumeL2 } from './helpers/level2.js';
import { joinExisting } from './helpers/rooms.js';

/** The Replaced close code (src/protocol/codes.ts CloseCode.Replaced). */
const REPLACED = 4009;

describe('the same device and reconnects across nodes', clusterOnly, () => {
  const cluster = useCluster();

  it('the same device joining on node B while connected on node A: A’s connection is closed with 4009 (Level 2 and Level 1), and no presence event is sent for it', async () => {
    const host = await newRoomL2(cluster.url(1), 'dup-host', 'Host');
    const roomId = host.roomId;

    // Level 2: on node 0, then again on node 2.
    const first = await joinExistingL2(cluster.url(0), 'dup-l2', 'Dup', roomId);
    await waitForFrame(host.client, 'dup-l2 joined', presenceOf('member_joined', roomId, 'dup-l2'));
    const again = await joinL2(cluster.url(2), 'dup-l2', 'Dup', roomId);
    assert.equal(again.reply.status, 'joined_existing');
    assert.deepEqual(deviceIds(again.reply.members), ['dup-host', 'dup-l2']);
    assert.equal((await first.client.closed).code, REPLACED);

    // Level 1: on node 2, then again on node 0.
    const l1 = await joinExisting(cluster.url(2), 'dup-l1', 'DupOne', roomId);
    await waitForFrame(host.client, 'dup-l1 joined', presenceOf('member_joined', roomId, 'dup-l1'));
    const l1again = await joinExisting(cluster.url(0), 'dup-l1', 'DupOne', roomId);
    assert.equal((await l1.closed).code, REPLACED);

    // The host hears of a device joining after both replacements; presence events of one room
    // come in order, so a member_left for a replaced connection would have come before it.
    const marker = await joinExisting(cluster.url(0), 'dup-marker', 'Marker', roomId);
    await waitForFrame(host.client, 'dup-marker joined', presenceOf('member_joined', roomId, 'dup-marker'));
    const events = framesOf(host.client).filter(
      (f) => f.type === 'member_joined' || f.type === 'member_left',
    );
    assert.deepEqual(
      events.map((f) => `${String(f.type)} ${String(f.device_id)}`),
      ['member_joined dup-l2', 'member_joined dup-l1', 'member_joined dup-marker'],
      'a replaced connection is neither a leave nor a join',
    );
    // Each device is in the room once, on the node of its newer connection.
    const info = await roomInfoUntil(host.client, 'room_info: 4', (f) => f.total_clients === 4);
    assert.deepEqual(deviceIds(info.clients), ['dup-l1', 'dup-l2', 'dup-marker']);
    // And messages reach the newer connections.
    host.client.send('{"to":"the newer ones"}');
    await waitForFrame(again.client, 'dup-l2 (node 2) gets it', (f) => f.type === 'message');
    await waitForFrame(l1again, 'dup-l1 (node 0) gets it', (f) => f.to === 'the newer ones');
    await Promise.all([host.client, again.client, l1again, marker].map((c) => c.close()));
  });

  it('a device reconnecting to another node with a bare hello lands in its last room (reconnected)', async () => {
    const host = await newRoomL2(cluster.url(0), 'wander-host', 'Host');
    const roomId = host.roomId;
    // Level 1 device: joins on node 1, leaves, says a bare hello on node 2.
    const l1 = await joinExisting(cluster.url(1), 'wander-l1', 'WanderOne', roomId);
    await l1.close();
    const back = await TestClient.join(cluster.url(2), { device_id: 'wander-l1', identity: 'WanderOne' });
    assert.deepEqual(
      { type: back.reply.type, room_id: back.reply.room_id, status: back.reply.status },
      { type: 'room', room_id: roomId, status: 'reconnected' },
    );

    // Level 2 device still connected on node 0 says a bare hello on node 1: it lands in its room,
    // and its connection on node 0 is replaced.
    const l2 = await joinExistingL2(cluster.url(0), 'wander-l2', 'WanderTwo', roomId);
    const moved = await joinL2(cluster.url(1), 'wander-l2', 'WanderTwo');
    assert.equal(moved.reply.status, 'reconnected');
    assert.equal(moved.reply.room_id, roomId);
    assert.deepEqual(deviceIds(moved.reply.members), ['wander-host', 'wander-l1', 'wander-l2']);
    assert.equal((await l2.client.closed).code, REPLACED);

    const info = await roomInfoUntil(host.client, 'room_info: 3', (f) => f.total_clients === 3);
    assert.deepEqual(deviceIds(info.clients), ['wander-l1', 'wander-l2']);
    await Promise.all([host.client, back.client, moved.client].map((c) => c.close()));
  });

  it('a Level 2 device that dropped on node A resumes on node B with exactly what it missed, while traffic goes on', async () => {
    // talker (Level 2, node 1) and remote (Level 1, node 2) send; watcher (Level 2, node 2) is
    // another device that directed messages go to; roamer (Level 2) drops on node 0.
    const talker = await newRoomL2(cluster.url(1), 'roam-talker', 'Talker');
    const roomId = talker.roomId;
    const remote = await joinExisting(cluster.url(2), 'roam-remote', 'Remote', roomId);
    const watcher = await joinExistingL2(cluster.url(2), 'roam-watcher', 'Watcher', roomId);
    const roamer = await joinExistingL2(cluster.url(0), 'roam-roamer', 'Roamer', roomId);

    let n = 0;
    const burst = (count: number) => {
      for (let i = 0; i < count; i++) {
        n++;
        talker.client.send({ c: 'talker', n, ack_id: `t${n}` });
        if (n % 3 === 0) remote.send(`{"c":"remote","n":${n}}`);
        if (n % 4 === 0)
          talker.client.send({ type: 'send', to: 'roam-watcher', data: { c: 'to-watcher', n } });
        if (n % 5 === 0) talker.client.send({ type: 'send', to: 'roam-roamer', data: { c: 'to-roamer', n } });
      }
    };
    const acked = (count: number) =>
      pollUntil(
        `talker's ${count} acks`,
        () => acksOf(talker.client).size,
        (size) => size >= count,
        1500,
        20,
      );

    // Live first: the roamer takes what comes, up to some seq.
    burst(20);
    await acked(20);
    const lastRemote = 18;
    await waitForFrame(roamer.client, "roamer has the remote's 18th", (f) => {
      const data = f.data as { c?: string; n?: number } | undefined;
      return f.type === 'message' && data?.c === 'remote' && data.n === lastRemote;
    });
    const seen = envelopesOf(roamer.client).map((e) => e.frame.seq);
    const lastSeq = Math.max(...seen);

    // It drops (no close handshake); the node notices.
    roamer.client.ws.terminate();
    await waitForFrame(talker.client, 'roamer left', presenceOf('member_left', roomId, 'roam-roamer'));
    // Missed while away (a send to it now is unknown_target, and uses no seq).
    burst(20);
    await acked(40);

    // It resumes on node 1, while the talker keeps sending.
    const during = setInterval(() => burst(1), 5);
    const resumed = await resumeL2(cluster.url(1), 'roam-roamer', 'Roamer', roomId, lastSeq).finally(() =>
      clearInterval(during),
    );
    assert.equal(resumed.reply.type, 'room', JSON.stringify(resumed.reply));
    assert.equal(resumed.reply.status, 'reconnected');
    assert.equal(resumed.reply.recovered, true, JSON.stringify(resumed.reply));
    assert.ok(Number(resumed.reply.seq) >= lastSeq);
    const total = n;
    await acked(total);
    // A marker after everything: once the roamer has it, it has everything before it.
    talker.client.send({ c: 'marker', ack_id: 'marker' });
    await waitForFrame(
      resumed.client,
      'roamer has the marker',
      (f) => (f.data as { c?: string })?.c === 'marker',
    );
    const markerSeq = Number(
      (
        await waitForFrame(
          talker.client,
          'ack of the marker',
          (f) => f.type === 'ack' && f.ack_id === 'marker',
        )
      ).seq,
    );

    // What it may see after lastSeq: broadcasts and sends to it, from the record (every seq up
    // to the marker's is there once written: nothing crashed, so none was skipped).
    const rows = await pollUntil(
      `messages 1..${markerSeq} in the record`,
      () =>
        cluster.rows<{ seq: number; to_device_id: string | null }>(
          'select seq, to_device_id from messages where room_id = ? and seq <= ? order by seq',
          roomId,
          markerSeq,
        ),
      (r) => r.length >= markerSeq,
      1500,
      20,
    );
    const expected = rows
      .filter((r) => Number(r.seq) > lastSeq && (r.to_device_id === null || r.to_device_id === 'roam-roamer'))
      .map((r) => Number(r.seq));
    const got = envelopesOf(resumed.client).map((e) => e.frame.seq);
    assert.deepEqual(got, expected, 'replay then live: every seq it may see after last_seq, once, in order');
    assert.ok(
      got.filter((seq) => seq <= Number(resumed.reply.seq)).length >= 20,
      `a replay of what it missed (reply seq ${String(resumed.reply.seq)}, got ${got.join(',')})`,
    );
    // Nothing for another device, and the frames are the envelopes of those messages.
    for (const { frame } of envelopesOf(resumed.client)) {
      assert.ok(frame.to === undefined || frame.to === 'roam-roamer', JSON.stringify(frame));
      assert.equal(frame.room_id, roomId);
    }
    // The watcher, live all along, saw no gap in what it may see either.
    const watcherExpected = rows
      .filter((r) => r.to_device_id === null || r.to_device_id === 'roam-watcher')
      .map((r) => Number(r.seq))
      .filter((s) => s <= Math.max(...envelopesOf(watcher.client).map((e) => e.frame.seq)));
    assert.deepEqual(
      envelopesOf(watcher.client).map((e) => e.frame.seq),
      watcherExpected,
    );
    await Promise.all([talker.client, remote, watcher.client, resumed.client].map((c) => c.close()));
  });
});
