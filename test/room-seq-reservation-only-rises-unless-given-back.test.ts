/**
 * rooms.seq_reserved on this run's backend (TEST_DATABASE), without the server: several servers
 * sharing one database raise a room's reservation, and their writes commit in any order, so a
 * `room_seq` record only ever raises the column; the one record that lowers it is a reservation
 * handed back (`room_seq_given_back`, Directory.giveBack). The same holds in one batch of mixed
 * kinds, and for records that went through the spool.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import { openStore } from '../src/store/open-store.js';
import { decodeEntries, encodeEntries } from '../src/store/record-queue.js';
import { RecordWriter } from '../src/store/record-writer.js';
import { sqliteWriterOptions } from '../src/store/sqlite-store.js';
import type { RecordEntry, Store } from '../src/store/store.js';
import { TEST_DATABASE } from './helpers/db.js';
import { readDatabase, removeDir, tempDir, testDatabaseUrl } from './helpers/server.js';

const silent = pino({ level: 'silent' });
const AT = '2026-11-26T10:00:00.123Z';

const raise = (roomId: string, reserved: number): RecordEntry => ({ kind: 'room_seq', roomId, reserved });
const giveBack = (roomId: string, reserved: number): RecordEntry => ({
  kind: 'room_seq_given_back',
  roomId,
  reserved,
});

describe(`rooms.seq_reserved on ${TEST_DATABASE}`, () => {
  const dir = tempDir();
  let url = '';
  let store: Store;

  const reserved = async (roomId: string): Promise<number> => {
    const [row] = await readDatabase<{ seq_reserved: number }>(
      url,
      'select seq_reserved from rooms where room_id = ?',
      roomId,
    );
    assert.ok(row, `room ${roomId} is there`);
    assert.equal((await store.roomSeq(roomId)).reserved, Number(row.seq_reserved), 'Store.roomSeq agrees');
    return Number(row.seq_reserved);
  };
  const room = async (roomId: string, seqReserved = 0): Promise<string> => {
    assert.equal(await store.insertRoom(roomId, AT, seqReserved), true);
    return roomId;
  };

  before(async () => {
    url = await testDatabaseUrl(dir);
    // The writer thread as the server runs it.
    store = openStore(url, undefined, silent, sqliteWriterOptions(loadConfig()));
    await store.migrate();
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });

  it('a lower room_seq written after a higher one leaves the higher (each in its own batch)', async () => {
    const r = await room('RSEQ0001', 1024);
    await store.write([raise(r, 3072)]);
    assert.equal(await reserved(r), 3072);
    await store.write([raise(r, 2048)]); // another node's older block, committed later
    assert.equal(await reserved(r), 3072, 'not lowered');
    await store.write([raise(r, 4096)]);
    assert.equal(await reserved(r), 4096, 'raised');
  });

  it('a lower room_seq after a higher one in the same batch, among other kinds, leaves the higher', async () => {
    const r = await room('RSEQ0002', 10);
    await store.write([
      raise(r, 500),
      { kind: 'device', deviceId: 'dev-rs', identity: 'rs', roomId: r, at: AT },
      raise(r, 200),
    ]);
    assert.equal(await reserved(r), 500);
  });

  it('room_seq_given_back lowers it, and the records of one batch apply in their order', async () => {
    const r = await room('RSEQ0003', 1024);
    await store.write([giveBack(r, 17)]);
    assert.equal(await reserved(r), 17, 'given back: lowered to the last seq');

    // Evicted and given back, then loaded again and reserved anew, in one batch with other
    // kinds: the new block stands, the give-back does not undo it.
    const r2 = await room('RSEQ0004', 1024);
    await store.write([
      raise(r2, 2048),
      { kind: 'device', deviceId: 'dev-rs', identity: 'rs', roomId: r2, at: AT },
      giveBack(r2, 1500),
      { kind: 'device', deviceId: 'dev-rs2', identity: 'rs2', roomId: r2, at: AT },
      raise(r2, 1500 + 1024),
    ]);
    assert.equal(await reserved(r2), 2524);

    // And the other way round: a reservation given back after the last block ends lower.
    const r3 = await room('RSEQ0005', 1024);
    await store.write([
      raise(r3, 4096),
      { kind: 'device', deviceId: 'dev-rs', identity: 'rs', roomId: r3, at: AT },
      giveBack(r3, 3000),
    ]);
    assert.equal(await reserved(r3), 3000);

    // Written twice (a batch whose commit outcome was unknown): the same result.
    const again: RecordEntry[] = [raise(r3, 5000), giveBack(r3, 4321), raise(r3, 4000)];
    await store.write(again);
    await store.write(again);
    assert.equal(await reserved(r3), 4321);
  });

  it('both kinds survive the record queue and the spool: replayed, they raise and lower as written', async () => {
    const entries: RecordEntry[] = [raise('RSEQ0006', 9000), giveBack('RSEQ0007', 12)];
    assert.deepEqual(decodeEntries(encodeEntries(entries)), entries, 'byte-exact through the queue');

    const a = await room('RSEQ0006', 5000);
    const b = await room('RSEQ0007', 5000);
    // The database is away: every record goes to the spool at the shutdown.
    const down: Store = Object.create(store) as Store;
    down.writeEncoded = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    const spoolPath = join(dir, 'spool', 'room-seq.spool');
    const writer = new RecordWriter(down, { batchSize: 2, flushMs: 1, queueMax: 1000, spoolPath }, silent);
    const spooled: RecordEntry[] = [
      raise(a, 7000),
      raise(a, 6000), // lower: ignored
      giveBack(b, 40),
      raise(b, 30), // lower than what was given back: ignored
      raise(a, 8000),
    ];
    for (const e of spooled) writer.append(e);
    const result = await writer.close(Date.now() + 500);
    assert.deepEqual(
      { written: result.written, spooled: result.spooled, lost: result.lost },
      { written: 0, spooled: spooled.length, lost: 0 },
    );
    assert.ok(existsSync(spoolPath));
    assert.equal(await reserved(a), 5000, 'nothing written yet');
    assert.equal(await reserved(b), 5000);

    const again = new RecordWriter(store, { batchSize: 2, flushMs: 1, queueMax: 1000, spoolPath }, silent);
    assert.equal(await again.replaySpool(), spooled.length);
    assert.equal(existsSync(spoolPath), false);
    assert.equal(await reserved(a), 8000);
    assert.equal(await reserved(b), 40);
    await again.close(Date.now() + 500);
  });
});
