/**
 * Redis goes away (issue 23): Level 2 members of a few rooms, each room spread over the three
 * nodes, stream acked messages; the cluster's Redis is killed (kill -9) mid-traffic and started
 * again EMPTY on the same port, as a Redis without persistence comes back.
 *
 * The decision (docs/scaling.md): while a node is cut off from Redis it does not deliver locally
 * only; it answers each message with error `unavailable` (neither delivered nor recorded; the
 * sender sends it again later) and `/readyz` answers 503. Once Redis is back the nodes reconnect,
 * rebuild what Redis held, and traffic resumes. Nothing acked is lost: every acked message is in
 * the record exactly once, no (room, seq) is used twice, and every receiver's seqs only ever go
 * up (numbers may be skipped after the empty Redis, never reused).
 *
 * No timed assertion: every wait is for a frame, an answer or a row, bounded only against a hang.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AckedPeer,
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNone,
  isReadyzStatus,
  pollUntil,
  recordedMessages,
  waitForAnswers,
  waitForReadyz,
} from './helpers/chaos.js';
import { clusterOnly, useCluster } from './helpers/cluster.js';
import { joinExistingL2, newRoomL2 } from './helpers/level2.js';

const ROOMS = 3;
const NODES = [0, 1, 2];

describe('Redis killed and restarted empty under acked traffic', clusterOnly, () => {
  // The default node TTL: the cut below (a second or so) stays well inside it, however slow the
  // machine, so no node may take itself for declared dead.
  const cluster = useCluster({ nodeTtlMs: 10_000 });

  it('during the cut /readyz is 503 and messages get `unavailable`; after it traffic resumes; every acked message is recorded once, no seq twice, each receiver’s seqs only go up', async () => {
    // Each room: a member on every node (the room's creator on a different node each time).
    const peers: AckedPeer[] = [];
    for (let r = 0; r < ROOMS; r++) {
      const order = NODES.map((n) => (n + r) % NODES.length);
      const first = new AckedPeer(`r${r}n${order[0]}`, `redis-${r}-${order[0]}`, `R${r}N${order[0]}`);
      const created = await newRoomL2(cluster.url(order[0]!), first.deviceId, first.identity);
      first.roomId = created.roomId;
      first.attach(created.client);
      peers.push(first);
      for (const node of order.slice(1)) {
        const p = new AckedPeer(`r${r}n${node}`, `redis-${r}-${node}`, `R${r}N${node}`, created.roomId);
        p.attach((await joinExistingL2(cluster.url(node), p.deviceId, p.identity, created.roomId)).client);
        peers.push(p);
      }
    }
    // A cut shorter than the node TTL closes no client: the nodes keep serving their members.
    const closedWith = new Map<AckedPeer, number>();
    for (const p of peers) void p.client!.closed.then(({ code }) => closedWith.set(p, code));
    const roomMates = (p: AckedPeer) => peers.filter((o) => o !== p && o.roomId === p.roomId);
    const marksNow = () => new Map(peers.map((p) => [p, p.sentCount]));
    /**
     * What is missing for "traffic flows" since `marks`: each peer has acks for 3 messages sent
     * since, and an envelope of a message each room-mate sent since (empty: it flows).
     */
    const notFlowing = (marks: Map<AckedPeer, number>): string[] =>
      peers.flatMap((p) => {
        const missing: string[] = [];
        const acks = p.acksAfter(marks.get(p)!);
        if (acks < 3) missing.push(`${p.tag}: ${acks} acks`);
        const got = p.deliveredContents();
        for (const o of roomMates(p)) {
          const since = [...o.sent].filter(
            ([id]) => Number(id.slice(id.lastIndexOf('-') + 1)) > marks.get(o)!,
          );
          if (!since.some(([, body]) => got.has(body))) missing.push(`${p.tag}: nothing from ${o.tag}`);
        }
        return missing;
      });
    const flowing = (marks: Map<AckedPeer, number>, what: string) =>
      pollUntil(
        what,
        () => {
          // A closed connection will not flow again: said at once rather than waited for.
          const closed = peers.flatMap((p) => (closedWith.has(p) ? [`${p.tag}: ${closedWith.get(p)}`] : []));
          if (closed.length) throw new Error(`${what}: connections were closed: ${closed.join(', ')}`);
          return notFlowing(marks);
        },
        (missing) => missing.length === 0,
        1500,
        20,
      );

    // Stopped and closed whatever happens: a failed wait must not leave the peers streaming.
    try {
      for (const p of peers) p.stream(25);
      // Traffic flows across nodes before the cut.
      const start = marksNow();
      await flowing(start, 'acks and cross-node deliveries before the cut');

      await cluster.killRedis();
      // Every node: not ready, and messages answered `unavailable`.
      for (const node of NODES) {
        await waitForReadyz(cluster.port(node), `node ${node} not ready while Redis is away`, (a) =>
          isReadyzStatus(a, 503),
        );
      }
      await pollUntil(
        'every peer has a message answered `unavailable`',
        () => peers.map((p) => p.unavailable.length),
        (counts) => counts.every((c) => c > 0),
        1500,
        20,
      );
      for (const node of NODES) {
        assert.ok(cluster.isRunning(node), `node ${node} keeps running while Redis is away`);
      }
      assertNone(
        peers.flatMap((p) => (closedWith.has(p) ? [`${p.tag}: ${closedWith.get(p)}`] : [])),
        'connections closed during the cut',
      );

      await cluster.startRedis(); // empty: no persistence
      for (const node of NODES) {
        await waitForReadyz(cluster.port(node), `node ${node} ready again`, (a) => isReadyzStatus(a, 200), {
          attempts: 1500,
        });
      }
      // Traffic resumes: new acks for every peer, and deliveries across nodes again.
      const back = marksNow();
      await flowing(back, 'acks and cross-node deliveries after the cut');

      for (const p of peers) p.stop();
      const unanswered = await waitForAnswers(peers);
      assertNone(unanswered, 'messages with neither an ack nor an error');

      // Errors: only `unavailable`, each for a message never acked.
      const problems: string[] = [];
      for (const p of peers) {
        for (const [id, e] of p.errors) {
          if (e.code !== 'unavailable' || typeof e.message !== 'string')
            problems.push(`${p.tag}: ${JSON.stringify(e)}`);
          if (p.acks.has(id)) problems.push(`${id}: answered unavailable and acked`);
        }
        if (p.otherErrors.length) problems.push(`${p.tag}: ${JSON.stringify(p.otherErrors.slice(0, 3))}`);
      }
      assertNone(problems, 'errors that are not a clean `unavailable`');

      // The senders send again what was refused during the cut (as a client does): taken now.
      const resent: { peer: AckedPeer; id: string; again: string }[] = [];
      for (const peer of peers) {
        for (const id of [...peer.errors.keys()]) {
          const body = peer.sent.get(id)!;
          const again = `${id}-again`;
          peer.sent.set(again, body);
          peer.client!.send(JSON.stringify({ ...(JSON.parse(body) as object), ack_id: again }));
          resent.push({ peer, id, again });
        }
      }
      assert.ok(resent.length > 0);
      assertNone(await waitForAnswers(peers), 'messages sent again with neither an ack nor an error');
      assertNone(
        resent.flatMap(({ peer, again }) =>
          peer.acks.has(again) ? [] : [`${again}: ${JSON.stringify(peer.errors.get(again))}`],
        ),
        'messages sent again after the cut and not acked',
      );
      // So every message sent was acked once: at first, or when sent again.
      assertNone(
        peers.flatMap((p) =>
          [...p.sent.keys()].filter((id) => !id.endsWith('-again') && p.acks.has(id) === p.errors.has(id)),
        ),
        'messages neither acked nor refused (or both)',
      );

      // Each receiver's seqs only go up (per connection: each peer kept its one connection).
      for (const p of peers) {
        const seqs = p.seen.filter((s) => s.kind === 'envelope').map((s) => s.seq);
        const down = seqs.flatMap((s, i) => (i > 0 && s <= seqs[i - 1]! ? [`${seqs[i - 1]} then ${s}`] : []));
        assertNone(down, `${p.tag}: seqs that did not go up`);
      }

      // The record: every acked message once, at its ack's seq (a message refused during the cut
      // once, as sent again); no (room, seq) twice; no seq seen with two contents by anyone.
      const acked = peers.reduce((n, p) => n + p.acks.size, 0);
      const rows = await pollUntil(
        'every acked message in the record',
        () => recordedMessages(cluster.databaseUrl),
        (r) => r.length >= acked,
        1500,
        20,
      );
      assertAckedRecordedOnce(peers, rows);
      assertNoSeqTwice(peers, rows);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});
