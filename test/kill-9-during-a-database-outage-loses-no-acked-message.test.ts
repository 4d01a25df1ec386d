/**
 * The database stops taking writes (MariaDB/PostgreSQL: its connection is cut; SQLite: another
 * connection holds the write lock past --writer-timeout-ms), acked traffic goes on, and then the
 * server is killed with SIGKILL. Acks during the outage mean the messages are fsynced in the
 * spool: after the database is back and the server restarts, every acked message is recorded
 * exactly once, and no seq seen before the crash comes back with other contents.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CliRun } from './helpers/cli.js';
import {
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNone,
  isReadyzStatus,
  killIfRunning,
  lockMessagesAt,
  openPairs,
  proxiedDatabase,
  recordedMessages,
  serveArgs,
  signalAndWait,
  sleep,
  startCli,
  waitForNewAcks,
  waitForReadyz,
  type AckedPeer,
  type MessageRow,
} from './helpers/chaos.js';
import { TEST_DATABASE } from './helpers/db.js';
import type { Lock } from './helpers/lock-messages.js';
import { removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const ROOMS = 4;
const EVERY_MS = 10;

describe(`kill -9 during a database outage (${TEST_DATABASE}): acked messages were in the spool`, () => {
  const dir = tempDir('rm-k9out-');
  let args: string[] = [];
  let directUrl = '';
  let proxy: TcpProxy | undefined;
  let lock: Lock | undefined;
  let first: (CliRun & { port: number }) | undefined;
  let second: (CliRun & { port: number }) | undefined;
  let peers: AckedPeer[] = [];
  let ackedDuringOutage = 0;
  let rows: MessageRow[] = [];

  after(async () => {
    for (const p of peers) await p.close().catch(() => undefined);
    killIfRunning(first);
    killIfRunning(second);
    await lock?.release().catch(() => undefined);
    await proxy?.close();
    removeDir(dir);
  });

  it('acks go on while the database is away (the spool holds them), then the process is killed', async () => {
    let url: string;
    if (TEST_DATABASE === 'sqlite') {
      url = directUrl = await testDatabaseUrl(dir);
    } else {
      const db = await proxiedDatabase(dir, TEST_DATABASE);
      proxy = db.proxy;
      url = db.url;
      directUrl = db.directUrl;
    }
    args = serveArgs(url, dir, ['--writer-timeout-ms', '500', '--db-timeout-ms', '1000']);
    first = await startCli(args);
    peers = await openPairs(`ws://127.0.0.1:${first.port}`, ROOMS, 'k9o');
    for (const p of peers) p.stream(EVERY_MS);
    await waitForNewAcks(
      peers,
      peers.map(() => 0),
      1,
      'acks before the outage',
    );

    if (proxy) proxy.cut();
    else lock = await lockMessagesAt(directUrl);
    await waitForReadyz(first.port, '503 failing', (a) => isReadyzStatus(a, 503, 'failing'));
    const marks = peers.map((p) => p.acks.size);
    await waitForNewAcks(peers, marks, 20, 'acks while the database is away');
    ackedDuringOutage = peers.reduce((n, p, i) => n + p.acks.size - marks[i]!, 0);
    await sleep(200);

    const exit = await signalAndWait(first, 'SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    for (const p of peers) p.stop();
    await Promise.all(peers.map((p) => p.client!.closed));
  });

  it('with the database back, the next start replays the spool; resumes are recovered', async () => {
    assert.ok(first, 'the first run got this far');
    proxy?.restore();
    await lock?.release();
    lock = undefined;
    second = await startCli(args);
    const url = `ws://127.0.0.1:${second.port}`;
    const refused: string[] = [];
    for (const p of peers) {
      const { reply, lastSeq } = await p.resume(url);
      if (reply.type !== 'room' || reply.recovered !== true) {
        refused.push(`${p.tag} (last_seq ${lastSeq}): ${JSON.stringify({ ...reply, members: undefined })}`);
      }
    }
    assertNone(refused, 'resumes not recovered');
    const marks = peers.map((p) => p.sentCount);
    for (const p of peers) p.sendOne();
    await waitForNewAcks(peers, marks, 1, 'acks after the restart');
    const exit = await signalAndWait(second, 'SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${second.stderr.join('')}`);
    rows = await recordedMessages(directUrl);
  });

  it('every acked message is recorded once (those acked during the outage too), no seq with two contents', () => {
    assert.ok(rows.length > 0, 'the runs above got this far');
    assert.ok(ackedDuringOutage > 0, 'messages were acked during the outage');
    assertAckedRecordedOnce(peers, rows);
    assertNoSeqTwice(peers, rows);
    console.log(
      `# kill -9 during an outage on ${TEST_DATABASE}: ${JSON.stringify({
        acked: peers.reduce((n, p) => n + p.acks.size, 0),
        ackedDuringOutage,
        recorded: rows.length,
      })}`,
    );
  });
});
