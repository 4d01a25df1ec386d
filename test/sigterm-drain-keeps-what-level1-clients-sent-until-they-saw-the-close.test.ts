/**
 * A Level 1 client has no acks to resend by: in a drain, everything it sent until it saw the
 * server's close (1012) must still be relayed and recorded. Each sender streams numbered
 * messages while its socket is open; after the SIGTERM and the exit, the record holds exactly
 * what every sender sent, in order.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CliRun } from './helpers/cli.js';
import { killIfRunning, serveArgs, signalAndWait, startCli } from './helpers/chaos.js';
import type { TestClient } from './helpers/client.js';
import { TEST_DATABASE } from './helpers/db.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { readDatabase, removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';
import { CloseCode } from '../src/protocol/codes.js';

const PAIRS = 6;

describe(`a drain keeps what Level 1 clients sent until they saw the close (${TEST_DATABASE})`, () => {
  const dir = tempDir('rm-drain-l1-');
  let cli: (CliRun & { port: number }) | undefined;
  const clients: TestClient[] = [];
  after(async () => {
    for (const c of clients) c.ws.terminate();
    killIfRunning(cli);
    removeDir(dir);
  });

  it('every message sent before the 1012 is in the record, in order', { timeout: 120_000 }, async () => {
    const dbUrl = await testDatabaseUrl(dir);
    cli = await startCli(serveArgs(dbUrl, dir, ['--drain-ms', '1500']));
    const url = `ws://127.0.0.1:${cli.port}`;
    const senders: { client: TestClient; roomId: string; sent: number }[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const a = await joinNew(url, `l1-drain-a${i}`, 'sender');
      clients.push(a.client, await joinExisting(url, `l1-drain-b${i}`, 'reader', a.roomId));
      senders.push({ client: a.client, roomId: a.roomId, sent: 0 });
    }
    // Each sender writes while its socket is open: up to the moment the server's close arrives.
    const streams = senders.map(async (s) => {
      while (s.client.ws.readyState === s.client.ws.OPEN) {
        s.client.send({ n: ++s.sent });
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const exit = await signalAndWait(cli, 'SIGTERM');
    await Promise.all(streams);
    assert.equal(exit.code, 0);
    for (const c of clients) assert.equal((await c.closed).code, CloseCode.ServiceRestart);

    for (const s of senders) {
      const rows = await readDatabase<{ message_content: string }>(
        dbUrl,
        'select message_content from messages where room_id = ? order by seq',
        s.roomId,
      );
      const numbers = rows.map((r) => (JSON.parse(r.message_content) as { n: number }).n);
      assert.ok(s.sent > 0);
      assert.deepEqual(
        numbers,
        Array.from({ length: s.sent }, (_, i) => i + 1),
        `room ${s.roomId}: sent ${s.sent}, recorded ${numbers.length}`,
      );
    }
  });
});
