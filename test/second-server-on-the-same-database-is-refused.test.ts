/**
 * One writer per database: a server holds its database's writer lease while it runs, a second
 * server on the same database refuses to start, and a lease whose holder is gone is taken over.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { LeaseHeldError } from '../src/store/writer-lease.js';
import { runCli, serveCli } from './helpers/cli.js';
import { TEST_DATABASE, query } from './helpers/db.js';
import { serveArgs } from './helpers/chaos.js';
import { joinNew } from './helpers/rooms.js';
import { readDatabase, removeDir, startServer, tempDir, testDatabaseUrl } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

interface LeaseRow {
  node_id: string;
  host: string;
  pid: number;
  expires_ms: number;
}

function leaseRows(databaseUrl: string): Promise<LeaseRow[]> {
  return readDatabase<LeaseRow>(databaseUrl, 'select node_id, host, pid, expires_ms from writer_lease');
}

/** Changes the database by hand (`?` placeholders), as another server or an operator would. */
async function change(databaseUrl: string, sql: string, ...params: unknown[]): Promise<void> {
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new BetterSqlite3(databaseUrl.slice('sqlite:'.length));
    try {
      db.pragma('busy_timeout = 5000'); // the server's writer thread may hold the write lock
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
    return;
  }
  await query(databaseUrl, databaseUrl.startsWith('mysql:') ? 'mysql' : 'postgres', sql, params);
}

/** The server's database, migrated, with no server on it. */
async function migratedDatabase(dir: string): Promise<string> {
  const srv = await startServer({}, dir);
  await srv.stop();
  return srv.databaseUrl;
}

/** The JSON log lines whose msg matches. */
function logged(lines: string[], msg: RegExp): Record<string, unknown>[] {
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => typeof e.msg === 'string' && msg.test(e.msg));
}

