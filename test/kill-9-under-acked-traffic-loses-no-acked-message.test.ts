/**
 * Ack = durable, and a seq is never handed out twice, across kill -9.
 *
 * The real CLI serves 10 rooms of two Level 2 clients, each sending ~100 acked messages a second
 * with a unique ack_id and body. Mid-traffic the process is killed with SIGKILL and started again
 * on the same database and spool folder. Every client resumes after the highest seq it saw
 * (envelopes, acks, room reply) and must be `recovered`, with exactly the recorded messages after
 * that seq replayed; then each sends a few more acked messages and the server stops on SIGTERM.
 *
 * Afterwards, in the database: every acked message exactly once, with its ack's seq and its body;
 * no seq seen (by any client, before or after the crash, envelope or ack) with two contents; seqs
 * unique per room, and those handed out after the restart above every seq seen before the crash.
 * Messages delivered but never recorded (never acked) are counted, not failed: they are the
 * documented loss of a crash.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CliRun } from './helpers/cli.js';
import {
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNone,
  killIfRunning,
  openPairs,
  recordedMessages,
  serveArgs,
  signalAndWait,
  sleep,
  startCli,
  waitForNewAcks,
  type AckedPeer,
  type MessageRow,
} from './helpers/chaos.js';
import { TEST_DATABASE } from './helpers/db.js';
import { removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';

const ROOMS = 10;
/** One message per client this often: ~100 msg/s each. */
const EVERY_MS = 10;
/** Traffic before the kill (a duration of traffic, not an assertion). */
const TRAFFIC_MS = 1500;
/** Acked messages each client sends after the restart. */
const AFTER_RESTART = 5;

