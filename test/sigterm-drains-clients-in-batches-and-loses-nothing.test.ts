/**
 * A rolling restart as an operator does it: the real CLI with clients in rooms streaming acked
 * messages, then SIGTERM.
 *  - The drain: /readyz answers 503 `draining`, a new connection is refused, the clients are
 *    closed in batches (with traffic between two closes, and the last one closed still acked
 *    messages it sent after the first close), each with 1012 once what it sent is acked; the
 *    process exits 0, every acked message is in the record once, no message that was not acked
 *    is (a client resends what has no ack), and every connection's disconnect is recorded.
 *  - A second SIGTERM during a long drain closes every remaining client at once (1012), and the
 *    record is still written: exit code 0.
 * Nothing is timed: a drain of 10 minutes that a second signal did not end would fail the test
 * by its timeout.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CliRun } from './helpers/cli.js';
import {
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNone,
  killIfRunning,
  logEntries,
  openPairs,
  pollUntil,
  readyzOnOpenConnection,
  recordedMessages,
  serveArgs,
  startCli,
  waitForNewAcks,
  type AckedPeer,
  type ReadyzAnswer,
} from './helpers/chaos.js';
import { TestClient } from './helpers/client.js';
import { TEST_DATABASE } from './helpers/db.js';
import { readDatabase, removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';

const RESTART_REASON = 'server restarting: reconnect';

interface CloseSeen {
  tag: string;
  code: number;
  reason: string;
  /** Acks received by all peers together when this close arrived. */
  acksThen: number;
}

/** Logs every peer's close, in the order they arrive, with the traffic acked up to then. */
function watchCloses(peers: readonly AckedPeer[]): CloseSeen[] {
  const closes: CloseSeen[] = [];
  const acks = () => peers.reduce((n, p) => n + p.acks.size, 0);
  for (const p of peers)
    void p.client!.closed.then(({ code, reason }) => {
      p.stop();
      closes.push({ tag: p.tag, code, reason, acksThen: acks() });
    });
  return closes;
}

/** The CLI with `--drain-ms`, and `pairs` pairs of peers streaming acked messages (some acked). */
async function streamingServer(
  dbUrl: string,
  dir: string,
  drainMs: number,
  pairs: number,
  tag: string,
): Promise<{ cli: CliRun & { port: number }; peers: AckedPeer[] }> {
  const cli = await startCli(serveArgs(dbUrl, dir, ['--drain-ms', String(drainMs)]));
  const peers = await openPairs(`ws://127.0.0.1:${cli.port}`, pairs, tag);
  for (const p of peers) p.stream(40);
  await waitForNewAcks(
    peers,
    peers.map(() => 0),
    3,
    'acked traffic before the SIGTERM',
  );
  return { cli, peers };
}

async function assertEveryDisconnectRecorded(dbUrl: string, clients: number): Promise<void> {
  const rows = await readDatabase<{ device_id: string; disconnected_at: unknown }>(
    dbUrl,
    'select device_id, disconnected_at from connections',
  );
  assert.equal(rows.length, clients, JSON.stringify(rows));
  const open = rows.filter((r) => r.disconnected_at === null || r.disconnected_at === undefined);
  assert.deepEqual(open, [], 'connections without disconnected_at');
}

