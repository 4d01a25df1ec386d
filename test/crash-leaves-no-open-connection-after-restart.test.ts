import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readRows, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { serveCli, type CliRun } from './helpers/cli.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { ISO_MS, waitFor } from './helpers/wait.js';
import { sqliteOnly } from './helpers/db.js';

describe('after kill -9, the next start closes the connections the crash left open', sqliteOnly, () => {
  const dir = tempDir();
  const dbPath = join(dir, 'room-manager.db');
  let cli: (CliRun & { port: number }) | undefined;
  let srv: TestServer | undefined;
  let roomId = '';
  const message = '{"before":"crash"}';

  before(async () => {
    cli = await serveCli(['--database-url', `sqlite:${dbPath}`]);
    const url = `ws://127.0.0.1:${cli.port}`;
    const a = await joinNew(url, 'crash-a', 'screen');
    roomId = a.roomId;
    const b = await joinExisting(url, 'crash-b', 'phone', roomId);
    a.client.send(message);
    assert.equal(await b.nextText(), message);
    // Wait until the record has reached the file (polling a condition, bounded).
    await waitFor('both connections and the message in the file', () => {
      try {
        const conns = readRows(dbPath, 'select id from connections where disconnected_at is null');
        const msgs = readRows(dbPath, 'select id from messages');
        return conns.length === 2 && msgs.length === 1;
      } catch {
        return false; // the file may be mid-creation
      }
    });
    cli.proc.kill('SIGKILL');
    const exit = await cli.exited;
    assert.equal(exit.signal, 'SIGKILL');
    await Promise.all([a.client.closed, b.closed]);
    srv = await startServer({}, dir);
  });
  after(async () => {
    if (cli && cli.proc.exitCode === null && cli.proc.signalCode === null) cli.proc.kill('SIGKILL');
    await srv?.stop();
    removeDir(dir);
  });

  it('the connections left open by the crash have disconnected_at set', async () => {
    const rows = await srv!.rows<{ device_id: string; disconnected_at: string | null }>(
      'select device_id, disconnected_at from connections order by id',
    );
    assert.deepEqual(
      rows.map((r) => r.device_id),
      ['crash-a', 'crash-b'],
    );
    for (const r of rows) assert.match(String(r.disconnected_at), ISO_MS);
  });

  it('what was recorded before the crash is still there, and the device reconnects to its room', async () => {
    assert.deepEqual(await srv!.rows('select message_content, seq from messages'), [
      { message_content: message, seq: 1 },
    ]);
    const { client, reply } = await TestClient.join(srv!.url, { device_id: 'crash-a', identity: 'screen' });
    assert.equal(reply.status, 'reconnected');
    assert.equal(reply.room_id, roomId);
    // New connections are recorded as open again, beside the closed ones.
    const open = await srv!.rows('select device_id from connections where disconnected_at is null');
    assert.deepEqual(open, [{ device_id: 'crash-a' }]);
    await client.close();
  });
});