describe(`kill -9 under acked traffic (${TEST_DATABASE}): no acked message is lost, no seq reused`, () => {
  const dir = tempDir('rm-kill9-');
  let dbUrl = '';
  let args: string[] = [];
  let first: (CliRun & { port: number }) | undefined;
  let second: (CliRun & { port: number }) | undefined;
  let peers: AckedPeer[] = [];
  /** Per room: the highest seq any client saw before the crash. */
  const maxSeqBeforeCrash = new Map<string, number>();
  const resumes = new Map<AckedPeer, { lastSeq: number; replySeq: number }>();
  let rows: MessageRow[] = [];

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    killIfRunning(first);
    killIfRunning(second);
    removeDir(dir);
  });

  it('streams acked messages in 10 rooms, then the process is killed with SIGKILL', async () => {
    dbUrl = await testDatabaseUrl(dir);
    args = serveArgs(dbUrl, dir);
    first = await startCli(args);
    peers = await openPairs(`ws://127.0.0.1:${first.port}`, ROOMS, 'k9');
    for (const p of peers) p.stream(EVERY_MS);
    await sleep(TRAFFIC_MS);
    // Acks flow before the kill (else the test proves nothing); polled, bounded.
    await waitForNewAcks(
      peers,
      peers.map(() => 0),
      1,
      'at least one ack per client before the kill',
    );
    const exit = await signalAndWait(first, 'SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    for (const p of peers) p.stop();
    await Promise.all(peers.map((p) => p.client!.closed));
    for (const p of peers) {
      maxSeqBeforeCrash.set(p.roomId, Math.max(maxSeqBeforeCrash.get(p.roomId) ?? 0, p.maxSeq));
    }
  });

  it('after a restart on the same database, every client resumes with recovered: true', async () => {
    assert.ok(first, 'the first run started');
    second = await startCli(args);
    const url = `ws://127.0.0.1:${second.port}`;
    const refused: string[] = [];
    for (const p of peers) {
      const { reply, lastSeq } = await p.resume(url);
      if (reply.type !== 'room' || reply.status !== 'reconnected' || reply.recovered !== true) {
        refused.push(`${p.tag} (last_seq ${lastSeq}): ${JSON.stringify({ ...reply, members: undefined })}`);
        continue;
      }
      resumes.set(p, { lastSeq, replySeq: reply.seq as number });
      // A ping behind the resume is answered after the whole replay.
      await p.ping();
    }
    assertNone(refused, 'resumes across the crash not recovered');
  });

  it('after the restart, new messages are acked with seqs above every seq seen before the crash', async () => {
    assert.ok(second, 'the second run started');
    const marks = peers.map((p) => p.sentCount);
    for (const p of peers) for (let i = 0; i < AFTER_RESTART; i++) p.sendOne();
    await waitForNewAcks(peers, marks, AFTER_RESTART, 'acks for the messages sent after the restart');
    const reused: string[] = [];
    for (const p of peers) {
      for (const s of p.seen.filter((x) => x.conn === 2)) {
        const resume = resumes.get(p);
        const replayed = s.kind === 'envelope' && resume && s.seq <= resume.replySeq;
        if (!replayed && s.seq <= maxSeqBeforeCrash.get(p.roomId)!)
          reused.push(
            `${p.roomId}#${s.seq} (${s.kind} to ${p.tag}; seen up to ${maxSeqBeforeCrash.get(p.roomId)})`,
          );
      }
    }
    assertNone(reused, 'seqs handed out again after the crash');
  });

  it('SIGTERM stops the restarted server with exit code 0', async () => {
    assert.ok(second, 'the second run started');
    const exit = await signalAndWait(second, 'SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${second.stderr.join('')}`);
    for (const p of peers) await p.client!.closed;
    rows = await recordedMessages(dbUrl);
  });

  it('every acked message is recorded exactly once, with the seq of its ack and its body', () => {
    assert.ok(rows.length > 0, 'the record holds messages');
    assertAckedRecordedOnce(peers, rows);
  });

  it('no seq was seen with two contents in a room (clients before and after the crash, and the record)', () => {
    assert.ok(rows.length > 0, 'the runs above got this far');
    assertNoSeqTwice(peers, rows);
  });

  it('each resume replayed exactly the recorded messages after its last_seq', () => {
    assert.ok(rows.length > 0 && resumes.size > 0, 'the runs above got this far');
    const wrong: string[] = [];
    for (const p of peers) {
      const r = resumes.get(p);
      if (!r) continue;
      const expected = rows
        .filter((row) => row.room_id === p.roomId && row.seq > r.lastSeq && row.seq <= r.replySeq)
        .map((row) => row.seq);
      const replayed = p.seen
        .filter((s) => s.conn === 2 && s.kind === 'envelope' && s.seq <= r.replySeq)
        .map((s) => s.seq);
      if (JSON.stringify(replayed) !== JSON.stringify(expected))
        wrong.push(
          `${p.tag} after ${r.lastSeq}: replayed [${replayed.join(',')}], recorded [${expected.join(',')}]`,
        );
    }
    assertNone(wrong, 'resumes replayed other than the recorded messages after last_seq');
  });

  it('reports the counts', () => {
    const ours = new Set(peers.flatMap((p) => [...p.sent.values()]));
    const recorded = new Set(
      rows.filter((r) => ours.has(r.message_content)).map((r) => `${r.room_id}#${r.seq}`),
    );
    const deliveredBefore = new Set<string>();
    for (const p of peers)
      for (const s of p.seen)
        if (s.conn === 1 && s.kind === 'envelope') deliveredBefore.add(`${p.roomId}#${s.seq}`);
    const figures = {
      sent: peers.reduce((n, p) => n + p.sent.size, 0),
      delivered: deliveredBefore.size,
      acked: peers.reduce((n, p) => n + p.acks.size, 0),
      recorded: recorded.size,
      deliveredButUnrecorded: [...deliveredBefore].filter((k) => !recorded.has(k)).length,
      unanswered: peers.reduce((n, p) => n + p.outstanding().length, 0),
    };
    console.log(`# kill -9 on ${TEST_DATABASE}: ${JSON.stringify(figures)}`);
  });
});
