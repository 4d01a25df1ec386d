/**
 * The database is cut while the spool folder cannot be written: the server must notice at once
 * (records go to the spool as soon as the database fails, not after --writer-queue-max of them
 * wait in memory) and stop taking messages — /readyz 503 `records.writes: "stuck"`, messages it
 * reads answered `unavailable` with their ack_id, nothing sent meanwhile acked or delivered,
 * members still connected — and, when the database returns, take them again
 * (/readyz 200 `ok`, acks, `records.pending` back to 0) with every acked message recorded once.
 *
 * The server runs with --writer-queue-max 5000, and the clients together send far fewer than
 * 5000 messages during the outage: a server that spools only past the bound never becomes
 * "stuck" here, and the wait for it gives up. Nothing is measured in time.
 *
 * Two ways to make the spool unwritable (root ignores permissions): a read-only tmpfs mounted
 * over the spool folder (skipped when mounting is refused, except with CI=true), and the spool
 * folder's parent replaced by a regular file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AckedPeer,
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNothingTakenSince,
  assertUnavailableAnswers,
  assertNone,
  assertRefusedNowhere,
  isReadyzStatus,
  mountTmpfs,
  openPairs,
  pollUntil,
  readyz,
  proxiedDatabase,
  recordedMessages,
  tmpfsSkip,
  unmount,
  waitForAnswers,
  waitForNewAcks,
  waitForReadyz,
  type MessageRow,
} from './helpers/chaos.js';
import { TEST_DATABASE, serverDatabasesOnly } from './helpers/db.js';
import { NO_RATE_LIMIT, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const backend = TEST_DATABASE === 'sqlite' ? 'mysql' : TEST_DATABASE;
const PAIRS = 2;
const EVERY_MS = 10;
const QUEUE_MAX = 5000;
/** Messages each client may send once the database is cut: all of them together stay far below QUEUE_MAX. */
const OUTAGE_CAP = 400;

type Unwritable = {
  name: string;
  skip: string | false;
  /** The spool folder to configure, under `dir`. */
  spoolDir(dir: string): string;
  /** Makes the spool folder unwritable (the server is running, no spool file open yet). */
  block(dir: string): void;
  unblock(dir: string): void;
};

const WAYS: Unwritable[] = [
  {
    name: 'a read-only tmpfs over the spool folder',
    skip: tmpfsSkip(),
    spoolDir: (dir) => join(dir, 'spool'),
    block(dir) {
      mkdirSync(join(dir, 'spool'), { recursive: true });
      mountTmpfs(join(dir, 'spool'), 'ro,size=1m');
    },
    unblock: (dir) => unmount(join(dir, 'spool')),
  },
  {
    name: "the spool folder's parent is a regular file",
    skip: false,
    spoolDir: (dir) => join(dir, 'parent', 'spool'),
    block(dir) {
      const parent = join(dir, 'parent');
      if (existsSync(parent)) renameSync(parent, join(dir, 'parent.away'));
      writeFileSync(parent, 'not a folder\n');
    },
    unblock: (dir) => rmSync(join(dir, 'parent'), { force: true }),
  },
];

