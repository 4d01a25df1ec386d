/**
 * Three nodes, one room space (issue 23): a room whose Level 1 and Level 2 members are spread
 * over three nodes behaves as on one server. Messages sent at once from every node reach every
 * other member once, in one seq order (the per-room seq comes from Redis), and are recorded once
 * each; presence, room_info, the room reply's members, directed sends, unknown_target and
 * --max-room-members count every node's members.
 *
 * No timed assertion: every wait is for a frame or a row, bounded only against a hang.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pollUntil } from './helpers/chaos.js';
import { TestClient, type Frame } from './helpers/client.js';
import {
  acksOf,
  clusterOnly,
  deviceIds,
  envelopesOf,
  framesOf,
  parseFrame,
  presenceOf,
  roomInfoUntil,
  useCluster,
  waitForFrame,
} from './helpers/cluster.js';
import { joinExistingL2, newRoomL2 } from './helpers/level2.js';
import { joinExisting, joinNew } from './helpers/rooms.js';

interface Member {
  name: string;
  deviceId: string;
  identity: string;
  level: 1 | 2;
  node: number;
  client: TestClient;
  reply?: Frame;
}

/** Messages each member sends in the concurrent round. */
const K = 25;

/**
 * What member `name` sends as its i-th message. A Level 1 sender's text has white space, key
 * order and a unicode escape of its own, which must reach Level 1 members byte for byte; a Level 2
 * sender asks for an ack (ack_id is its message id), which tells it the seq it got.
 */
function messageOf(m: Member, i: number): string {
  const id = `${m.name}-${i}`;
  return m.level === 1
    ? `{ "m" : "${id}",  "n":${i}, "u" : "\\u00e9é \\"q\\"" }`
    : JSON.stringify({ m: id, n: i, ack_id: id });
}

/** The message id (`m`) of a frame's text, if it is one of this test's messages. */
function idOf(text: string): string | undefined {
  const f = parseFrame(text);
  return typeof f?.m === 'string' ? f.m : undefined;
}

