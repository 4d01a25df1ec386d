/**
 * The storage layer on this run's backend (TEST_DATABASE), without the server: the schema the
 * migrations make, exact content and millisecond timestamps, idempotent batches, and the
 * RecordWriter's spool (bounded memory, replay in order, exactly once).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import { openStore } from '../src/store/open-store.js';
import { sqliteWriterOptions } from '../src/store/sqlite-store.js';
import { RecordWriter } from '../src/store/record-writer.js';
import type { RecordEntry, Store } from '../src/store/store.js';
import { TEST_DATABASE } from './helpers/db.js';
import { readDatabase, removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';
import { ISO_MS } from './helpers/wait.js';

const silent = pino({ level: 'silent' });
const ROOM = 'STORE001';

function message(
  seq: number,
  content = `{"n":${seq}}`,
  sentAt = new Date().toISOString(),
): Extract<RecordEntry, { kind: 'message' }> {
  return {
    kind: 'message',
    roomId: ROOM,
    seq,
    fromDeviceId: 'dev-1',
    fromIdentity: 'one',
    toDeviceId: null,
    content,
    sentAt,
  };
}

describe(`storage on ${TEST_DATABASE}`, () => {
  const dir = tempDir();
  let url = '';
  let store: Store;
  const rows = <T = Record<string, unknown>>(sql: string, ...params: unknown[]) =>
    readDatabase<T>(url, sql, ...params);

  before(async () => {
    url = await testDatabaseUrl(dir);
    // The writer thread as the server runs it: a large batch is written in paced slices.
    store = openStore(url, undefined, silent, sqliteWriterOptions(loadConfig()));
    await store.migrate();
    const at = '2026-11-26T10:00:00.123Z';
    assert.equal(await store.insertRoom(ROOM, at), true);
    assert.equal(await store.insertRoom(ROOM, at), false, 'a taken room code is refused');
    await store.write([{ kind: 'device', deviceId: 'dev-1', identity: 'one', roomId: ROOM, at }]);
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });

  it('migrations make the five tables with the seed columns (and again: nothing to apply)', async () => {
    assert.deepEqual(await store.migrate(), []);
    const columnNames = async (table: string): Promise<string[]> => {
      if (TEST_DATABASE === 'sqlite')
        return (await rows<{ name: string }>(`select name from pragma_table_info('${table}')`)).map(
          (r) => r.name,
        );
      const schemaFilter =
        TEST_DATABASE === 'mysql' ? 'table_schema = database()' : "table_schema = 'public'";
      return (
        await rows<{ name: string }>(
          `select column_name as name from information_schema.columns where table_name = ? and ${schemaFilter}`,
          table,
        )
      ).map((r) => r.name ?? (r as unknown as { NAME: string }).NAME);
    };
    const expected: Record<string, string[]> = {
      rooms: ['room_id', 'created_at', 'seq_reserved'],
      devices: ['device_id', 'first_connected_at', 'last_connected_at', 'last_room_id', 'last_identity'],
      connections: ['id', 'device_id', 'room_id', 'identity', 'connected_at', 'disconnected_at', 'client_ip'],
      messages: [
        'id',
        'from_device_id',
        'to_device_id',
        'room_id',
        'message_content',
        'sent_at',
        'seq',
        'from_identity',
      ],
      room_queries: ['id', 'device_id', 'room_id', 'queried_at'],
    };
    for (const [table, cols] of Object.entries(expected)) {
      assert.deepEqual((await columnNames(table)).sort(), [...cols].sort(), `columns of ${table}`);
    }
  });

  it('a 256 KiB message_content (and unicode, quotes, backslashes) comes back byte for byte', async () => {
    const big = JSON.stringify({ blob: 'x'.repeat(256 * 1024), u: 'é🚀名', q: `it's "q" \\ %_` });
    assert.ok(Buffer.byteLength(big) > 256 * 1024);
    await store.write([message(1, big)]);
    const [row] = await rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? and seq = 1',
      ROOM,
    );
    assert.equal(row!.message_content.length, big.length);
    assert.ok(row!.message_content === big, 'content identical');
  });

  it('timestamps keep their milliseconds, in UTC', async () => {
    const at = '2026-01-02T03:04:05.678Z';
    await store.write([message(2, '{}', at)]);
    const [row] = await rows<{ sent_at: string }>(
      "select sent_at from messages where room_id = 'STORE001' and seq = 2",
    );
    assert.equal(row!.sent_at, at);
    assert.equal((await store.getRoom(ROOM))!.createdAt, '2026-11-26T10:00:00.123Z');
    const device = (await store.getDevice('dev-1'))!;
    assert.match(device.firstConnectedAt, ISO_MS);
    assert.equal(device.firstConnectedAt, '2026-11-26T10:00:00.123Z');
  });

  it('a batch written again after it was committed inserts nothing twice (a room there already stays as it was)', async () => {
    const at = '2026-11-26T11:00:00.001Z';
    const batch: RecordEntry[] = [
      { kind: 'room', roomId: 'STORE0R1', at, seqReserved: 0 },
      { kind: 'room', roomId: ROOM, at, seqReserved: 0 }, // there already: left as it is
      { kind: 'device', deviceId: 'dev-1', identity: 'one-again', roomId: ROOM, at },
      {
        kind: 'connection_open',
        id: 42,
        deviceId: 'dev-1',
        roomId: ROOM,
        identity: 'one',
        clientIp: '10.0.0.1',
        at,
      },
      message(3),
      message(4),
      { kind: 'room_query', id: 7, deviceId: 'dev-1', roomId: ROOM, at },
      { kind: 'connection_close', id: 42, at: '2026-11-26T11:00:01.000Z' },
    ];
    assert.deepEqual(await store.write(batch), []);
    // As if the first commit's outcome had been unknown: the same rows, so no conflict either.
    assert.deepEqual(await store.write(batch), []);
    assert.deepEqual(
      (
        await rows<{ seq: number }>(
          "select seq from messages where room_id = 'STORE001' and seq in (3, 4) order by seq",
        )
      ).map((r) => r.seq),
      [3, 4],
    );
    assert.deepEqual(await rows('select id, disconnected_at from connections'), [
      { id: 42, disconnected_at: '2026-11-26T11:00:01.000Z' },
    ]);
    assert.deepEqual(await rows('select id from room_queries'), [{ id: 7 }]);
    assert.deepEqual(await rows("select room_id, created_at from rooms where room_id = 'STORE0R1'"), [
      { room_id: 'STORE0R1', created_at: at },
    ]);
    assert.equal((await store.getRoom(ROOM))!.createdAt, '2026-11-26T10:00:00.123Z');
    assert.deepEqual(await rows('select device_id, first_connected_at, last_identity from devices'), [
      { device_id: 'dev-1', first_connected_at: '2026-11-26T10:00:00.123Z', last_identity: 'one-again' },
    ]);
    assert.equal(await store.maxConnectionId(), 42);
    assert.equal(await store.maxRoomQueryId(), 7);
  });

  it('a key already there with other contents is a conflict: reported, the row left as it was', async () => {
    const at = '2026-11-26T12:00:00.000Z';
    const open = (id: number, deviceId: string): RecordEntry => ({
      kind: 'connection_open',
      id,
      deviceId,
      roomId: ROOM,
      identity: 'x',
      clientIp: '10.0.0.2',
      at,
    });
    assert.deepEqual(await store.write([message(61, '{"mine":1}'), open(700, 'dev-1')]), []);
    // Another writer's rows at the same keys (what two servers on one database would do).
    const conflicts = await store.write([
      message(60),
      message(61, '{"theirs":1}'),
      message(62),
      open(700, 'dev-other'),
      { kind: 'room_query', id: 7, deviceId: 'dev-other', roomId: ROOM, at },
    ]);
    assert.deepEqual(conflicts.map((c) => `${c.kind} ${c.key}`).sort(), [
      'connection_open 700',
      `message ${ROOM}#61`,
      'room_query 7',
    ]);
    assert.deepEqual(
      await rows(
        'select seq, message_content from messages where room_id = ? and seq between 60 and 62 order by seq',
        ROOM,
      ),
      [
        { seq: 60, message_content: '{"n":60}' },
        { seq: 61, message_content: '{"mine":1}' },
        { seq: 62, message_content: '{"n":62}' },
      ],
    );

    // Through the writer: an error in the log and a count, never passed over in silence.
    const lines: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    const writer = new RecordWriter(store, { batchSize: 100, flushMs: 1 }, log);
    writer.append(message(61, '{"third":1}'));
    await writer.drain();
    assert.equal(writer.conflicts, 1);
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; first: string[] });
    assert.equal(logged.length, 1);
    assert.match(logged[0]!.msg, /rows already in the database with other contents/);
    assert.deepEqual(logged[0]!.first, [`message ${ROOM}#61`]);
    await writer.close(Date.now() + 500);
  });

  it('a batch of 2,345 mixed records is written whole and in order (on SQLite, in paced slices)', async () => {
    const room = 'STORE002';
    const at = '2026-11-26T12:00:00.000Z';
    assert.equal(await store.insertRoom(room, at), true);
    const batch: RecordEntry[] = [];
    for (let i = 1; i <= 2345; i++) {
      if (i % 100 === 0)
        batch.push({ kind: 'room_query', id: 1000 + i, deviceId: 'dev-1', roomId: room, at });
      else {
        const content = `{"i":${i},"text":"é\\"q"}`;
        batch.push({
          kind: 'message',
          roomId: room,
          seq: i,
          fromDeviceId: 'dev-1',
          fromIdentity: 'one',
          toDeviceId: null,
          content,
          sentAt: at,
        });
      }
    }
    await store.write(batch);
    const stored = await rows<{ seq: number; message_content: string }>(
      'select seq, message_content from messages where room_id = ? order by seq',
      room,
    );
    const expected = batch.flatMap((e) => (e.kind === 'message' ? [[e.seq, e.content]] : []));
    assert.deepEqual(
      stored.map((r) => [Number(r.seq), r.message_content]),
      expected,
    );
    const queries = await rows<{ n: number }>(
      'select count(*) as n from room_queries where room_id = ?',
      room,
    );
    assert.equal(Number(queries[0]!.n), 23);
  });

  it('one batch in which a device joins a room, leaves, and joins another: its row ends in the later room, each stay recorded', async () => {
    const [roomA, roomB] = ['STORE003', 'STORE004'];
    const t = (s: number) => `2026-11-26T13:00:0${s}.000Z`;
    assert.equal(await store.insertRoom(roomA, t(0)), true);
    assert.equal(await store.insertRoom(roomB, t(0)), true);
    const stay = (id: number, roomId: string, at: string): RecordEntry[] => [
      { kind: 'device', deviceId: 'dev-3', identity: `three-${id}`, roomId, at },
      {
        kind: 'connection_open',
        id,
        deviceId: 'dev-3',
        roomId,
        identity: `three-${id}`,
        clientIp: '10.0.0.3',
        at,
      },
    ];
    await store.write([
      ...stay(301, roomA, t(1)),
      {
        kind: 'message',
        roomId: roomA,
        seq: 1,
        fromDeviceId: 'dev-3',
        fromIdentity: 'three-301',
        toDeviceId: null,
        content: '{}',
        sentAt: t(1),
      },
      { kind: 'connection_close', id: 301, at: t(2) },
      ...stay(302, roomB, t(3)),
      { kind: 'room_query', id: 3001, deviceId: 'dev-3', roomId: roomB, at: t(4) },
    ]);
    assert.deepEqual(
      await rows(
        "select device_id, first_connected_at, last_connected_at, last_room_id, last_identity from devices where device_id = 'dev-3'",
      ),
      [
        {
          device_id: 'dev-3',
          first_connected_at: t(1),
          last_connected_at: t(3),
          last_room_id: roomB,
          last_identity: 'three-302',
        },
      ],
    );
    assert.deepEqual(
      await rows('select id, room_id, disconnected_at from connections where id in (301, 302) order by id'),
      [
        { id: 301, room_id: roomA, disconnected_at: t(2) },
        { id: 302, room_id: roomB, disconnected_at: null },
      ],
    );
    assert.deepEqual(await rows('select id from room_queries where id = 3001'), [{ id: 3001 }]);
  });

  it('RecordWriter: past its memory bound records go to the spool; when the database is back, all are written once, in order, and the spool is deleted', async () => {
    let down = true;
    let failures = 0;
    let commitThenFail = true;
    // The database "goes away": writes fail; the first write after it returns commits and then
    // reports a failure (an unknown outcome), so that the writer writes that batch again.
    const flaky: Store = Object.create(store) as Store;
    flaky.writeEncoded = async (records) => {
      if (down) {
        failures++;
        throw new Error('connect ECONNREFUSED');
      }
      const conflicts = await store.writeEncoded(records);
      if (commitThenFail) {
        commitThenFail = false;
        throw new Error('Connection lost during COMMIT');
      }
      return conflicts;
    };
    const spoolPath = join(dir, 'spool', 'records.spool');
    const writer = new RecordWriter(flaky, { batchSize: 7, flushMs: 1, queueMax: 10, spoolPath }, silent);
    const first = 100;
    const count = 95;
    for (let i = 0; i < count; i++) {
      writer.append(message(first + i));
      if (i % 10 === 0)
        writer.append({ kind: 'room_query', deviceId: 'dev-1', roomId: ROOM, at: new Date().toISOString() });
      await new Promise((r) => setImmediate(r));
    }
    const total = count + Math.ceil(count / 10);
    assert.equal(writer.pending, total);
    // While the database fails, every record goes to the spool at the next flush: durable there.
    await new Promise<void>((resolve) => writer.whenDurable(writer.ticket, resolve));
    assert.equal(writer.spooled, total, 'every record is in the spool');
    assert.ok(existsSync(spoolPath));
    await assert.rejects(writer.until(writer.ticket), /unavailable/, 'until() fails fast during an outage');
    assert.ok(failures > 0);

    down = false;
    await writer.drain();
    assert.equal(writer.pending, 0);
    assert.equal(writer.spooled, 0);
    assert.equal(existsSync(spoolPath), false, 'the spool is deleted once written');
    const seqs = (
      await rows<{ seq: number }>(
        "select seq from messages where room_id = 'STORE001' and seq >= ? order by id",
        first,
      )
    ).map((r) => r.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: count }, (_, i) => first + i),
      'every message once, in order',
    );
    const queries = await rows<{ id: number }>(
      "select id from room_queries where room_id = 'STORE001' and id <> 7 order by id",
    );
    assert.equal(queries.length, Math.ceil(count / 10), 'every query once');
    await writer.close(Date.now() + 1000);
  });

  it('RecordWriter: a shutdown while the database is away spools everything; a new writer replays it', async () => {
    const down: Store = Object.create(store) as Store;
    down.writeEncoded = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    const spoolPath = join(dir, 'spool', 'shutdown.spool');
    const writer = new RecordWriter(down, { batchSize: 5, flushMs: 1, queueMax: 1000, spoolPath }, silent);
    for (let i = 0; i < 12; i++) writer.append(message(300 + i));
    const result = await writer.close(Date.now() + 500);
    assert.deepEqual(
      { written: result.written, spooled: result.spooled, lost: result.lost },
      { written: 0, spooled: 12, lost: 0 },
    );
    assert.ok(existsSync(spoolPath));

    const again = new RecordWriter(store, { batchSize: 5, flushMs: 1, queueMax: 1000, spoolPath }, silent);
    assert.equal(again.pending, 12);
    assert.equal(await again.replaySpool(), 12);
    assert.equal(existsSync(spoolPath), false);
    const seqs = (
      await rows<{ seq: number }>(
        "select seq from messages where room_id = 'STORE001' and seq >= 300 order by id",
      )
    ).map((r) => r.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: 12 }, (_, i) => 300 + i),
    );
    await again.close(Date.now() + 500);
  });

  it('RecordWriter: records that come while a batch is being written go out together in the next batch, not one small transaction after another', async () => {
    const room = 'STORE005';
    await store.insertRoom(room, new Date().toISOString());
    const batches: number[] = [];
    let started!: () => void;
    const firstStarted = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gated: Store = Object.create(store) as Store;
    gated.writeEncoded = async (records) => {
      batches.push(records.count);
      if (batches.length === 1) {
        started();
        await gate; // the first batch takes as long as the test wants
      }
      return store.writeEncoded(records);
    };
    const writer = new RecordWriter(gated, { batchSize: 1000, flushMs: 100 }, silent);
    const next = (seq: number) => writer.append({ ...message(seq), roomId: room });
    next(1);
    await firstStarted;
    // Three arrive, each on its own turn of the event loop, while the first batch is written.
    for (const seq of [2, 3, 4]) {
      next(seq);
      await new Promise((r) => setImmediate(r));
    }
    release();
    while (writer.pending > 3) await new Promise((r) => setImmediate(r));
    // The first batch is committed and nobody waits for the rest: two more come before it goes.
    next(5);
    next(6);
    await writer.drain();
    assert.deepEqual(batches, [1, 5], 'one batch of the first record, then one of the five that followed');
    const seqs = (
      await rows<{ seq: number }>(`select seq from messages where room_id = '${room}' order by id`)
    ).map((r) => r.seq);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6]);
    await writer.close(Date.now() + 500);
  });
});