for (const way of WAYS) {
  describe(
    `spool not writable (${way.name}) while ${backend} is cut: the server stops taking messages, then resumes`,
    { skip: serverDatabasesOnly.skip || way.skip },
    () => {
      const dir = tempDir('rm-nospool-');
      let proxy: TcpProxy | undefined;
      let directUrl = '';
      let srv: TestServer | undefined;
      let peers: AckedPeer[] = [];
      let blocked = false;
      let stopped = false;
      /** Each peer's sentCount when the server was seen to be stuck. */
      let marksAtStuck: number[] = [];
      let rows: MessageRow[] = [];

      before(async () => {
        const db = await proxiedDatabase(dir, backend);
        proxy = db.proxy;
        directUrl = db.directUrl;
        srv = await startServer(
          {
            databaseUrl: db.url,
            spoolDir: way.spoolDir(dir),
            writerQueueMax: QUEUE_MAX,
            dbTimeoutMs: 1000,
            ...NO_RATE_LIMIT,
          },
          dir,
        );
        peers = await openPairs(srv.url, PAIRS, 'ns');
      });

      after(async () => {
        for (const p of peers) p.stop();
        proxy?.restore();
        if (!stopped) await srv?.stop().catch(() => undefined);
        for (const p of peers) await p.close().catch(() => undefined);
        await proxy?.close();
        if (blocked) way.unblock(dir);
        removeDir(dir);
      });

      it('takes acked messages while the database is up', async () => {
        for (const p of peers) p.stream(EVERY_MS);
        await waitForNewAcks(
          peers,
          peers.map(() => 0),
          5,
          'five acks per client',
        );
        way.block(dir);
        blocked = true;
        // With the database up, an unwritable spool changes nothing: acks go on.
        const marks = peers.map((p) => p.sentCount);
        await waitForNewAcks(peers, marks, 3, 'acks with the spool blocked and the database up');
      });

      it('database cut: /readyz 503 "stuck" while far fewer than 5000 records wait', async () => {
        for (const p of peers) p.limit = p.sentCount + OUTAGE_CAP;
        proxy!.cut();
        const stuck = await waitForReadyz(srv!.port, 'records.writes stuck', (a) =>
          isReadyzStatus(a, 503, 'stuck'),
        );
        marksAtStuck = peers.map((p) => p.sentCount);
        assert.ok('status' in stuck);
        assert.equal(stuck.body.status, 'not_ready');
        assert.equal(stuck.body.database, 'down');
        console.log(`# stuck: ${JSON.stringify(stuck.body)}`);
        const sent = peers.reduce((n, p) => n + p.sentCount, 0);
        assert.ok(sent < QUEUE_MAX, `sent ${sent} in all`);
      });

      it('messages read while stuck are answered "unavailable" with their ack_id, not acked, not delivered', async () => {
        await pollUntil(
          'a message answered unavailable (before the clients reach their cap)',
          () => peers.reduce((n, p) => n + p.unavailable.length, 0),
          (n) => n > 0,
          500,
          20,
        );
        assertUnavailableAnswers(peers);
      });

      it('while stuck: members stay connected, /readyz stays 503, nothing sent since is acked or delivered', async () => {
        assert.ok(
          peers.every((p) => p.isOpen),
          'every member is still connected',
        );
        const again = await readyz(srv!.port);
        assert.ok(isReadyzStatus(again, 503, 'stuck'), JSON.stringify(again));
        assertNothingTakenSince(peers, marksAtStuck);
        assertUnavailableAnswers(peers);
      });

      it('database restored: /readyz 200 "ok", messages acked again, records.pending back to 0', async () => {
        proxy!.restore();
        await waitForReadyz(srv!.port, '200 ok', (a) => isReadyzStatus(a, 200, 'ok'));
        for (const p of peers) p.limit = Number.POSITIVE_INFINITY;
        const marks = peers.map((p) => p.sentCount);
        await waitForNewAcks(peers, marks, 5, 'acks after the database came back');
        for (const p of peers) p.stop();
        const unanswered = await waitForAnswers(peers);
        assertNone(unanswered, 'messages got neither an ack nor an error');
        const idle = await waitForReadyz(
          srv!.port,
          'records.pending 0',
          (a) => 'status' in a && a.body.records?.pending === 0,
        );
        assert.ok(isReadyzStatus(idle, 200, 'ok'), JSON.stringify(idle));
      });

      it('stop completes; every acked message is recorded once, no refused one is recorded or delivered', async () => {
        proxy!.restore(); // whatever an earlier step left (a failed step stops midway)
        await srv!.stop();
        stopped = true;
        rows = await recordedMessages(directUrl);
        assertAckedRecordedOnce(peers, rows);
        assertRefusedNowhere(peers, rows);
        assertNoSeqTwice(peers, rows);
        const figures = {
          sent: peers.reduce((n, p) => n + p.sent.size, 0),
          acked: peers.reduce((n, p) => n + p.acks.size, 0),
          unavailable: peers.reduce((n, p) => n + p.unavailable.length, 0),
          recorded: rows.length,
        };
        console.log(`# spool not writable (${way.name}) on ${backend}: ${JSON.stringify(figures)}`);
      });
    },
  );
}
