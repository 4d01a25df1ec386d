import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/codes.js';
import { useServer } from './helpers/server.js';
import { TestClient, type Frame } from './helpers/client.js';
import { ROOM_CODE } from './helpers/wait.js';

const MAX_FRAME = 2048;

const INVALID_HELLO = {
  type: 'error',
  message: 'Invalid JSON format for identity',
  code: 'invalid_identity',
};
const MISSING_IDENTITY = { type: 'error', message: 'Missing identity field', code: 'missing_identity' };
const MISSING_DEVICE = { type: 'error', message: 'Missing device_id field', code: 'missing_device_id' };

describe('an invalid hello is answered with an error frame and closed', () => {
  const srv = useServer({ maxFrameBytes: MAX_FRAME });

  /** Sends `hello` as the first frame; returns the one frame the server answers and the close. */
  async function refuse(
    hello: string | Buffer,
    options?: { binary?: boolean },
  ): Promise<{ frame: Frame; code: number }> {
    const client = await TestClient.connect(srv.url);
    client.ws.send(hello, { binary: options?.binary ?? false });
    const frame = await client.next();
    const closed = await client.closed;
    assert.equal(
      client.received.length,
      2,
      `exactly one frame after the greeting: ${client.received.join(' | ')}`,
    );
    return { frame, code: closed.code };
  }

  async function expectRefusal(
    hello: string | Buffer,
    frame: Record<string, unknown>,
    close: number,
    options?: { binary?: boolean },
  ): Promise<void> {
    const got = await refuse(hello, options);
    assert.deepEqual(got.frame, frame);
    assert.equal(got.code, close);
  }

  it('not JSON → invalid_identity, close 4000', async () => {
    await expectRefusal('hello there', INVALID_HELLO, CloseCode.InvalidHello);
    await expectRefusal('{"device_id":"bad-1","identity":"x"', INVALID_HELLO, CloseCode.InvalidHello);
  });

  it('a JSON array → invalid_identity, close 4000', async () => {
    await expectRefusal('[{"device_id":"bad-2","identity":"x"}]', INVALID_HELLO, CloseCode.InvalidHello);
  });

  it('a JSON string, number, boolean or null → invalid_identity, close 4000', async () => {
    for (const text of ['"bad-3"', '42', 'true', 'null']) {
      await expectRefusal(text, INVALID_HELLO, CloseCode.InvalidHello);
    }
  });

  it('device_id of the wrong type → invalid_identity, close 4000', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 123, identity: 'x' }),
      INVALID_HELLO,
      CloseCode.InvalidHello,
    );
  });

  it('identity of the wrong type → invalid_identity, close 4000', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'bad-4', identity: true }),
      INVALID_HELLO,
      CloseCode.InvalidHello,
    );
  });

  it('room_id of the wrong type → invalid_identity, close 4000', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'bad-5', identity: 'x', room_id: 42 }),
      INVALID_HELLO,
      CloseCode.InvalidHello,
    );
  });

  it('identity missing → missing_identity, close 4001', async () => {
    await expectRefusal(JSON.stringify({ device_id: 'bad-6' }), MISSING_IDENTITY, CloseCode.MissingIdentity);
  });

  it('identity empty → missing_identity, close 4001', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'bad-7', identity: '' }),
      MISSING_IDENTITY,
      CloseCode.MissingIdentity,
    );
  });

  it('identity null counts as missing → missing_identity, close 4001', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'bad-6n', identity: null }),
      MISSING_IDENTITY,
      CloseCode.MissingIdentity,
    );
  });

  it('device_id null counts as missing → missing_device_id, close 4002', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: null, identity: 'x' }),
      MISSING_DEVICE,
      CloseCode.MissingDeviceId,
    );
  });

  it('device_id missing → missing_device_id, close 4002', async () => {
    await expectRefusal(JSON.stringify({ identity: 'x' }), MISSING_DEVICE, CloseCode.MissingDeviceId);
  });

  it('device_id empty → missing_device_id, close 4002', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: '', identity: 'x' }),
      MISSING_DEVICE,
      CloseCode.MissingDeviceId,
    );
  });

  it('identity is checked before device_id: both missing → Missing identity field', async () => {
    await expectRefusal('{}', MISSING_IDENTITY, CloseCode.MissingIdentity);
    await expectRefusal(
      JSON.stringify({ device_id: '', identity: '' }),
      MISSING_IDENTITY,
      CloseCode.MissingIdentity,
    );
  });

  it('a well-formed room_id of no existing room → room_not_found, close 4004', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'bad-8', identity: 'x', room_id: 'ZZZZZZZZ' }),
      { type: 'error', message: 'Room ZZZZZZZZ does not exist', code: 'room_not_found' },
      CloseCode.RoomNotFound,
    );
  });

  it('a malformed room_id → room_not_found, close 4004', async () => {
    const got = await refuse(JSON.stringify({ device_id: 'bad-9', identity: 'x', room_id: 'abc' }));
    assert.equal(got.code, CloseCode.RoomNotFound);
    assert.deepEqual(Object.keys(got.frame).sort(), ['code', 'message', 'type']);
    assert.equal(got.frame.type, 'error');
    assert.equal(got.frame.code, 'room_not_found');
    // The text names the code as given or as normalised to upper case.
    assert.match(String(got.frame.message), /^Room (abc|ABC) does not exist$/);
    for (const roomId of ['ABCDEFGH1', 'AB-CD_EF', 'ABCDEFG']) {
      await expectRefusal(
        JSON.stringify({ device_id: 'bad-10', identity: 'x', room_id: roomId }),
        { type: 'error', message: `Room ${roomId} does not exist`, code: 'room_not_found' },
        CloseCode.RoomNotFound,
      );
    }
  });

  it('identity longer than 255 characters → invalid_identity, close 4000', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'bad-11', identity: 'i'.repeat(256) }),
      { type: 'error', message: 'Field identity is longer than 255 characters', code: 'invalid_identity' },
      CloseCode.InvalidHello,
    );
  });

  it('device_id longer than 255 characters → invalid_identity, close 4000', async () => {
    await expectRefusal(
      JSON.stringify({ device_id: 'd'.repeat(256), identity: 'x' }),
      { type: 'error', message: 'Field device_id is longer than 255 characters', code: 'invalid_identity' },
      CloseCode.InvalidHello,
    );
  });

  it('a NUL character in identity or device_id → invalid_identity, close 4000 (it could never be stored)', async () => {
    await expectRefusal(
      '{"device_id":"nul\\u0000dev","identity":"x"}',
      {
        type: 'error',
        message: 'Field device_id contains a NUL character or invalid Unicode',
        code: 'invalid_identity',
      },
      CloseCode.InvalidHello,
    );
    await expectRefusal(
      '{"device_id":"ok","identity":"a\\u0000"}',
      {
        type: 'error',
        message: 'Field identity contains a NUL character or invalid Unicode',
        code: 'invalid_identity',
      },
      CloseCode.InvalidHello,
    );
  });

  it('a lone surrogate in device_id → invalid_identity, close 4000 (it is not encodable as UTF-8)', async () => {
    await expectRefusal(
      '{"device_id":"half\\ud83d","identity":"x"}',
      {
        type: 'error',
        message: 'Field device_id contains a NUL character or invalid Unicode',
        code: 'invalid_identity',
      },
      CloseCode.InvalidHello,
    );
  });

  it('255 characters (counted as characters, not UTF-16 units) are accepted', async () => {
    const deviceId = '🚀'.repeat(255);
    const identity = 'é'.repeat(255);
    const { client, reply } = await TestClient.join(srv.url, { device_id: deviceId, identity });
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    const rows = await srv.rows('select device_id, last_identity from devices where device_id = ?', deviceId);
    assert.deepEqual(rows, [{ device_id: deviceId, last_identity: identity }]);
    await client.close();
  });

  it('a null room_id is treated as absent (created_new)', async () => {
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'null-room',
      identity: 'x',
      room_id: null,
    });
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    assert.match(String(reply.room_id), ROOM_CODE);
    await client.close();
  });

  it('an empty room_id is treated as absent (created_new)', async () => {
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'empty-room',
      identity: 'x',
      room_id: '',
    });
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    assert.match(String(reply.room_id), ROOM_CODE);
    await client.close();
  });

  it('a hello larger than maxFrameBytes → payload_too_large, close 4013', async () => {
    const base = JSON.stringify({ device_id: 'bad-big', identity: 'x', pad: '' });
    const size = MAX_FRAME + 500;
    const hello = JSON.stringify({
      device_id: 'bad-big',
      identity: 'x',
      pad: 'p'.repeat(size - base.length),
    });
    assert.equal(Buffer.byteLength(hello), size);
    await expectRefusal(
      hello,
      {
        type: 'error',
        message: `Message of ${size} bytes exceeds the limit of ${MAX_FRAME} bytes`,
        code: 'payload_too_large',
      },
      CloseCode.PayloadTooLarge,
    );
  });

  it('a binary hello with UTF-8 JSON is accepted like a text hello', async () => {
    const client = await TestClient.connect(srv.url);
    client.ws.send(Buffer.from(JSON.stringify({ device_id: 'binary-hello', identity: 'bïn' })), {
      binary: true,
    });
    const reply = await client.next();
    assert.equal(reply.type, 'room');
    assert.equal(reply.status, 'created_new');
    await client.close();
  });

  it('a binary hello that is not UTF-8 → invalid_identity, close 4000', async () => {
    await expectRefusal(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), INVALID_HELLO, CloseCode.InvalidHello, {
      binary: true,
    });
  });

  it('a refused hello leaves no record', async () => {
    const devices = await srv.rows<{ device_id: string }>(
      "select device_id from devices where device_id like 'bad-%'",
    );
    assert.deepEqual(devices, []);
    const connections = await srv.rows<{ device_id: string }>(
      "select device_id from connections where device_id like 'bad-%'",
    );
    assert.deepEqual(connections, []);
    const rooms = await srv.rows("select room_id from rooms where room_id = 'ZZZZZZZZ'");
    assert.deepEqual(rooms, []);
  });
});
