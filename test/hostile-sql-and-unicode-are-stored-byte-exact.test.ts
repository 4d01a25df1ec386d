import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient, type Frame } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { joinExistingL2, newRoomL2, nextEnvelope } from './helpers/level2.js';
import { assertStillServes, countRows, refusedFirstFrame } from './helpers/hostile.js';

/**
 * Strings a careless server would mangle: SQL metacharacters (quoting, comments, LIKE wildcards,
 * placeholders), and Unicode that collations, normalisation or UTF-8 handling change. Each is a
 * distinct device_id: pairs that differ only by case, trailing space or normal form must stay
 * distinct devices.
 */
const HOSTILE_STRINGS = [
  "'; DROP TABLE messages; --",
  "Robert'); DROP TABLE devices;--",
  '" OR "1"="1',
  "' OR 1=1 /*",
  'back\\slash \\\\ \\n \\u0000',
  '%_',
  '100% _sure_',
  '$1 ? :name @var',
  '`backtick` [bracket]',
  '🚀',
  '𝕳𝖊𝖑𝖑𝖔 𝄞',
  '👩‍👩‍👧‍👦',
  '\u200Fمرحبا\u200E',
  '\u202Eevil\u202C',
  'e\u0301', // NFD é
  'é', // NFC é: another device
  'Z̴̡̙a̷l̶g̸o̵',
  'CaseDev',
  'casedev',
  'pad',
  'pad ',
  ' lead',
  '\uFEFFbom',
  'line\u2028sep\u2029',
  'ctl\u0001\u001f\u007f\ttab\nnl\r',
  'nbsp\u00a0',
  '{"json":1}',
  '</script><script>alert(1)</script>',
  '𠜎'.repeat(255), // 255 characters, 1020 bytes
];

/** The identity each hostile device uses: the string again, tagged, within 255 characters. */
const identityOf = (i: number, s: string) => ([...s].length > 250 ? s : `${s}|${i}`);

