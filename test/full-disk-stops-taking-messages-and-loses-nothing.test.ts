/**
 * When neither the database nor the spool can take records, the server stops taking messages,
 * and takes them again by itself when space (or the database) comes back.
 *
 * A small tmpfs is mounted for the test. On SQLite it holds the database file and the spool; on
 * MariaDB / PostgreSQL it holds the spool, and the database is reached through a TCP proxy the
 * test cuts. Level 2 pairs stream acked messages; then the disk is filled to its last byte (and
 * the database cut). Observed by polling: /readyz 503 with `records.writes: "stuck"`; messages
 * the server reads meanwhile answered `unavailable` with their ack_id, never acked, never
 * delivered; and, as a snapshot while stuck, members still connected and nothing sent since the
 * stuck state was seen acked or delivered (those frames wait, unread, and are taken after). Then the way back: on SQLite the filler is deleted (readyz 200, acks again); on the
 * database servers both ways, one after the other: space freed while the database stays cut
 * (readyz 503 `failing`, acks again, from the spool) then the database restored; and the database
 * restored while the disk stays full (readyz 200, acks again).
 *
 * At the end every acked message is in the record exactly once with its ack's seq, no message
 * answered `unavailable` is in the record or was delivered, and the stop completes.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AckedPeer,
  DiskFiller,
  assertAckedRecordedOnce,
  assertNoSeqTwice,
  assertNothingTakenSince,
  assertUnavailableAnswers,
  assertNone,
  assertRefusedNowhere,
  isReadyzStatus,
  mountTmpfs,
  openPairs,
  partnerOf,
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
  type ReadyzAnswer,
} from './helpers/chaos.js';
import { TEST_DATABASE } from './helpers/db.js';
import { NO_RATE_LIMIT, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const PAIRS = 3;
const EVERY_MS = 20;
/** Larger than the brief's 8 MiB: SQLite's WAL grows by whole pages per batch on this disk. */
const TMPFS_OPTIONS = 'size=24m';

const skip = tmpfsSkip();
const server = TEST_DATABASE !== 'sqlite';

