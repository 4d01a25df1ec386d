/**
 * The database stops taking writes, acked traffic goes on, and then the server is killed with
 * SIGKILL. Three ways the writes stop: SQLite, another connection holds the write lock past
 * --writer-timeout-ms; MariaDB/PostgreSQL, the connection is cut, or the server's database user
 * loses its INSERT and UPDATE grants on `messages`. Acks during the outage mean the messages are
 * fsynced in the spool: once the database takes writes again and the server restarts, every acked
 * message is recorded exactly once, and no seq seen before the crash comes back with other
 * contents.
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
import { TEST_DATABASE, adminQuery, query, testDatabaseName, type TestBackend } from './helpers/db.js';
import { openStore } from '../src/store/open-store.js';
import { removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';

const ROOMS = 4;
const EVERY_MS = 10;

/** How a test makes the database stop taking the server's writes, and gives them back. */
interface Outage {
  /** The database the server is given (the one the test reads is `directUrl`). */
  url: string;
  directUrl: string;
  begin(): Promise<void>;
  end(): Promise<void>;
  close(): Promise<void>;
}

type OutageKind = 'lock' | 'cut' | 'grants';

async function makeOutage(kind: OutageKind, dir: string): Promise<Outage> {
  if (kind === 'lock') {
    const url = await testDatabaseUrl(dir);
    let release: (() => Promise<void>) | undefined;
    return {
      url,
      directUrl: url,
      begin: async () => {
        release = (await lockMessagesAt(url)).release;
      },
      end: async () => release?.(),
      close: async () => release?.().catch(() => undefined),
    };
  }
  const backend = TEST_DATABASE as Exclude<TestBackend, 'sqlite'>;
  if (kind === 'cut') {
    const { proxy, url, directUrl } = await proxiedDatabase(dir, backend);
    return {
      url,
      directUrl,
      begin: async () => proxy.cut(),
      end: async () => proxy.restore(),
      close: () => proxy.close(),
    };
  }
  return grantsOutage(backend, dir);
}

/**
 * A database user of its own for the server, with the rights it needs on each table (migrated
 * first by the admin user); the outage revokes INSERT and UPDATE on `messages`.
 */
async function grantsOutage(backend: Exclude<TestBackend, 'sqlite'>, dir: string): Promise<Outage> {
  const directUrl = await testDatabaseUrl(dir);
  const migrator = openStore(directUrl);
  await migrator.migrate();
  await migrator.close();
  const user = `${testDatabaseName(dir)}_w`;
  const db = new URL(directUrl).pathname.slice(1);
  const run = (sql: string) => query(directUrl, backend, sql);
  const tables = (await run(
    backend === 'mysql'
      ? 'select table_name as name from information_schema.tables where table_schema = database()'
      : "select tablename as name from pg_tables where schemaname = 'public'",
  )) as { name?: string; NAME?: string }[];
  const names = tables.map((t) => String(t.name ?? t.NAME));
  if (backend === 'mysql') {
    await adminQuery(backend, `create user if not exists '${user}'@'%' identified by 'pw'`);
    for (const t of names) {
      await adminQuery(
        backend,
        `grant select, insert, update, delete on \`${db}\`.\`${t}\` to '${user}'@'%'`,
      );
    }
  } else {
    await adminQuery(backend, `create role ${user} login password 'pw'`);
    await run(`grant usage on schema public to ${user}`);
    await run(`grant select, insert, update, delete on all tables in schema public to ${user}`);
    await run(`grant usage, select on all sequences in schema public to ${user}`);
  }
  const u = new URL(directUrl);
  u.username = user;
  u.password = 'pw';
  const messages = backend === 'mysql' ? `\`${db}\`.\`messages\`` : 'messages';
  const to = backend === 'mysql' ? `'${user}'@'%'` : user;
  return {
    url: u.toString(),
    directUrl,
    begin: async () => {
      await (backend === 'mysql'
        ? adminQuery(backend, `revoke insert, update on ${messages} from ${to}`)
        : run(`revoke insert, update on ${messages} from ${to}`));
    },
    end: async () => {
      await (backend === 'mysql'
        ? adminQuery(backend, `grant insert, update on ${messages} to ${to}`)
        : run(`grant insert, update on ${messages} to ${to}`));
    },
    close: async () => {
      if (backend === 'mysql') await adminQuery(backend, `drop user if exists '${user}'@'%'`);
      else {
        await run(`drop owned by ${user}`).catch(() => undefined);
        await adminQuery(backend, `drop role if exists ${user}`);
      }
    },
  };
}

const kinds: OutageKind[] = TEST_DATABASE === 'sqlite' ? ['lock'] : ['cut', 'grants'];

for (const kind of kinds) {
  describe(`kill -9 during a database outage (${TEST_DATABASE}, ${kind}): acked messages were in the spool`, () => {
    const dir = tempDir('rm-k9out-');
    let args: string[] = [];
    let outage: Outage | undefined;
    let first: (CliRun & { port: number }) | undefined;
    let second: (CliRun & { port: number }) | undefined;
    let peers: AckedPeer[] = [];
    let ackedDuringOutage = 0;
    let rows: MessageRow[] = [];

    after(async () => {
      for (const p of peers) await p.close().catch(() => undefined);
      killIfRunning(first);
      killIfRunning(second);
      await outage?.close();
      removeDir(dir);
    });

    it('acks go on while the database is away (the spool holds them), then the process is killed', async () => {
      outage = await makeOutage(kind, dir);
      args = serveArgs(outage.url, dir, ['--writer-timeout-ms', '500', '--db-timeout-ms', '1000']);
      first = await startCli(args);
      peers = await openPairs(`ws://127.0.0.1:${first.port}`, ROOMS, 'k9o');
      for (const p of peers) p.stream(EVERY_MS);
      await waitForNewAcks(
        peers,
        peers.map(() => 0),
        1,
        'acks before the outage',
      );

      await outage.begin();
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
      await outage!.end();
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
      rows = await recordedMessages(outage!.directUrl);
    });

    it('every acked message is recorded once (those acked during the outage too), no seq with two contents', () => {
      assert.ok(rows.length > 0, 'the runs above got this far');
      assert.ok(ackedDuringOutage > 0, 'messages were acked during the outage');
      assertAckedRecordedOnce(peers, rows);
      assertNoSeqTwice(peers, rows);
      console.log(
        `# kill -9 during an outage on ${TEST_DATABASE} (${kind}): ${JSON.stringify({
          acked: peers.reduce((n, p) => n + p.acks.size, 0),
          ackedDuringOutage,
          recorded: rows.length,
        })}`,
      );
    });
  });
}