describe(`SIGTERM drains the clients in batches and loses nothing (${TEST_DATABASE})`, () => {
  const dir = tempDir('rm-drain-');
  let cli: (CliRun & { port: number }) | undefined;
  let peers: AckedPeer[] = [];
  after(() => {
    for (const p of peers) p.stop();
    killIfRunning(cli);
    removeDir(dir);
  });

  it(
    'not ready, refuses new clients, closes the others in turn with 1012, records everything, exits 0',
    {
      timeout: 120_000,
    },
    async () => {
      const dbUrl = await testDatabaseUrl(dir);
      ({ cli, peers } = await streamingServer(dbUrl, dir, 3000, 4, 'dr'));
      const url = `ws://127.0.0.1:${cli.port}`;
      const closes = watchCloses(peers);
      // Begun now, finished during the drain: the port no longer takes new connections by then.
      const early = await readyzOnOpenConnection(cli.port);

      cli.proc.kill('SIGTERM');
      await pollUntil(
        'the first client closed',
        () => closes.length,
        (n) => n > 0,
        1500,
        10,
      );
      const marks = peers.map((p) => p.sentCount);
      const readyz: ReadyzAnswer = await early.finish();
      const refused = await new TestClient(url).opened.then(
        () => 'connected',
        (err: Error & { code?: string }) => err.code ?? err.message,
      );
      const exit = await cli.exited;

      console.log(
        `# ${TEST_DATABASE}: readyz while draining ${JSON.stringify(readyz)}; new client: ${refused}`,
      );
      console.log(`# closes: ${JSON.stringify(closes.map((c) => [c.tag, c.acksThen]))}`);
      assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${cli.stderr.join('')}`);
      assert.ok('status' in readyz, `/readyz answered: ${JSON.stringify(readyz)}`);
      assert.equal(readyz.status, 503);
      assert.equal(readyz.body.status, 'draining');
      assert.notEqual(refused, 'connected', 'a new client connected during the drain');

      assert.equal(closes.length, peers.length);
      for (const c of closes) assert.deepEqual([c.code, c.reason], [1012, RESTART_REASON], c.tag);
      // In batches: acked traffic went on between the closes, and the peer closed last was still
      // served after the first close.
      const groups = new Set(closes.map((c) => c.acksThen)).size;
      assert.ok(groups > 1, `all ${closes.length} clients were closed with no traffic between them`);
      const last = peers.find((p) => p.tag === closes.at(-1)!.tag)!;
      assert.ok(
        last.acksAfter(marks[peers.indexOf(last)]!) > 0,
        `${last.tag}, closed last, got no ack for what it sent after the first close`,
      );
      const drain = logEntries(cli).find((e) => e.msg === 'draining: closing clients in batches');
      assert.ok(drain && (drain.batches as number) > 1, JSON.stringify(drain));

      const rows = await recordedMessages(dbUrl);
      assertAckedRecordedOnce(peers, rows);
      assertNoSeqTwice(peers, rows);
      const recorded = new Set(rows.map((r) => r.message_content));
      const unacked = peers.flatMap((p) => p.outstanding().filter((id) => recorded.has(p.sent.get(id)!)));
      assertNone(unacked, 'messages recorded without an ack before the close');
      await assertEveryDisconnectRecorded(dbUrl, peers.length);
    },
  );
});

describe(`a second SIGTERM ends the drain at once and still writes the record (${TEST_DATABASE})`, () => {
  const dir = tempDir('rm-drain2-');
  let cli: (CliRun & { port: number }) | undefined;
  let peers: AckedPeer[] = [];
  after(() => {
    for (const p of peers) p.stop();
    killIfRunning(cli);
    removeDir(dir);
  });

  it('closes every remaining client with 1012, writes the record, exits 0', { timeout: 60_000 }, async () => {
    const dbUrl = await testDatabaseUrl(dir);
    // Ten minutes, one client every 100 s: only the second signal can end this drain in time.
    ({ cli, peers } = await streamingServer(dbUrl, dir, 600_000, 3, 'dq'));
    const closes = watchCloses(peers);

    cli.proc.kill('SIGTERM');
    await pollUntil(
      'the first batch closed',
      () => closes.length,
      (n) => n > 0,
      1500,
      10,
    );
    const closedByTheDrain = closes.length;
    // The others are still served: one more ack each.
    const open = peers.filter((p) => p.isOpen);
    await waitForNewAcks(
      open,
      open.map((p) => p.sentCount),
      1,
      'acks during the drain',
    );
    cli.proc.kill('SIGTERM');
    const exit = await cli.exited;

    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${cli.stderr.join('')}`);
    assert.ok(closedByTheDrain < peers.length, 'the drain had closed everyone before the second signal');
    assert.equal(closes.length, peers.length);
    for (const c of closes) assert.deepEqual([c.code, c.reason], [1012, RESTART_REASON], c.tag);
    const msgs = logEntries(cli).map((e) => e.msg);
    assert.ok(msgs.includes('second signal: closing the remaining clients at once'), msgs.join(', '));

    const rows = await recordedMessages(dbUrl);
    assertAckedRecordedOnce(peers, rows);
    assertNoSeqTwice(peers, rows);
    await assertEveryDisconnectRecorded(dbUrl, peers.length);
  });
});