describe('SQL metacharacters and Unicode in every field are stored and returned byte for byte', () => {
  const srv = useServer();

  it('as device_id and identity: distinct devices, exact in the room reply, room_info, envelopes and the record', async () => {
    const observer = await newRoomL2(srv.url, 'sq-observer', 'observer');
    const roomId = observer.roomId;
    const l1 = await joinExisting(srv.url, 'sq-l1', 'level1', roomId);
    assert.equal((await observer.client.next()).type, 'member_joined');

    const clients: TestClient[] = [];
    for (const [i, s] of HOSTILE_STRINGS.entries()) {
      const identity = identityOf(i, s);
      // Each is a new device: a collation that confused two of them would answer "reconnected".
      const first = await TestClient.join(srv.url, { device_id: s, identity });
      assert.equal(first.reply.status, 'created_new', `device ${JSON.stringify(s)}`);
      await first.client.close();
      const client = await joinExisting(srv.url, s, identity, roomId);
      clients.push(client);
      const joined = await observer.client.next();
      assert.deepEqual(joined, { type: 'member_joined', room_id: roomId, device_id: s, identity });
    }

    // room_info lists every one exactly.
    const info = await l1.queryRoom();
    const listed = (info.clients as { device_id: string; identity: string }[]).map((c) => c.device_id);
    for (const s of HOSTILE_STRINGS) assert.equal(listed.filter((d) => d === s).length, 1, JSON.stringify(s));

    // Each sends a message; the envelope names it exactly, the Level 1 member gets the bytes.
    for (const [i, s] of HOSTILE_STRINGS.entries()) {
      const text = JSON.stringify({ i, s });
      clients[i]!.send(text);
      const envelope = await nextEnvelope(observer.client);
      assert.deepEqual(envelope.from, { device_id: s, identity: identityOf(i, s) });
      assert.deepEqual(envelope.data, { i, s });
      assert.equal(await l1.nextText(), text);
    }

    // The record: compared in JavaScript, so that no database collation decides equality.
    const devices = await srv.rows<{ device_id: string; last_identity: string; last_room_id: string }>(
      'select device_id, last_identity, last_room_id from devices',
    );
    const connections = await srv.rows<{ device_id: string; identity: string; room_id: string }>(
      'select device_id, identity, room_id from connections',
    );
    const messages = await srv.rows<{ from_device_id: string; message_content: string }>(
      'select from_device_id, message_content from messages where room_id = ? order by seq',
      roomId,
    );
    for (const [i, s] of HOSTILE_STRINGS.entries()) {
      const device = devices.filter((d) => d.device_id === s);
      assert.deepEqual(
        device,
        [{ device_id: s, last_identity: identityOf(i, s), last_room_id: roomId }],
        JSON.stringify(s),
      );
      const conns = connections.filter((c) => c.device_id === s);
      assert.equal(conns.length, 2, JSON.stringify(s));
      for (const c of conns) assert.equal(c.identity, identityOf(i, s));
      assert.deepEqual(messages[i], { from_device_id: s, message_content: JSON.stringify({ i, s }) });
      // A parameterised lookup finds it too.
      const byParam = await srv.rows<{ device_id: string }>(
        'select device_id from devices where device_id = ?',
        s,
      );
      assert.ok(
        byParam.some((r) => r.device_id === s),
        JSON.stringify(s),
      );
    }
    // Every table is still there.
    assert.equal(messages.length, HOSTILE_STRINGS.length);
    for (const table of ['rooms', 'devices', 'connections', 'messages', 'room_queries'])
      await countRows(srv, table);

    for (const c of clients) await c.close();
    await l1.close();
    await observer.client.close();
  });

  it('a device that reconnects without room_id goes back to its own last room, not a look-alike’s', async () => {
    // LIKE patterns, case folding and trailing-space padding would all confuse these pairs.
    const pairs: [string, string][] = [
      ['lk-x1', 'lk-_1'],
      ['lk-abc', 'lk-%'],
      ['lk-Case', 'lk-case'],
      ['lk-pad', 'lk-pad '],
      ['lk-é', 'lk-e\u0301'],
    ];
    for (const [first, second] of pairs) {
      const a = await joinNew(srv.url, first, 'a');
      const b = await joinNew(srv.url, second, 'b');
      assert.notEqual(a.roomId, b.roomId);
      await a.client.close();
      await b.client.close();
      const back = await TestClient.join(srv.url, { device_id: second, identity: 'b' });
      assert.equal(back.reply.status, 'reconnected');
      assert.equal(back.reply.room_id, b.roomId, `${JSON.stringify(second)} went to its own room`);
      await back.client.close();
    }
  });

  it('as message content: raw text with escapes and exotic characters is kept byte for byte', async () => {
    const a = await newRoomL2(srv.url, 'sq-content-s', 'sender');
    const l2 = await joinExistingL2(srv.url, 'sq-content-l2', 'level2', a.roomId);
    const l1 = await joinExisting(srv.url, 'sq-content-l1', 'level1', a.roomId);
    await a.client.next(); // member_joined (l2)
    await a.client.next(); // member_joined (l1)
    await l2.client.next(); // member_joined (l1)
    const texts = [
      ...HOSTILE_STRINGS.map((s) => `{"raw":${JSON.stringify(s)}}`),
      // Escapes the server must not decode or normalise: the stored text is the sent text.
      '{"escaped":"\\u0027; DROP TABLE messages; --\\u0022","also":"\\ud83d\\ude80","sol":"\\/"}',
      '{"k\'ey":"v\\"al","%":"_","\\\\":"\\\\\\\\"}',
      '{"nul_escape":"a\\u0000b"}', // a JSON-escaped NUL is text, not a NUL byte
    ];
    for (const text of texts) {
      a.client.send(text);
      assert.equal(await l1.nextText(), text);
      assert.deepEqual((await nextEnvelope(l2.client)).data, JSON.parse(text));
    }
    const rows = await srv.rows<{ message_content: string }>(
      'select message_content from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(
      rows.map((r) => r.message_content),
      texts,
    );

    // History returns the same content.
    l2.client.send({ type: 'history', limit: texts.length });
    const history = await l2.client.next();
    assert.deepEqual(
      (history.messages as Frame[]).map((m) => m.data),
      texts.map((t) => JSON.parse(t) as unknown),
    );
    for (const c of [l1, l2.client, a.client]) await c.close();
  });

  it('a directed send to a device with a hostile device_id reaches it and records the target exactly', async () => {
    const target = "t'; DROP TABLE connections; --🚀";
    const a = await newRoomL2(srv.url, 'sq-send-s', 'sender');
    const t = await joinExisting(srv.url, target, 'target', a.roomId);
    const bystander = await joinExisting(srv.url, 'sq-send-other', 'other', a.roomId);
    await a.client.next();
    await a.client.next();
    a.client.send({ type: 'send', to: target, data: { secret: '%_\\' }, ack_id: 1 });
    assert.equal((await a.client.next()).type, 'ack');
    assert.equal(await t.nextText(), '{"secret":"%_\\\\"}');
    bystander.send('{"marker":true}');
    assert.equal(await t.nextText(), '{"marker":true}');
    const rows = await srv.rows<{ to_device_id: string | null }>(
      'select to_device_id from messages where room_id = ? order by seq',
      a.roomId,
    );
    assert.deepEqual(rows, [{ to_device_id: target }, { to_device_id: null }]);
    for (const c of [bystander, t, a.client]) await c.close();
  });

  it('as room_id: metacharacters and wildcards match no room (4004), create none', async () => {
    const existing = await joinNew(srv.url, 'sq-room-owner', 'owner');
    for (const roomId of [
      "'; DROP TABLE rooms; --",
      '%',
      '________',
      '%%%%%%%%',
      "A' OR '1'='1",
      'ＡＢＣＤ１２３４',
      '🚀🚀🚀🚀🚀🚀🚀🚀',
    ]) {
      const got = await refusedFirstFrame(
        srv.url,
        JSON.stringify({ device_id: 'sq-room', identity: 'x', room_id: roomId }),
      );
      assert.deepEqual(got.frame, {
        type: 'error',
        message: `Room ${roomId.toUpperCase()} does not exist`,
        code: 'room_not_found',
      });
      assert.equal(got.code, CloseCode.RoomNotFound);
    }
    const rooms = await srv.rows<{ room_id: string }>('select room_id from rooms');
    for (const r of rooms) assert.match(r.room_id, /^[A-Z0-9]{8}$/);
    assert.equal(await countRows(srv, 'devices', "device_id = 'sq-room'"), 0);
    await existing.client.close();
    await assertStillServes(srv, 'sq');
  });
});