describe(`a second server on the same database is refused (${TEST_DATABASE})`, () => {
  it('refuses with LeaseHeldError naming the first server and cluster mode; the first keeps serving', async () => {
    const dir = tempDir();
    const first = await startServer({}, dir);
    try {
      await assert.rejects(startServer({}, dir), (err: unknown) => {
        assert.ok(err instanceof LeaseHeldError, String(err));
        assert.match(err.message, /^another room-manager holds this database \(node /);
        assert.ok(
          err.message.includes(`node ${first.server.nodeId} on host ${hostname()}, pid ${process.pid},`),
          err.message,
        );
        assert.match(err.message, /lease renewed until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)/);
        assert.match(err.message, /one database takes one server; .*cluster mode \(--redis-url/);
        assert.ok(!err.message.includes('\n'));
        return true;
      });
      const { client } = await joinNew(first.url, 'lease-first', 'screen');
      await client.close();
      assert.deepEqual(
        (await leaseRows(first.databaseUrl)).map((r) => r.node_id),
        [first.server.nodeId],
      );
    } finally {
      await first.stop();
      removeDir(dir);
    }
  });

  it('two servers starting at once on one database: exactly one starts', async () => {
    const dir = tempDir();
    await migratedDatabase(dir);
    const results = await Promise.allSettled([startServer({}, dir), startServer({}, dir)]);
    try {
      const started = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(started.length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.ok(refused[0]!.reason instanceof LeaseHeldError, String(refused[0]!.reason));
      assert.ok((refused[0]!.reason as Error).message.includes(started[0]!.value.server.nodeId));
    } finally {
      for (const r of results) if (r.status === 'fulfilled') await r.value.stop();
      removeDir(dir);
    }
  });

  it('through the command: the second exits 3 with one line on stderr, no stack trace', async () => {
    const dir = tempDir();
    const first = await startServer({}, dir);
    try {
      const run = runCli([
        'serve',
        '--port',
        '0',
        '--log-format',
        'json',
        '--database-url',
        first.databaseUrl,
        '--spool-dir',
        join(dir, 'spool-second'),
      ]);
      assert.deepEqual(await run.exited, { code: 3, signal: null });
      const stderr = run.stderr.join('');
      assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
      assert.match(stderr, /^another room-manager holds this database \(node /);
      assert.ok(stderr.includes(first.server.nodeId), stderr);
      assert.ok(stderr.includes('--redis-url'), stderr);
      assert.doesNotMatch(stderr, /\bat .*\.(ts|js):\d+/);
      const { client } = await joinNew(first.url, 'lease-cli', 'screen');
      await client.close();
    } finally {
      await first.stop();
      removeDir(dir);
    }
  });

  it('a lease held on another host refuses until it has expired; then the server takes it over', async () => {
    const dir = tempDir();
    const url = await migratedDatabase(dir);
    const now = Date.now();
    await change(
      url,
      `insert into writer_lease (name, node_id, host, pid, acquired_ms, expires_ms)
       values ('writer', 'elsewhere:77:abcdef', 'elsewhere', 77, ?, ?)`,
      now,
      now + 600_000,
    );
    try {
      await assert.rejects(startServer({}, dir), (err: unknown) => {
        assert.ok(err instanceof LeaseHeldError, String(err));
        assert.ok(err.message.includes('(node elsewhere:77:abcdef on host elsewhere, pid 77,'), err.message);
        return true;
      });
      await change(url, 'update writer_lease set expires_ms = ?', Date.now() - 1);
      const logLines: string[] = [];
      const srv = await startServer({}, dir, { logLines });
      try {
        assert.deepEqual(
          (await leaseRows(url)).map((r) => [r.node_id, r.host, Number(r.pid)]),
          [[srv.server.nodeId, hostname(), process.pid]],
        );
        const [takeover] = logged(logLines, /^writer lease taken over$/);
        assert.equal(takeover?.previous, 'elsewhere:77:abcdef');
        assert.equal(takeover?.reason, 'expired');
      } finally {
        await srv.stop();
      }
    } finally {
      removeDir(dir);
    }
  });

  it('a server that stopped cleanly released its lease: the next one starts at once', async () => {
    const dir = tempDir();
    const first = await startServer({}, dir);
    await first.stop();
    try {
      assert.deepEqual(await leaseRows(first.databaseUrl), []);
      const second = await startServer({}, dir);
      try {
        assert.deepEqual(
          (await leaseRows(first.databaseUrl)).map((r) => r.node_id),
          [second.server.nodeId],
        );
      } finally {
        await second.stop();
      }
    } finally {
      removeDir(dir);
    }
  });

  it('after kill -9 of a server on this host, the next one takes the lease over without waiting for it to expire', async () => {
    const dir = tempDir();
    const url = await testDatabaseUrl(dir);
    // A lease of ten minutes: only the dead process can be why the next server gets it.
    const cli = await serveCli(serveArgs(url, dir, ['--lease-ttl-ms', '600000']));
    try {
      const [held] = await leaseRows(url);
      assert.equal(Number(held?.pid), cli.proc.pid);
      cli.proc.kill('SIGKILL');
      assert.equal((await cli.exited).signal, 'SIGKILL');
      const logLines: string[] = [];
      const srv = await startServer({}, dir, { logLines });
      try {
        assert.deepEqual(
          (await leaseRows(url)).map((r) => r.node_id),
          [srv.server.nodeId],
        );
        const [takeover] = logged(logLines, /^writer lease taken over$/);
        assert.equal(takeover?.previous, held!.node_id);
        assert.equal(takeover?.reason, 'its process is gone');
      } finally {
        await srv.stop();
      }
    } finally {
      if (cli.proc.exitCode === null && cli.proc.signalCode === null) cli.proc.kill('SIGKILL');
      removeDir(dir);
    }
  });

  it('a server whose lease row is taken over logs "writer lease lost" and stops', async () => {
    const dir = tempDir();
    const logLines: string[] = [];
    const srv = await startServer({ leaseTtlMs: 1000 }, dir, { logLines });
    try {
      await change(srv.databaseUrl, "update writer_lease set node_id = 'thief:1:000000', host = 'elsewhere'");
      await waitFor('the lease-lost log line', () => logged(logLines, /^writer lease lost/).length > 0);
      const error = await srv.server.fatal;
      assert.equal(error.message, 'writer lease lost to node thief:1:000000');
      const [lost] = logged(logLines, /^writer lease lost/);
      assert.equal(lost!.msg, 'writer lease lost to node thief:1:000000; stopping');
      assert.equal(lost!.level, 50); // error
      assert.equal(logged(logLines, /^stopped$/).length, 1);
      // It gave nothing back that was not its own.
      assert.deepEqual(
        (await leaseRows(srv.databaseUrl)).map((r) => r.node_id),
        ['thief:1:000000'],
      );
    } finally {
      await srv.stop();
      removeDir(dir);
    }
  });

  it('through the command, a server whose lease is taken over stops and exits 1', async () => {
    const dir = tempDir();
    const url = await testDatabaseUrl(dir);
    const cli = await serveCli(serveArgs(url, dir, ['--lease-ttl-ms', '1000']));
    try {
      await change(url, "update writer_lease set node_id = 'thief:2:000000', host = 'elsewhere'");
      assert.deepEqual(await cli.exited, { code: 1, signal: null });
      const entries = cli.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(entries.some((e) => e.msg === 'writer lease lost to node thief:2:000000; stopping'));
      assert.ok(entries.some((e) => e.msg === 'stopped'));
    } finally {
      if (cli.proc.exitCode === null && cli.proc.signalCode === null) cli.proc.kill('SIGKILL');
      removeDir(dir);
    }
  });
});
