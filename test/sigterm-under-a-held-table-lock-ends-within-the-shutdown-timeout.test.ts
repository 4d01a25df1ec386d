/**
 * Shutdown is bounded: the CLI runs with --shutdown-timeout-ms 3000 and --writer-timeout-ms 60000
 * (so the lock does not turn into an outage by itself). A pair of Level 2 clients exchange acked
 * messages; then another session locks `messages`, more messages are sent and delivered, and the
 * process gets SIGTERM. After the drain (--drain-ms: a client is closed once what it sent is
 * durable, under the lock only at the drain's end) it must exit with code 0 (the test's timeout bounds the wait; the time is
 * logged, not asserted), its log must say it spooled what the database had not taken and what
 * became of the write held by the lock (timed out, or failed with its error: SQLite's own busy
 * timeout may end it first), and must not claim the records were written. Once the lock is released, a new
 * server on the same database writes the spool before it listens, and every message delivered
 * before the SIGTERM is in the record exactly once.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CliRun } from './helpers/cli.js';
import {
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNone,
  killIfRunning,
  lockMessagesAt,
  logEntries,
  openPairs,
  partnerOf,
  pollUntil,
  recordedMessages,
  signalAndWait,
  startCli,
  waitForNewAcks,
  type AckedPeer,
  type MessageRow,
  serveArgs,
} from './helpers/chaos.js';
import { TEST_DATABASE } from './helpers/db.js';
import type { Lock } from './helpers/lock-messages.js';
import { removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';

const BEFORE_LOCK = 20;
const UNDER_LOCK = 30;

describe(`SIGTERM under a held table lock (${TEST_DATABASE}) ends within --shutdown-timeout-ms`, () => {
  const dir = tempDir('rm-sigterm-lock-');
  let dbUrl = '';
  let args: string[] = [];
  let first: (CliRun & { port: number }) | undefined;
  let second: (CliRun & { port: number }) | undefined;
  let peers: AckedPeer[] = [];
  let lock: Lock | undefined;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let rowsAtListening: MessageRow[] = [];

  after(async () => {
    for (const p of peers) p.stop();
    await lock?.release().catch(() => undefined);
    killIfRunning(first);
    killIfRunning(second);
    removeDir(dir);
  });

  it('SIGTERM with writes held by the lock: exit code 0', { timeout: 60_000 }, async () => {
    dbUrl = await testDatabaseUrl(dir);
    args = serveArgs(dbUrl, dir, ['--shutdown-timeout-ms', '3000', '--writer-timeout-ms', '60000']);
    first = await startCli(args);
    peers = await openPairs(`ws://127.0.0.1:${first.port}`, 1, 'st');
    for (let i = 0; i < BEFORE_LOCK; i++) for (const p of peers) p.sendOne();
    await waitForNewAcks(
      peers,
      peers.map(() => 0),
      BEFORE_LOCK,
      'acks for the messages sent before the lock',
    );
    lock = await lockMessagesAt(dbUrl);
    for (let i = 0; i < UNDER_LOCK; i++) for (const p of peers) p.sendOne();
    // Every message reaches the other member (delivery does not wait for the database).
    await pollUntil(
      'every message delivered to the other member',
      () =>
        peers.every((p) => {
          const got = partnerOf(peers, p).deliveredContents();
          return [...p.sent.values()].every((body) => got.has(body));
        }),
      (all) => all,
      500,
      20,
    );
    const started = Date.now();
    exit = await signalAndWait(first, 'SIGTERM');
    console.log(`# ${TEST_DATABASE}: SIGTERM to exit took ${Date.now() - started} ms`);
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${first.stderr.join('')}`);
  });

  it('the log says the records were spooled and the held write timed out (or failed), never that they were written', () => {
    assert.ok(exit, 'the run above got this far');
    const entries = logEntries(first!);
    const at = entries.findIndex((e) => e.msg === 'shutting down');
    assert.ok(at >= 0, 'a "shutting down" line');
    const shutdown = entries.slice(at);
    const text = (e: Record<string, unknown>) => JSON.stringify(e);
    console.log(`# ${TEST_DATABASE} shutdown log: ${JSON.stringify(shutdown.map((e) => e.msg))}`);
    const spooled = shutdown.filter(
      (e) =>
        /spool/i.test(String(e.msg)) &&
        ['spooled', 'records', 'count', 'pending'].some(
          (k) => typeof e[k] === 'number' && (e[k] as number) > 0,
        ),
    );
    assert.ok(spooled.length > 0, `a line on the records spooled: ${shutdown.map(text).join('\n')}`);
    assert.ok(
      shutdown.some(
        (e) => /timed out|time-?out/i.test(`${String(e.msg)} ${JSON.stringify(e.err ?? '')}`) || e.err,
      ),
      `a line saying the held write timed out or failed: ${shutdown.map(text).join('\n')}`,
    );
    const claims = shutdown.filter((e) => /caught up|pending records written/i.test(String(e.msg)));
    assert.deepEqual(claims, [], 'no line claims the records were written');
  });

  it('after the release, a new server writes the spool before it listens: every delivered message is recorded once', async () => {
    assert.ok(exit, 'the run above got this far');
    await lock!.release();
    second = await startCli(args);
    // Read at once: the server listens only after the spool is in the database.
    rowsAtListening = await recordedMessages(dbUrl);
    const entries = logEntries(second);
    const listening = entries.findIndex((e) => e.msg === 'listening');
    const replay = entries.findIndex((e) => /spool/i.test(String(e.msg)));
    assert.ok(
      replay >= 0 && replay < listening,
      `the spool is written before "listening": ${second.stdout.join('\n')}`,
    );
    const recorded = new Map<string, number>();
    for (const r of rowsAtListening)
      recorded.set(r.message_content, (recorded.get(r.message_content) ?? 0) + 1);
    const wrong: string[] = [];
    for (const p of peers)
      for (const [id, body] of p.sent)
        if (recorded.get(body) !== 1) wrong.push(`${id}: ${recorded.get(body) ?? 0}×`);
    assertNone(wrong, 'delivered messages not recorded exactly once');
    assertAckedRecordedOnce(peers, rowsAtListening);
    assertNoSeqTwice(peers, rowsAtListening);
    const stopped = await signalAndWait(second, 'SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null });
  });
});
