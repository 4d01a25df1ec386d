import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { runCli } from './helpers/cli.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { insertOldMessages } from './helpers/old-rows.js';

async function prune(args: string[]): Promise<{ code: number | null; stdout: string[]; stderr: string }> {
  const run = runCli(['prune', '--log-level', 'warn', ...args]);
  const { code } = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr.join('') };
}

describe('room-manager prune: --dry-run says what would go; without it, it goes', () => {
  const dir = tempDir();
  let srv: TestServer;

  before(async () => {
    srv = await startServer({}, dir);
    const a = await joinNew(srv.url, 'prune-a', 'screen');
    const b = await joinExisting(srv.url, 'prune-b', 'phone', a.roomId);
    a.client.send('{"kept":1}');
    assert.equal(await b.nextText(), '{"kept":1}');
    await a.client.close();
    await b.close();
    await insertOldMessages(srv.databaseUrl, 'ZZOLD002', 1_200);
  });
  after(async () => {
    await srv?.stop();
    removeDir(dir);
  });

  it('no retain setting: says so and exits 2', async () => {
    const { code, stderr } = await prune(['--database-url', srv.databaseUrl]);
    assert.equal(code, 2);
    assert.match(stderr, /no retention is set.*--retain-messages/);
  });

  it('a bad duration is named and refused with exit 2', async () => {
    const { code, stderr } = await prune(['--database-url', srv.databaseUrl, '--retain-messages', 'a month']);
    assert.equal(code, 2);
    assert.match(stderr, /--retain-messages \/ RETAIN_MESSAGES.*"a month".*30d/);
  });

  it('--dry-run prints per table how many rows would go and the cutoff, and deletes nothing', async () => {
    const { code, stdout, stderr } = await prune([
      '--database-url',
      srv.databaseUrl,
      '--retain-messages',
      '30d',
      '--retain-connections',
      '90d',
      '--dry-run',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.length, 2, stdout.join('\n'));
    assert.match(stdout[0]!, /^messages: 1200 rows older than \d{4}-\d\d-\d\dT[\d:.]+Z would go$/);
    assert.match(stdout[1]!, /^connections: 0 closed older than .* would go$/);
    const [row] = await srv.rows<{ n: number }>('select count(*) as n from messages');
    assert.equal(Number(row!.n), 1_201);
  });

  it('without --dry-run it deletes them, beside the running server, and keeps the rest', async () => {
    const { code, stdout, stderr } = await prune([
      '--database-url',
      srv.databaseUrl,
      '--retain-messages',
      '30d',
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout.join('\n'), /^messages: 1200 rows older than .* deleted$/);
    const rows = await srv.rows<{ message_content: string }>('select message_content from messages');
    assert.deepEqual(
      rows.map((r) => r.message_content),
      ['{"kept":1}'],
    );
  });

  it('--retain-rooms is left to the running server: prune says so and forgets no room', async () => {
    const before = await srv.rows('select room_id from rooms order by room_id');
    const { code, stdout, stderr } = await prune(['--database-url', srv.databaseUrl, '--retain-rooms', '1s']);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /rooms: skipped: a server runs on this database/);
    assert.deepEqual(stdout, []);
    assert.deepEqual(await srv.rows('select room_id from rooms order by room_id'), before);
  });

  it('the server still records after a prune', async () => {
    const a = await joinNew(srv.url, 'prune-c', 'screen');
    const b = await joinExisting(srv.url, 'prune-d', 'phone', a.roomId);
    a.client.send('{"after":1}');
    assert.equal(await b.nextText(), '{"after":1}');
    await a.client.close();
    await b.close();
    assert.equal((await srv.rows('select seq from messages where room_id = ?', a.roomId)).length, 1);
  });
});