describe(
  `a full disk (${TEST_DATABASE}${server ? ', database cut' : ''}) stops taking messages; nothing is lost`,
  { skip },
  () => {
    const dir = tempDir('rm-fulldisk-');
    const disk = join(dir, 'disk');
    const filler = new DiskFiller(disk);
    let mounted = false;
    let proxy: TcpProxy | undefined;
    let directUrl = '';
    let srv: TestServer;
    let peers: AckedPeer[] = [];
    let stuck: ReadyzAnswer | undefined;
    let rows: MessageRow[] = [];
    let stopped = false;
    /** Each peer's sentCount when the server was seen to be stuck. */
    let marksAtStuck: number[] = [];

    const probeKeepingFull = () => filler.fill();
    const readyzKeepingFull = () => {
      filler.fill();
      return readyz(srv.port);
    };
    const allOpen = () => peers.every((p) => p.isOpen);

    before(async () => {
      mkdirSync(disk, { recursive: true });
      mountTmpfs(disk, TMPFS_OPTIONS); // refused with CI=true: fails here (see tmpfsSkip)
      mounted = true;
      let databaseUrl: string;
      if (TEST_DATABASE === 'sqlite') {
        databaseUrl = `sqlite:${join(disk, 'room-manager.db')}`;
        directUrl = databaseUrl;
      } else {
        const db = await proxiedDatabase(dir, TEST_DATABASE);
        proxy = db.proxy;
        databaseUrl = db.url;
        directUrl = db.directUrl;
      }
      srv = await startServer(
        { databaseUrl, spoolDir: join(disk, 'spool'), dbTimeoutMs: 1000, ...NO_RATE_LIMIT },
        dir,
      );
      peers = await openPairs(srv.url, PAIRS, 'fd');
    });

    after(async () => {
      for (const p of peers) p.stop();
      filler.free();
      proxy?.restore();
      if (!stopped) await srv?.stop().catch(() => undefined);
      for (const p of peers) await p.close().catch(() => undefined);
      await proxy?.close();
      if (mounted) unmount(disk);
      removeDir(dir);
    });

    it('takes acked messages while the disk has room', async () => {
      for (const p of peers) p.stream(EVERY_MS);
      await waitForNewAcks(
        peers,
        peers.map(() => 0),
        5,
        'five acks per client',
      );
      assert.ok(isReadyzStatus(await waitForReadyz(srv.port, '200', (a) => isReadyzStatus(a, 200)), 200));
    });

    it(`disk full${server ? ' and database cut' : ''}: /readyz 503, not_ready, records.writes "stuck"`, async () => {
      filler.fill();
      proxy?.cut();
      stuck = await waitForReadyz(srv.port, 'records.writes stuck', (a) => isReadyzStatus(a, 503, 'stuck'), {
        beforeEach: probeKeepingFull,
      });
      assert.ok('status' in stuck);
      assert.equal(stuck.body.status, 'not_ready');
      if (server) assert.equal(stuck.body.database, 'down');
      console.log(`# stuck: ${JSON.stringify(stuck.body)}`);
      marksAtStuck = peers.map((p) => p.sentCount);
    });

    it('messages read while stuck are answered "unavailable" with their ack_id, not acked, not delivered', async () => {
      await pollUntil(
        'a message answered unavailable',
        () => {
          filler.fill();
          return peers.reduce((n, p) => n + p.unavailable.length, 0);
        },
        (n) => n > 0,
        500,
        20,
      );
      assertUnavailableAnswers(peers);
    });

    it('while stuck: members stay connected, /readyz stays 503, nothing sent since is acked or delivered', async () => {
      assert.ok(allOpen(), 'every member is still connected');
      const again = await readyzKeepingFull();
      assert.ok(isReadyzStatus(again, 503, 'stuck'), JSON.stringify(again));
      assertNothingTakenSince(peers, marksAtStuck);
      assertUnavailableAnswers(peers);
    });

    if (!server) {
      it('space freed: /readyz 200 with records.writes "ok" again, and new messages are acked', async () => {
        filler.free();
        const back = await waitForReadyz(srv.port, '200 ok', (a) => isReadyzStatus(a, 200, 'ok'));
        assert.ok('status' in back && back.body.status === 'ready', JSON.stringify(back));
        const marks = peers.map((p) => p.sentCount);
        await waitForNewAcks(peers, marks, 3, 'acks for messages sent after the space came back');
        assert.ok(allOpen(), 'every member is still connected');
      });
    } else {
      it('space freed, database still cut: /readyz 503 "failing", and new messages are acked (spooled)', async () => {
        filler.free();
        const failing = await waitForReadyz(srv.port, '503 failing', (a) =>
          isReadyzStatus(a, 503, 'failing'),
        );
        assert.ok('status' in failing);
        assert.equal(failing.body.database, 'down');
        const marks = peers.map((p) => p.sentCount);
        await waitForNewAcks(peers, marks, 3, 'acks for messages sent while only the spool takes records');
        assert.ok(allOpen(), 'every member is still connected');
      });

      it('database restored: /readyz 200 with records.writes "ok", acks go on', async () => {
        proxy!.restore();
        await waitForReadyz(srv.port, '200 ok', (a) => isReadyzStatus(a, 200, 'ok'));
        const marks = peers.map((p) => p.sentCount);
        await waitForNewAcks(peers, marks, 3, 'acks after the database came back');
      });

      it('the other way back: disk full and database cut (stuck), then the database returns with the disk still full', async () => {
        filler.fill();
        proxy!.cut();
        await waitForReadyz(srv.port, 'stuck again', (a) => isReadyzStatus(a, 503, 'stuck'), {
          beforeEach: probeKeepingFull,
        });
        const marks = peers.map((p) => p.sentCount);
        // Let the clients send into the stuck server before the database returns.
        await pollUntil(
          'each client sending while stuck',
          () => {
            filler.fill();
            return peers.every((p, k) => p.sentCount >= marks[k]! + 5);
          },
          (all) => all,
          500,
          20,
        );
        assertNothingTakenSince(peers, marks);
        proxy!.restore();
        await waitForReadyz(srv.port, '200 ok with the disk full', (a) => isReadyzStatus(a, 200, 'ok'), {
          beforeEach: probeKeepingFull,
        });
        const later = peers.map((p) => p.sentCount);
        await waitForNewAcks(peers, later, 3, 'acks with the database back and the disk still full');
        assert.ok(allOpen(), 'every member is still connected');
        filler.free();
      });
    }

    it('every message gets an ack or an error; every acked one reaches the other member', async () => {
      for (const p of peers) p.stop();
      // Space and database back, whatever an earlier step left (a failed step stops midway).
      filler.free();
      proxy?.restore();
      const unanswered = await waitForAnswers(peers);
      assertNone(unanswered, 'messages got neither an ack nor an error');
      await pollUntil(
        'every acked message delivered to the other member',
        () =>
          peers.flatMap((p) => {
            const got = partnerOf(peers, p).deliveredContents();
            return [...p.acks.keys()].filter((id) => !got.has(p.sent.get(id)!));
          }).length,
        (missing) => missing === 0,
        500,
        20,
      );
    });

    it('stop completes; the record holds every acked message once and no refused one', async () => {
      await srv.stop();
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
      console.log(`# full disk on ${TEST_DATABASE}: ${JSON.stringify(figures)}`);
    });
  },
);
