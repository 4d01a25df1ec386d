import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { useServer } from './helpers/server.js';
import { SECRET, mint, nowSeconds } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';

describe('a token that expires while connected', () => {
  const srv = useServer({ jwtSecret: SECRET });

  it('gets error token_expired, close 4003, and its connection is recorded as disconnected', async () => {
    // At least two seconds left when the hello is checked; the test waits for the frame, whenever it comes.
    const t = await mint('exp-soon', {}, { exp: nowSeconds() + 3 });
    const { client, reply } = await TestClient.join(srv.url, {
      device_id: 'exp-soon',
      identity: 'x',
      token: t,
    });
    assert.equal(reply.type, 'room', JSON.stringify(reply));
    const roomId = String(reply.room_id);
    // A member that stays, with a token valid for an hour.
    const other = await TestClient.connect(srv.url);
    other.send({ device_id: 'exp-later', identity: 'y', room_id: roomId, token: await mint('exp-later') });
    assert.equal((await other.next()).status, 'joined_existing');

    const open = await srv.rows<{ disconnected_at: string | null }>(
      'select disconnected_at from connections where device_id = ?',
      'exp-soon',
    );
    assert.deepEqual(open, [{ disconnected_at: null }]);

    assert.deepEqual(await client.next(), { type: 'error', message: 'Token expired', code: 'token_expired' });
    assert.equal((await client.closed).code, 4003);

    const closed = await waitFor('the disconnect in the record', async () => {
      const rows = await srv.rows<{ disconnected_at: string | null }>(
        'select disconnected_at from connections where device_id = ?',
        'exp-soon',
      );
      return rows.length === 1 && rows[0]!.disconnected_at !== null ? rows : undefined;
    });
    assert.equal(closed.length, 1);

    // The other member is alone in the room now, and still served.
    const info = await waitFor('the room to show one member', async () => {
      const answer = await other.queryRoom();
      return answer.total_clients === 1 ? answer : undefined;
    });
    assert.deepEqual(info.clients, []);
    await other.close();
  });
});
