import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { joinExisting, roomInfoWhenTotal } from './helpers/rooms.js';
import { newRoomL2 } from './helpers/level2.js';
import { ISO_MS, waitFor } from './helpers/wait.js';
import { assertStillServes } from './helpers/hostile.js';

describe('dead peers are detected by missed pongs (--ping-interval-ms)', () => {
  const srv = useServer({ pingIntervalMs: 200 });

  it('a peer that stops answering pings is terminated, leaves the room and is recorded as disconnected', async () => {
    const honest = await newRoomL2(srv.url, 'dead-honest', 'honest');
    // autoPong: false — the socket stays open but never answers a ping, like a peer whose
    // network vanished without a FIN.
    const dead = await TestClient.connect(srv.url, { autoPong: false });
    dead.send({ device_id: 'dead-peer', identity: 'ghost', room_id: honest.roomId });
    assert.equal((await dead.next()).type, 'room');
    assert.equal((await honest.client.next()).type, 'member_joined');

    // Terminated without a close handshake: the client sees an abnormal closure.
    assert.equal((await dead.closed).code, 1006);
    const left = await honest.client.next();
    assert.deepEqual(left, {
      type: 'member_left',
      room_id: honest.roomId,
      device_id: 'dead-peer',
      identity: 'ghost',
    });
    await roomInfoWhenTotal(honest.client, 1);
    const rows = await waitFor('the dead peer recorded as disconnected', async () => {
      const r = await srv.rows<{ disconnected_at: string | null }>(
        "select disconnected_at from connections where device_id = 'dead-peer'",
      );
      return r[0]?.disconnected_at ? r : undefined;
    });
    assert.match(rows[0]!.disconnected_at!, ISO_MS);
    await honest.client.close();
    await assertStillServes(srv, 'dead');
  });

  it('a peer that answers pings is left alone across many intervals', async () => {
    const honest = await newRoomL2(srv.url, 'alive-a', 'alive');
    const other = await joinExisting(srv.url, 'alive-b', 'alive', honest.roomId);
    assert.equal((await honest.client.next()).type, 'member_joined');
    // Wait for the server's pings rather than for time: five answered pings are five intervals.
    let pings = 0;
    await new Promise<void>((resolve, reject) => {
      other.ws.on('ping', () => {
        if (++pings === 5) resolve();
      });
      other.ws.once('close', (code) => reject(new Error(`an answering peer was closed (${code})`)));
    });
    other.send('{"still":"alive"}');
    assert.deepEqual((await honest.client.next()).data, { still: 'alive' });
    assert.equal((await other.queryRoom()).total_clients, 2);
    await other.close();
    await honest.client.close();
  });
});
