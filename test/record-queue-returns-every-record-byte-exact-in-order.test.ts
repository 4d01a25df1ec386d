/**
 * The record queue (records waiting for the database, as bytes in shared buffers): whatever is
 * pushed comes back out of take(), byte-exact and in order, however the takes cut it, including
 * records larger than a chunk and text that is not ASCII. Generated inputs (fast-check);
 * FC_SEED=<seed> replays a failure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeEntries, encodeEntries, RecordQueue } from '../src/store/record-queue.js';
import type { RecordEntry } from '../src/store/store.js';

const params = { numRuns: 200, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) };

/** Well-formed UTF-16 (what a parsed frame's text is), ASCII or not. */
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
);
const at = fc
  .date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) })
  .map((d) => d.toISOString());
const id = fc.integer({ min: 1, max: 2 ** 52 });

const entry: fc.Arbitrary<RecordEntry> = fc
  .oneof(
    fc.record({
      kind: fc.constant('message' as const),
      roomId: fc.stringMatching(/^[A-Z0-9]{8}$/),
      seq: id,
      fromDeviceId: text,
      fromIdentity: text,
      toDeviceId: fc.option(text, { nil: null }),
      content: text,
      sentAt: at,
    }),
    fc.record({ kind: fc.constant('device' as const), deviceId: text, identity: text, roomId: text, at }),
    fc.record({
      kind: fc.constant('connection_open' as const),
      id,
      deviceId: text,
      roomId: text,
      identity: text,
      clientIp: text,
      at,
    }),
    fc.record({ kind: fc.constant('connection_close' as const), id, at }),
    fc.record({ kind: fc.constant('room_query' as const), id, deviceId: text, roomId: text, at }),
    fc.record({ kind: fc.constant('room' as const), roomId: text, at, seqReserved: id }),
    fc.record({ kind: fc.constant('room_seq' as const), roomId: text, reserved: id }),
    fc.record({ kind: fc.constant('room_seq_given_back' as const), roomId: text, reserved: id }),
  )
  // fc.record's objects have no prototype; decoded ones do. The `satisfies` keeps each kind's
  // fields in step with RecordEntry (the cast alone let a missing field through).
  .map((e) => ({ ...e }) satisfies RecordEntry as RecordEntry);

describe('record queue', () => {
  it('returns every pushed record once, byte-exact and in order, whatever the takes', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 10 }),
        (entries, takes) => {
          const q = new RecordQueue();
          const out: RecordEntry[] = [];
          let t = 0;
          // Taken, written, then released for reuse, as the writer does.
          const takeOne = () => {
            const batch = q.take(takes[t++ % takes.length]!)!;
            assert.ok(batch.count > 0);
            out.push(...decodeEntries(batch));
            q.release(batch);
          };
          for (const e of entries) {
            q.push(e);
            if (q.length >= takes[t % takes.length]!) takeOne();
          }
          while (q.length > 0) takeOne();
          assert.equal(q.take(5), undefined, 'nothing left');
          assert.deepEqual(out, entries);
        },
      ),
      params,
    );
  });

  it("the hot path's message record carries the frame's own bytes as its content", () => {
    fc.assert(
      fc.property(text, fc.option(text, { nil: null }), (content, to) => {
        const q = new RecordQueue();
        q.pushMessage('ABCD1234', 7, 'dev-ü', 'Zoë 🎈', to, Buffer.from(content), '2026-12-04T10:00:00.000Z');
        assert.deepEqual(decodeEntries(q.take(1)!), [
          {
            kind: 'message',
            roomId: 'ABCD1234',
            seq: 7,
            fromDeviceId: 'dev-ü',
            fromIdentity: 'Zoë 🎈',
            toDeviceId: to,
            content,
            sentAt: '2026-12-04T10:00:00.000Z',
          },
        ]);
      }),
      params,
    );
  });

  it('reuses its buffers once batches are released: memory stays bounded however much passes', () => {
    const q = new RecordQueue();
    const buffers = new Set<SharedArrayBuffer>();
    const content = Buffer.from('x'.repeat(1000));
    for (let round = 0; round < 200; round++) {
      for (let seq = 0; seq < 500; seq++) {
        q.pushMessage('ABCD1234', seq, 'd', 'i', null, content, '2026-12-04T10:00:00.000Z');
      }
      const batch = q.take(500)!;
      assert.equal(batch.count, 500);
      for (const part of batch.parts) buffers.add(part.buffer);
      q.release(batch);
    }
    // 100 MB of records went through; a handful of 1 MiB buffers carried them.
    assert.ok(buffers.size <= 4, `${buffers.size} buffers`);
  });

  it('keeps records larger than a chunk, and the records around them', () => {
    const big = '€'.repeat(700_000); // 2.1 MB of UTF-8: more than one 1 MiB chunk
    const entries: RecordEntry[] = [1, 2, 3].map((seq) => ({
      kind: 'message',
      roomId: 'ABCD1234',
      seq,
      fromDeviceId: 'd',
      fromIdentity: 'i',
      toDeviceId: null,
      content: seq === 2 ? big : `small ${seq}`,
      sentAt: '2026-12-04T10:00:00.000Z',
    }));
    const q = new RecordQueue();
    for (const e of entries) q.push(e);
    const batch = q.take(10)!;
    assert.equal(batch.count, 3);
    assert.deepEqual(decodeEntries(batch), entries);
    assert.deepEqual(decodeEntries(encodeEntries(entries)), entries, 'and as one encoded batch');
  });
});
