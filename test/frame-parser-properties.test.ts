/**
 * Properties of the frame parser and hello validation, over generated inputs (fast-check). Each
 * property runs a bounded number of cases so that CI stays fast; a failure prints the seed and the
 * shrunk counterexample, and FC_SEED=<seed> replays it.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CloseCode, ErrorCode } from '../src/protocol/codes.js';
import { MAX_NAME_CHARS, frameText, parseHello, parseObject } from '../src/protocol/frames.js';

const RUNS = 500;
const params = { numRuns: RUNS, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) };

const ERROR_CODES = new Set<string>(Object.values(ErrorCode));
const CLOSE_CODES = new Set<number>(Object.values(CloseCode));

/** What the JSON spec says the text is: a plain object (the value), or not (undefined). */
function jsonObjectOf(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

/** A code point that is not a surrogate, and not NUL. */
const codePoint = fc.integer({ min: 1, max: 0x10ffff }).filter((cp) => cp < 0xd800 || cp > 0xdfff);

/** A device_id / identity the server must accept: 1–255 code points, no NUL, no lone surrogate. */
const validName = fc
  .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), codePoint), {
    minLength: 1,
    maxLength: MAX_NAME_CHARS,
  })
  .map((cps) => String.fromCodePoint(...cps));

/** Any string, lone surrogates and NULs included. */
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc
    .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
    .map((units) => String.fromCharCode(...units)),
);

/** Texts near JSON: valid JSON, JSON with a byte cut off or inserted, and arbitrary strings. */
const textish = fc.oneof(
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc
    .tuple(fc.json(), fc.nat(), fc.nat())
    .map(([t, at, n]) => t.slice(0, at % (t.length + 1)) + t.slice((at % (t.length + 1)) + (n % 3))),
  fc
    .tuple(fc.json(), fc.nat(), fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', '\u0000', ' '))
    .map(([t, at, c]) => t.slice(0, at % (t.length + 1)) + c + t.slice(at % (t.length + 1))),
  anyString,
);

/** Hello-shaped objects whose fields take any JSON value (or are absent). */
const helloish = fc
  .record(
    {
      device_id: fc.oneof(validName, anyString, fc.jsonValue()),
      identity: fc.oneof(validName, anyString, fc.jsonValue()),
      room_id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9]{8}$/), anyString, fc.jsonValue()),
      protocol: fc.oneof(fc.constantFrom(1, 2, null), fc.jsonValue()),
      resume: fc.oneof(
        fc.record({
          room_id: fc.oneof(anyString, fc.jsonValue()),
          last_seq: fc.oneof(fc.nat(), fc.jsonValue()),
        }),
        fc.jsonValue(),
      ),
      token: fc.oneof(anyString, fc.jsonValue()),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

describe('frame parser properties (fast-check)', () => {
  it('parseObject never throws and returns an object exactly when JSON.parse gives a plain object', () => {
    fc.assert(
      fc.property(textish, (text) => {
        const got = parseObject(text);
        const expected = jsonObjectOf(text);
        if (expected === undefined) assert.equal(got, undefined);
        else assert.deepStrictEqual(got, expected);
      }),
      params,
    );
    assert.equal(parseObject(undefined), undefined);
  });

  it('frameText: a text frame is its UTF-8 text; a binary frame is text exactly when it is valid UTF-8', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const data = Buffer.from(bytes);
        const text = frameText(data, true);
        if (!isUtf8(data)) assert.equal(text, undefined);
        else assert.ok(Buffer.from(text!, 'utf8').equals(data));
      }),
      params,
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        assert.equal(frameText(Buffer.from(s, 'utf8'), false), s);
        assert.equal(frameText(Buffer.from(s, 'utf8'), true), s);
      }),
      params,
    );
  });

  it('parseHello never throws: ok, or an error with a known code, a message and a 4000–4999 close', () => {
    fc.assert(
      fc.property(fc.oneof(textish, helloish), (text) => {
        const result = parseHello(text);
        if (result.ok) {
          // Whatever it accepts is storable: names of 1–255 characters, a well-typed level.
          const { deviceId, identity, level } = result.hello;
          for (const name of [deviceId, identity]) {
            assert.equal(typeof name, 'string');
            const chars = [...name].length;
            assert.ok(chars >= 1 && chars <= MAX_NAME_CHARS, `accepted a name of ${chars} characters`);
            assert.ok(!name.includes('\u0000'));
            assert.ok(isUtf8(Buffer.from(name, 'utf8')) && Buffer.from(name, 'utf8').toString() === name);
          }
          assert.ok(level === 1 || level === 2);
          return;
        }
        const { code, message, close } = result.error;
        assert.ok(ERROR_CODES.has(code), `unknown error code ${code}`);
        assert.ok(typeof message === 'string' && message.length > 0);
        assert.ok(Number.isInteger(close) && close >= 4000 && close <= 4999, `close ${close}`);
        assert.ok(CLOSE_CODES.has(close), `close ${close} is not in CloseCode`);
      }),
      params,
    );
    const missing = parseHello(undefined);
    assert.equal(missing.ok, false);
  });

  it('a valid hello is accepted with the same fields', () => {
    const hello = fc.record(
      {
        device_id: validName,
        identity: validName,
        room_id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9]{8}$/), fc.constantFrom(null, '')),
        protocol: fc.constantFrom(1, 2, null),
        extra: fc.jsonValue(),
      },
      { requiredKeys: ['device_id', 'identity'] },
    );
    fc.assert(
      fc.property(hello, (h) => {
        const result = parseHello(JSON.stringify(h));
        assert.ok(result.ok, `refused ${JSON.stringify(h)}: ${result.ok ? '' : result.error.message}`);
        assert.equal(result.hello.deviceId, h.device_id);
        assert.equal(result.hello.identity, h.identity);
        assert.equal(result.hello.roomId, h.room_id ? h.room_id.toUpperCase() : undefined);
        assert.equal(result.hello.level, h.protocol ?? 1);
      }),
      params,
    );
  });

  it('a hello whose name is too long, or holds a NUL or a lone surrogate, is refused invalid_identity / 4000', () => {
    const poisoned = fc.oneof(
      fc
        .array(codePoint, { minLength: MAX_NAME_CHARS + 1, maxLength: MAX_NAME_CHARS + 40 })
        .map((cps) => String.fromCodePoint(...cps)),
      fc
        .tuple(validName, fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d'), fc.nat())
        .map(([s, bad, at]) => {
          const cps = [...s];
          const i = at % (cps.length + 1);
          return [...cps.slice(0, i), bad, ...cps.slice(i)].join('');
        }),
    );
    fc.assert(
      fc.property(poisoned, validName, fc.boolean(), (bad, good, badIsDevice) => {
        const h = badIsDevice ? { device_id: bad, identity: good } : { device_id: good, identity: bad };
        const result = parseHello(JSON.stringify(h));
        assert.equal(result.ok, false);
        if (!result.ok) {
          assert.equal(result.error.code, ErrorCode.InvalidIdentity);
          assert.equal(result.error.close, CloseCode.InvalidHello);
        }
      }),
      params,
    );
  });
});
