/**
 * A spool left by an earlier process (records it could not write before it stopped) is written
 * at the next start, in order and exactly once, before the server accepts a client; then the
 * spool file is gone. Runs on every backend (the outage test makes a real spool on MySQL and
 * PostgreSQL; here it is written by hand, with a torn last block from a crash, behind a JSON-lines
 * spool of an earlier version).
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeEntries } from '../src/store/record-queue.js';
import { legacySpoolFileFor, Spool, spoolFileFor } from '../src/store/spool.js';
import type { RecordEntry } from '../src/store/store.js';
import { TEST_DATABASE } from './helpers/db.js';
import { joinNew } from './helpers/rooms.js';
import { readDatabase, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';

describe(`a spool left behind is written at the next start, before clients (${TEST_DATABASE})`, () => {
  const dir = tempDir();
  let second: TestServer | undefined;
  let databaseUrl = '';
  let roomId = '';
  let spool = '';
  let legacy = '';
  let atStart: { message_content: string; seq: number }[] = [];

  before(async () => {
    const first = await startServer({}, dir);
    databaseUrl = first.databaseUrl;
    const joined = await joinNew(first.url, 'spool-a', 'alpha');
    roomId = joined.roomId;
    joined.client.send('{"n":1}');
    await first.rows('select 1 as one');
    await joined.client.close();
    await first.stop();

    spool = spoolFileFor(join(dir, 'spool'), databaseUrl);
    legacy = legacySpoolFileFor(join(dir, 'spool'), databaseUrl);
    mkdirSync(dirname(spool), { recursive: true });
    const at = new Date().toISOString();
    const message = (seq: number): RecordEntry => ({
      kind: 'message',
      roomId,
      seq,
      fromDeviceId: 'spool-b',
      fromIdentity: 'beta',
      toDeviceId: null,
      content: `{"n":${seq}}`,
      sentAt: at,
    });
    // The oldest records in a JSON-lines spool of an earlier version, its last line torn …
    const older: RecordEntry[] = [
      { kind: 'device', deviceId: 'spool-b', identity: 'beta', roomId, at },
      {
        kind: 'connection_open',
        id: 1,
        deviceId: 'spool-b',
        roomId,
        identity: 'beta',
        clientIp: '10.1.1.1',
        at,
      },
      message(2),
    ];
    appendFileSync(legacy, older.map((e) => JSON.stringify(e) + '\n').join('') + '{"kind":"mess');
    // … the rest in today's spool, two blocks and a third cut short by a crash.
    const writer = new Spool(spool);
    await writer.append([
      encodeEntries([message(3), message(4)]),
      encodeEntries([
        { kind: 'room_query', id: 99, deviceId: 'spool-b', roomId, at },
        { kind: 'connection_close', id: 1, at },
      ]),
    ]);
    writer.close();
    const torn = Buffer.alloc(40);
    torn.writeUInt32LE(0x32534d52, 0);
    torn.writeUInt32LE(5, 4);
    torn.writeUInt32LE(500, 8);
    appendFileSync(spool, torn);
    second = await startServer({}, dir);
    // start() has resolved: the server listens now, and no client has connected.
    atStart = await readDatabase(databaseUrl, 'select message_content, seq from messages order by seq');
  });
  after(async () => {
    await second?.stop();
    removeDir(dir);
  });

  it('every spooled record is in the database when the server starts listening', async () => {
    assert.deepEqual(
      atStart,
      [1, 2, 3, 4].map((n) => ({ message_content: `{"n":${n}}`, seq: n })),
    );
    const conns = await readDatabase<{ id: number; disconnected_at: string | null }>(
      databaseUrl,
      'select id, disconnected_at from connections where id = 1',
    );
    assert.equal(conns.length, 1);
    assert.ok(conns[0]!.disconnected_at, 'the spooled close was written after the open');
    assert.deepEqual(await readDatabase(databaseUrl, 'select id from room_queries where id = 99'), [
      { id: 99 },
    ]);
  });

  it('the spool files are gone, and the room carries on from the replayed seq', async () => {
    assert.equal(existsSync(spool), false);
    assert.equal(existsSync(legacy), false);
    const rows = await second!.rows<{ seq: number }>(
      'select max(seq) as seq from messages where room_id = ?',
      roomId,
    );
    assert.equal(rows[0]!.seq, 4);
  });
});