describe('one room on three nodes keeps one order', clusterOnly, () => {
  const cluster = useCluster();
  let roomId = '';
  const members: Member[] = [];
  const l2 = () => members.filter((m) => m.level === 2);
  const others = (m: Member) => members.filter((o) => o !== m);
  /** Every message of the concurrent round: id → { seq, sender, text sent }. */
  const seqOf = new Map<string, number>();

  it('Level 1 and Level 2 members join on three nodes: replies list members on other nodes, every Level 2 member hears each join', async () => {
    const created = await newRoomL2(cluster.url(0), 'one-a0', 'A0');
    roomId = created.roomId;
    members.push({
      name: 'a0',
      deviceId: 'one-a0',
      identity: 'A0',
      level: 2,
      node: 0,
      client: created.client,
      reply: created.reply,
    });
    assert.equal(created.reply.seq, 0);
    // Joins alternate between the nodes; the last joiner (a2, on node 2) sees all six.
    const plan: [name: string, level: 1 | 2, node: number][] = [
      ['b0', 1, 0],
      ['a1', 2, 1],
      ['b1', 1, 1],
      ['b2', 1, 2],
      ['a2', 2, 2],
    ];
    for (const [name, level, node] of plan) {
      const deviceId = `one-${name}`;
      const identity = name.toUpperCase();
      const url = cluster.url(node);
      if (level === 2) {
        const { client, reply } = await joinExistingL2(url, deviceId, identity, roomId);
        members.push({ name, deviceId, identity, level, node, client, reply });
      } else {
        const client = await joinExisting(url, deviceId, identity, roomId);
        members.push({ name, deviceId, identity, level, node, client });
      }
    }
    const byName = (n: string) => members.find((m) => m.name === n)!;
    // The room reply lists every device in the room once, wherever its connection is.
    assert.deepEqual(deviceIds(byName('a1').reply!.members), ['one-a0', 'one-a1', 'one-b0']);
    assert.deepEqual(deviceIds(byName('a2').reply!.members), members.map((m) => m.deviceId).sort());
    assert.equal(byName('a2').reply!.seq, 0);

    // Each Level 2 member hears of every device that joined after it, on any node, as it is.
    for (const m of l2()) {
      for (const later of members.slice(members.indexOf(m) + 1)) {
        const event = await waitForFrame(
          m.client,
          `${m.name} (node ${m.node}) hears that ${later.name} (node ${later.node}) joined`,
          presenceOf('member_joined', roomId, later.deviceId),
        );
        assert.deepEqual(event, {
          type: 'member_joined',
          room_id: roomId,
          device_id: later.deviceId,
          identity: later.identity,
        });
      }
      assert.ok(
        !framesOf(m.client).some((f) => f.device_id === m.deviceId),
        `${m.name} hears no event about itself`,
      );
    }
  });

  it('query_room on any node counts and lists the members of every node', async () => {
    for (const asker of [members[1]!, members[2]!, members[4]!]) {
      const info = await roomInfoUntil(
        asker.client,
        `room_info on node ${asker.node} counting all six`,
        (f) => f.total_clients === 6,
      );
      assert.equal(info.room_id, roomId);
      assert.deepEqual(
        deviceIds(info.clients),
        others(asker)
          .map((m) => m.deviceId)
          .sort(),
        `the others, asked by ${asker.name} on node ${asker.node}`,
      );
    }
  });

  it('messages sent at once from every node reach every other member once, in one seq order, and are recorded once each', async () => {
    for (let i = 1; i <= K; i++) for (const m of members) m.client.send(messageOf(m, i));
    const N = K * members.length;
    const count = (m: Member) =>
      envelopesOf(m.client).filter((e) => idOf(JSON.stringify(e.frame.data))).length;
    const l1Count = (m: Member) => m.client.received.filter((t) => idOf(t) !== undefined).length;
    for (const m of members) {
      await pollUntil(
        `${m.name} (Level ${m.level}, node ${m.node}) receives the ${N - K} messages of the others${m.level === 2 ? ' and acks of its own' : ''}`,
        () => (m.level === 2 ? [count(m), acksOf(m.client).size] : [l1Count(m), K]),
        ([got, acks]) => got! >= N - K && acks! >= K,
        1500,
        20,
      );
    }

    // Level 2: envelopes in strictly increasing seq order, none of its own, and with its acks
    // every seq 1..N exactly once. One map of seq → message across all of them: one order.
    const atSeq = new Map<number, string>();
    const note = (seq: number, id: string, who: string) => {
      const had = atSeq.get(seq);
      assert.ok(had === undefined || had === id, `seq ${seq} is ${had} for one member, ${id} for ${who}`);
      atSeq.set(seq, id);
      const before = seqOf.get(id);
      assert.ok(before === undefined || before === seq, `${id} has seq ${before} and ${seq}`);
      seqOf.set(id, seq);
    };
    for (const m of l2()) {
      const envelopes = envelopesOf(m.client);
      const seqs = envelopes.map((e) => e.frame.seq);
      seqs.forEach((s, i) =>
        assert.ok(i === 0 || s > seqs[i - 1]!, `${m.name}: seq ${s} after ${seqs[i - 1]}`),
      );
      for (const { frame, text } of envelopes) {
        assert.notEqual(frame.from.device_id, m.deviceId, `${m.name} got its own message back`);
        const sender = members.find((o) => o.deviceId === frame.from.device_id)!;
        const id = (frame.data as { m: string }).m;
        note(frame.seq, id, m.name);
        assert.equal(frame.room_id, roomId);
        assert.equal(frame.from.identity, sender.identity);
        if (sender.level === 1) {
          // data is the Level 1 sender's frame, byte for byte.
          const sent = messageOf(sender, Number(id.slice(id.lastIndexOf('-') + 1)));
          assert.ok(text.endsWith(`"data":${sent}}`), `${m.name}: ${text} carries ${sent}`);
        } else {
          assert.deepEqual(frame.data, { m: id, n: Number(id.slice(id.lastIndexOf('-') + 1)) });
        }
      }
      const acks = acksOf(m.client);
      for (const [id, ackSeqs] of acks) {
        assert.equal(ackSeqs.length, 1, `${id} acked ${ackSeqs.length} times`);
        note(ackSeqs[0]!, id, `${m.name} (ack)`);
      }
      const all = [...seqs, ...[...acks.values()].flat()].sort((a, b) => a - b);
      assert.deepEqual(
        all,
        Array.from({ length: N }, (_, i) => i + 1),
        `${m.name}: seqs 1..${N}, no gap, none twice`,
      );
    }
    assert.equal(atSeq.size, N);
    // Each sender's messages got seqs in the order it sent them.
    for (const m of members) {
      const seqs = Array.from({ length: K }, (_, i) => seqOf.get(`${m.name}-${i + 1}`));
      assert.ok(
        seqs.every((s, i) => s !== undefined && (i === 0 || s > seqs[i - 1]!)),
        `${m.name}'s messages in its order: ${seqs.join(',')}`,
      );
    }

    // Level 1: every message of the others once, none of its own, a Level 1 sender's bytes
    // unchanged, a Level 2 sender's object without ack_id; in the same seq order.
    for (const m of members.filter((o) => o.level === 1)) {
      const texts = m.client.received.filter((t) => idOf(t) !== undefined);
      assert.equal(texts.length, N - K, `${m.name}: ${N - K} messages`);
      const ids = texts.map((t) => idOf(t)!);
      assert.equal(new Set(ids).size, ids.length, `${m.name}: no message twice`);
      texts.forEach((text, i) => {
        const id = ids[i]!;
        const sender = members.find((o) => id.startsWith(`${o.name}-`))!;
        assert.notEqual(sender, m, `${m.name} got its own message back`);
        const n = Number(id.slice(id.lastIndexOf('-') + 1));
        if (sender.level === 1) assert.equal(text, messageOf(sender, n), `${m.name}: bytes of ${id}`);
        else assert.deepEqual(JSON.parse(text), { m: id, n });
      });
      const order = ids.map((id) => seqOf.get(id)!);
      order.forEach((s, i) =>
        assert.ok(i === 0 || s > order[i - 1]!, `${m.name}: ${ids[i]} (seq ${s}) after seq ${order[i - 1]}`),
      );
    }

    // The record: every message once, at the seq its receivers saw, with its content.
    const rows = await pollUntil(
      `the ${N} messages in the record`,
      () =>
        cluster.rows<{ seq: number; from_device_id: string; message_content: string }>(
          'select seq, from_device_id, message_content from messages where room_id = ? order by seq',
          roomId,
        ),
      (r) => r.length >= N,
      1500,
      20,
    );
    assert.deepEqual(
      rows.map((r) => Number(r.seq)),
      Array.from({ length: N }, (_, i) => i + 1),
      'distinct seqs 1..N',
    );
    for (const r of rows) {
      const id = atSeq.get(Number(r.seq))!;
      const sender = members.find((o) => id.startsWith(`${o.name}-`))!;
      const n = Number(id.slice(id.lastIndexOf('-') + 1));
      assert.equal(r.from_device_id, sender.deviceId, `seq ${r.seq}`);
      if (sender.level === 1)
        assert.equal(r.message_content, messageOf(sender, n), `content at seq ${r.seq}`);
      else assert.deepEqual(JSON.parse(r.message_content), { m: id, n }, `content at seq ${r.seq}`);
    }
  });

  it('a send reaches its target on another node, and only there; unknown_target only for a device in the room on no node', async () => {
    const [a0, , a1, b1, b2, a2] = members as [Member, Member, Member, Member, Member, Member];
    // Level 2 on node 0 → Level 2 on node 2; Level 2 on node 1 → Level 1 on node 2.
    a0.client.send({ type: 'send', to: a2.deviceId, data: { m: 'direct-1' }, ack_id: 'direct-1' });
    a1.client.send({ type: 'send', to: b2.deviceId, data: { m: 'direct-2' }, ack_id: 'direct-2' });
    const ack1 = await waitForFrame(
      a0.client,
      'ack of direct-1',
      (f) => f.type === 'ack' && f.ack_id === 'direct-1',
    );
    const ack2 = await waitForFrame(
      a1.client,
      'ack of direct-2',
      (f) => f.type === 'ack' && f.ack_id === 'direct-2',
    );

    // A broadcast numbered after both: once a member has it, it has had everything before it.
    b1.client.send('{"m":"after-direct"}');
    for (const m of others(b1)) {
      if (m.level === 2)
        await waitForFrame(
          m.client,
          `${m.name}: after-direct`,
          (f) => (f.data as Frame | undefined)?.m === 'after-direct',
        );
      else await waitForFrame(m.client, `${m.name}: after-direct`, (f) => f.m === 'after-direct');
    }
    const direct1 = envelopesOf(a2.client).filter((e) => (e.frame.data as Frame).m === 'direct-1');
    assert.equal(direct1.length, 1, 'a2 got direct-1 once');
    assert.deepEqual(
      {
        seq: direct1[0]!.frame.seq,
        to: direct1[0]!.frame.to,
        from: direct1[0]!.frame.from,
        data: direct1[0]!.frame.data,
      },
      {
        seq: ack1.seq,
        to: a2.deviceId,
        from: { device_id: a0.deviceId, identity: a0.identity },
        data: { m: 'direct-1' },
      },
    );
    assert.equal(
      b2.client.received.filter((t) => t === '{"m":"direct-2"}').length,
      1,
      'b2 got direct-2 once, as its data object',
    );
    for (const m of members) {
      const texts = m.client.received;
      if (m !== a2)
        assert.ok(
          !texts.some((t) => t.includes('direct-1') && !t.includes('"ack"')),
          `${m.name} did not get direct-1`,
        );
      if (m !== b2)
        assert.ok(
          !texts.some((t) => t.includes('direct-2') && !t.includes('"ack"')),
          `${m.name} did not get direct-2`,
        );
    }
    assert.ok(Number(ack2.seq) > Number(ack1.seq) || Number(ack2.seq) < Number(ack1.seq), 'two seqs');

    // A device that is on a node, but in another room, is not a target here; nor is one on no node.
    const elsewhere = await joinNew(cluster.url(1), 'one-elsewhere', 'Elsewhere');
    for (const [to, id] of [
      ['one-elsewhere', 'unknown-1'],
      ['one-nobody', 'unknown-2'],
    ] as const) {
      a0.client.send({ type: 'send', to, data: { m: id }, ack_id: id });
      const error = await waitForFrame(a0.client, `answer to ${id}`, (f) => f.ack_id === id);
      assert.equal(error.type, 'error', JSON.stringify(error));
      assert.equal(error.code, 'unknown_target');
    }
    await elsewhere.client.close();
  });

  it('a member leaving on one node is announced on the others, drops out of room_info there, and is then an unknown_target', async () => {
    const [a0, , a1, , b2, a2] = members as [Member, Member, Member, Member, Member, Member];
    await b2.client.close(); // Level 1, node 2
    for (const m of [a0, a1, a2]) {
      const left = await waitForFrame(
        m.client,
        `${m.name} (node ${m.node}) hears that b2 (node 2) left`,
        presenceOf('member_left', roomId, b2.deviceId),
      );
      assert.deepEqual(left, {
        type: 'member_left',
        room_id: roomId,
        device_id: b2.deviceId,
        identity: b2.identity,
      });
    }
    const info = await roomInfoUntil(
      a0.client,
      'room_info on node 0 without b2',
      (f) => f.total_clients === 5,
    );
    assert.ok(!deviceIds(info.clients).includes(b2.deviceId));
    a0.client.send({ type: 'send', to: b2.deviceId, data: { m: 'to-gone' }, ack_id: 'to-gone' });
    const error = await waitForFrame(a0.client, 'answer to to-gone', (f) => f.ack_id === 'to-gone');
    assert.equal(error.code, 'unknown_target', JSON.stringify(error));

    // A Level 2 member that leaves by leave_room, on node 1.
    a1.client.send({ type: 'leave_room' });
    await waitForFrame(a1.client, 'left', (f) => f.type === 'left');
    for (const m of [a0, a2])
      await waitForFrame(
        m.client,
        `${m.name} hears that a1 left`,
        presenceOf('member_left', roomId, a1.deviceId),
      );
    for (const m of members) await m.client.close();
  });
});

