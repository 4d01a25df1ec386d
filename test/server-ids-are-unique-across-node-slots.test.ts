/**
 * Server-assigned row ids (connections, room queries): `ms × 1000 + n`, increasing and above
 * every id recorded. In a cluster each node has a slot (0..15) and every id it hands out is
 * ≡ slot (mod 16), so nodes sharing a database never collide, even in the same millisecond.
 * Without a slot, ids are as they always were. The clock is pinned (Date.now mocked), so the
 * same millisecond is guaranteed rather than hoped for. FC_SEED=<seed> replays a failure.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ID_SLOTS, ServerIds } from '../src/store/server-ids.js';

const params = { numRuns: 200, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) };

const MS = 1_780_000_000_000; // a pinned millisecond (2026)

/** Pins Date.now to what `clock()` says, for this test. */
function pinClock(t: TestContext, clock: () => number): void {
  t.mock.method(Date, 'now', clock);
}

describe('server ids', () => {
  it('without a slot: ms × 1000, then +1 within the same millisecond, always above maxRecorded', (t) => {
    let now = MS;
    pinClock(t, () => now);
    const ids = new ServerIds(0);
    assert.deepEqual([ids.next(), ids.next(), ids.next()], [MS * 1000, MS * 1000 + 1, MS * 1000 + 2]);
    now = MS + 1;
    assert.equal(ids.next(), (MS + 1) * 1000, 'a new millisecond starts at its own base');

    const ahead = new ServerIds(MS * 1000 + 5000); // recorded ids ahead of the clock
    assert.equal(ahead.next(), MS * 1000 + 5001);
    ahead.raise(MS * 1000 + 9000);
    assert.equal(ahead.next(), MS * 1000 + 9001);
    ahead.raise(5); // never lowers
    assert.equal(ahead.next(), MS * 1000 + 9002);
  });

  it('two nodes with different slots never collide over many calls in the same millisecond', (t) => {
    pinClock(t, () => MS);
    const a = new ServerIds(0, 3);
    const b = new ServerIds(0, 11);
    const seen = new Set<number>();
    let lastA = 0;
    let lastB = 0;
    for (let i = 0; i < 20_000; i++) {
      const x = a.next();
      const y = b.next();
      assert.equal(x % ID_SLOTS, 3);
      assert.equal(y % ID_SLOTS, 11);
      assert.ok(x > lastA && y > lastB, 'increasing');
      assert.ok(x >= MS * 1000 && y >= MS * 1000, 'not below the clock');
      lastA = x;
      lastB = y;
      assert.ok(!seen.has(x) && !seen.has(y), `id ${x} or ${y} handed out twice`);
      seen.add(x);
      seen.add(y);
    }
    assert.equal(seen.size, 40_000);
    assert.equal(a.next() - lastA, ID_SLOTS, 'past the clock, a slot steps by 16');
  });

  it('all 16 slots, interleaved in any order, with any recorded maxima and a clock that moves (or goes back): no id twice, each ≡ its slot, each node increasing and above its maxRecorded', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 ** 20 }), { minLength: ID_SLOTS, maxLength: ID_SLOTS }),
        fc.array(
          fc.record({
            slot: fc.integer({ min: 0, max: ID_SLOTS - 1 }),
            tick: fc.integer({ min: -3, max: 3 }),
            raise: fc.option(fc.integer({ min: 0, max: 2 ** 22 }), { nil: undefined, freq: 10 }),
          }),
          { maxLength: 400 },
        ),
        (maxima, steps) => {
          let now = MS;
          const realNow = Date.now;
          Date.now = () => now;
          try {
            // Recorded maxima near the pinned clock: some below it, some ahead of it.
            const base = MS * 1000 - 2 ** 19;
            const nodes = maxima.map((m, slot) => new ServerIds(base + m, slot));
            const last = maxima.map((m) => base + m);
            const seen = new Set<number>();
            for (const { slot, tick, raise } of steps) {
              now += tick;
              if (raise !== undefined) {
                nodes[slot]!.raise(base + raise);
                last[slot] = Math.max(last[slot]!, base + raise);
              }
              const id = nodes[slot]!.next();
              assert.ok(Number.isSafeInteger(id));
              assert.equal(id % ID_SLOTS, slot);
              assert.ok(id > last[slot]!, 'above every id before it and every id raised to');
              last[slot] = id;
              assert.ok(!seen.has(id), `id ${id} twice`);
              seen.add(id);
            }
          } finally {
            Date.now = realNow;
          }
        },
      ),
      params,
    );
  });

  it('a slot outside 0..15 is refused', () => {
    for (const slot of [-1, 16, 1.5, Number.NaN]) {
      assert.throws(() => new ServerIds(0, slot), RangeError, String(slot));
    }
    assert.doesNotThrow(() => new ServerIds(0, 0));
    assert.doesNotThrow(() => new ServerIds(0, 15));
  });
});
