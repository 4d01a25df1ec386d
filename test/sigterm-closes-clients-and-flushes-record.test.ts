import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readRows, removeDir, tempDir } from './helpers/server.js';
import { serveCli, type CliRun } from './helpers/cli.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import type { Closed, TestClient } from './helpers/client.js';
import { ISO_MS } from './helpers/wait.js';
import { sqliteOnly } from './helpers/db.js';

describe('SIGTERM: the CLI closes clients with 1012, writes the whole record and exits 0', sqliteOnly, () => {
  const dir = tempDir();
  const dbPath = join(dir, 'db.sqlite');
  let cli: (CliRun & { port: number }) | undefined;
  let roomId = '';
  const sent: string[] = [];
  let closedA: Closed | undefined;
  let closedB: Closed | undefined;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  before(async () => {
    cli = await serveCli(['--database-url', `sqlite:${dbPath}`]);
    const url = `ws://127.0.0.1:${cli.port}`;
    const a = await joinNew(url, 'term-a', 'screen');
    roomId = a.roomId;
    const b: TestClient = await joinExisting(url, 'term-b', 'phone', roomId);
    for (let i = 1; i <= 20; i++) {
      const text = `{"from":"a","i":${i}}`;
      sent.push(text);
      a.client.send(text);
    }
    for (const text of sent) assert.equal(await b.nextText(), text);
    for (let i = 1; i <= 5; i++) {
      const text = `{"from":"b","i":${i}}`;
      sent.push(text);
      b.send(text);
      assert.equal(await a.client.nextText(), text);
    }
    // Both queries answered: every message above has been handled by the server.
    await a.client.queryRoom();
    await b.queryRoom();
    cli.proc.kill('SIGTERM');
    [closedA, closedB, exit] = await Promise.all([a.client.closed, b.closed, cli.exited]);
  });
  after(() => {
    if (cli && cli.proc.exitCode === null && cli.proc.signalCode === null) cli.proc.kill('SIGKILL');
    removeDir(dir);
  });

  it('closes every client with 1012 (service restart: reconnect)', () => {
    assert.deepEqual(closedA, { code: 1012, reason: 'server restarting: reconnect' });
    assert.deepEqual(closedB, { code: 1012, reason: 'server restarting: reconnect' });
  });

  it('exits with code 0', () => {
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${cli?.stderr.join('')}`);
  });

  it('the SQLite file has every message, in order', () => {
    const rows = readRows<{ message_content: string; seq: number; room_id: string }>(
      dbPath,
      'select room_id, message_content, seq from messages order by seq',
    );
    assert.deepEqual(
      rows,
      sent.map((text, i) => ({ room_id: roomId, message_content: text, seq: i + 1 })),
    );
  });

  it('every connection has disconnected_at set', () => {
    const rows = readRows<{ device_id: string; disconnected_at: string | null }>(
      dbPath,
      'select device_id, disconnected_at from connections order by id',
    );
    assert.deepEqual(
      rows.map((r) => r.device_id),
      ['term-a', 'term-b'],
    );
    for (const r of rows) assert.match(String(r.disconnected_at), ISO_MS);
    const queries = readRows(dbPath, 'select device_id from room_queries order by id');
    assert.deepEqual(queries, [{ device_id: 'term-a' }, { device_id: 'term-b' }]);
  });

  it('logs JSON lines on stdout, ending with the shutdown', () => {
    const entries = (cli?.stdout ?? []).map((line) => JSON.parse(line) as { msg?: string });
    const messages = entries.map((e) => e.msg);
    assert.ok(messages.includes('listening'));
    assert.ok(messages.includes('shutting down'), `log: ${messages.join(', ')}`);
  });
});
