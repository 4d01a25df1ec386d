import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { joinExistingL2, newRoomL2, nextEnvelope } from './helpers/level2.js';
import {
  INVALID_HELLO,
  INVALID_JSON_TEXT,
  assertStillServes,
  countRows,
  refusedFirstFrame,
} from './helpers/hostile.js';

/** Texts that are not JSON at all, or not one JSON value. */
const NOT_JSON = [
  '',
  ' ',
  '\n\t',
  '{',
  '}',
  '[',
  '{"a":}',
  "{'a':1}",
  '{a:1}',
  '{"a":1,}',
  '{"a" 1}',
  '{"a":1}{"b":2}',
  '{"a":1} x',
  '{"a":01}',
  '{"a":.5}',
  '{"a":1e}',
  '{"a":+1}',
  '{"a":0x10}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":undefined}',
  '{"a":"\\x41"}',
  '{"a":"\\u12"}',
  '{"a":"\\ud83d\\u"}',
  '{"a":"tab\there"}', // a raw control character inside a string is not JSON
  '{"a":"unterminated}',
  '\u0000',
  '{"a":1}\u0000',
  '\uFEFF{"a":1}', // JSON.parse does not skip a byte-order mark
  '/* comment */ {"a":1}',
  '{"a":1} // comment',
  '{"a":[1,2,]}',
  '{"a":tru}',
  '{"a":nul}',
  '{"a":"x"',
  '{"a":{"b":{"c":}}}',
  '}{',
  ']',
  'NaN',
  'undefined',
];

/** JSON values that are not objects. */
const NOT_AN_OBJECT = [
  '[]',
  '[{"device_id":"x","identity":"y"}]',
  '0',
  '-1e308',
  '1e999',
  '"{}"',
  'null',
  'true',
];

describe('malformed JSON is answered and never forwarded or recorded', () => {
  const srv = useServer();

  it('every malformed hello gets invalid_identity and close 4000; nothing is recorded', async () => {
    for (const text of [...NOT_JSON, ...NOT_AN_OBJECT]) {
      const got = await refusedFirstFrame(srv.url, text);
      assert.deepEqual(got.frame, INVALID_HELLO, `for ${JSON.stringify(text)}`);
      assert.equal(got.code, CloseCode.InvalidHello, `for ${JSON.stringify(text)}`);
    }
    assert.equal(await countRows(srv, 'connections'), 0);
    assert.equal(await countRows(srv, 'devices'), 0);
    await assertStillServes(srv, 'mj-hello');
  });

  it('in a Level 1 room each malformed frame gets the exact invalid_json error; the connection stays open', async () => {
    const a = await joinNew(srv.url, 'mj-l1-s', 'sender');
    const receiver = await joinExisting(srv.url, 'mj-l1-r', 'receiver', a.roomId);
    for (const text of [...NOT_JSON, ...NOT_AN_OBJECT]) {
      a.client.send(text);
      assert.equal(await a.client.nextText(), INVALID_JSON_TEXT, `for ${JSON.stringify(text)}`);
    }
    // The receiver's next frame is the marker: none of the malformed frames reached it.
    a.client.send('{"marker":1}');
    assert.equal(await receiver.nextText(), '{"marker":1}');
    const rows = await srv.rows('select message_content from messages where room_id = ?', a.roomId);
    assert.deepEqual(rows, [{ message_content: '{"marker":1}' }]);
    await receiver.close();
    await a.client.close();
  });

  it('in a Level 2 room each malformed frame gets invalid_json; no seq is used', async () => {
    const a = await newRoomL2(srv.url, 'mj-l2-s', 'sender');
    const receiver = await joinExistingL2(srv.url, 'mj-l2-r', 'receiver', a.roomId);
    await a.client.next(); // member_joined
    for (const text of [...NOT_JSON, ...NOT_AN_OBJECT]) {
      a.client.send(text);
      assert.equal(await a.client.nextText(), INVALID_JSON_TEXT, `for ${JSON.stringify(text)}`);
    }
    a.client.send('{"marker":2}');
    const envelope = await nextEnvelope(receiver.client);
    assert.equal(envelope.seq, 1);
    assert.deepEqual(envelope.data, { marker: 2 });
    await receiver.client.close();
    await a.client.close();
  });

  it('odd but valid JSON objects are forwarded and recorded byte for byte', async () => {
    // Valid JSON that a careless parser/re-serialiser would change: the original text is the contract.
    const odd = [
      ' \n{"a":1}\t ',
      '{"a":1,"a":2}',
      '{"":""}',
      '{"big":123456789012345678901234567890,"tiny":1e-400,"huge":1e999,"neg0":-0}',
      '{"esc":"\\u0041\\/\\"\\\\\\b\\f\\n\\r\\t"}',
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
      '{"type":{"not":"a string"},"ack_id":1}',
    ];
    const a = await joinNew(srv.url, 'mj-odd-s', 'sender');
    const receiver = await joinExisting(srv.url, 'mj-odd-r', 'receiver', a.roomId);
    for (const text of odd) {
      a.client.send(text);
      assert.equal(await receiver.nextText(), text);
    }
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by id',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      odd,
    );
    // The server runs in this process: a parsed "__proto__" key must not have polluted Object.prototype.
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    await receiver.close();
    await a.client.close();
  });

  it('a hello with "__proto__" fields is an ordinary hello and pollutes nothing', async () => {
    const a = await refusedFirstFrame(
      srv.url,
      '{"__proto__":{"device_id":"proto-dev","identity":"proto"},"identity":"only-identity"}',
    );
    // device_id inside __proto__ is not the hello's device_id.
    assert.deepEqual(a.frame, {
      type: 'error',
      message: 'Missing device_id field',
      code: 'missing_device_id',
    });
    assert.equal(a.code, CloseCode.MissingDeviceId);
    assert.equal(({} as Record<string, unknown>).device_id, undefined);
    await assertStillServes(srv, 'mj-proto');
  });
});