describe('--max-room-members is enforced cluster-wide', clusterOnly, () => {
  const cluster = useCluster({ extra: ['--max-room-members', '3'] });

  /** A hello into `roomId` on node `node`: the reply, and the close code when refused. */
  async function tryJoin(node: number, deviceId: string, roomId: string, level: 1 | 2) {
    const hello: Record<string, unknown> = { device_id: deviceId, identity: deviceId, room_id: roomId };
    if (level === 2) hello.protocol = 2;
    const { client, reply } = await TestClient.join(cluster.url(node), hello);
    if (reply.type === 'room') return { client, reply, closed: undefined };
    return { client, reply, closed: await client.closed };
  }

  function assertFull(result: Awaited<ReturnType<typeof tryJoin>>, where: string): void {
    assert.equal(result.reply.type, 'error', `${where}: ${JSON.stringify(result.reply)}`);
    assert.equal(result.reply.code, 'room_full', where);
    assert.equal(result.closed?.code, 4015, where);
  }

  it('with one member on each node, the 4th connection on any node gets room_full; a seat freed on one node is taken once', async () => {
    const owner = await newRoomL2(cluster.url(0), 'full-0', 'Full0');
    const roomId = owner.roomId;
    const second = await joinExistingL2(cluster.url(1), 'full-1', 'Full1', roomId);
    const third = await joinExisting(cluster.url(2), 'full-2', 'Full2', roomId);
    for (const node of [0, 1, 2]) {
      assertFull(await tryJoin(node, `full-x${node}`, roomId, node === 1 ? 2 : 1), `4th on node ${node}`);
    }

    // One leaves on node 1: one more may join, on node 2, and then the room is full again.
    await second.client.close();
    await waitForFrame(owner.client, 'member_left full-1', presenceOf('member_left', roomId, 'full-1'));
    const fourth = await tryJoin(2, 'full-y', roomId, 2);
    assert.equal(fourth.reply.status, 'joined_existing', JSON.stringify(fourth.reply));
    assertFull(await tryJoin(1, 'full-z', roomId, 1), 'again full, on node 1');

    // One seat, three nodes asking at once: exactly one gets it.
    await third.close();
    await waitForFrame(owner.client, 'member_left full-2', presenceOf('member_left', roomId, 'full-2'));
    const race = await Promise.all([0, 1, 2].map((node) => tryJoin(node, `full-race-${node}`, roomId, 2)));
    const seated = race.filter((r) => r.reply.type === 'room');
    assert.equal(seated.length, 1, JSON.stringify(race.map((r) => r.reply)));
    for (const r of race) if (r.reply.type !== 'room') assertFull(r, 'the race');
    const info = await roomInfoUntil(owner.client, 'room_info: 3', (f) => f.total_clients === 3);
    assert.equal(info.total_clients, 3);

    await Promise.all([owner.client, fourth.client, ...race.map((r) => r.client)].map((c) => c.close()));
  });
});
