/**
 * The directory caches known rooms and devices (--room-cache-size). What leaves the cache is read
 * back from the database, even while its rows are still waiting for the record writer: a room
 * is joinable by its code the moment it is made, a device goes back to its last room, a room's
 * seq carries on after it emptied, and no code is handed out twice. Run with no cache and with
 * a cache of one, and with a writer that would wait a minute before it writes (so each read
 * finds its rows queued, not yet committed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

for (const roomCacheSize of [0, 1]) {
  describe(`with --room-cache-size ${roomCacheSize}, rooms and devices past the cache are found`, () => {
    const dir = tempDir();
    let srv: TestServer;

    before(async () => {
      srv = await startServer({ roomCacheSize, writerFlushMs: 60_000 }, dir);
    });
    after(async () => {
      await srv?.stop();
      removeDir(dir);
    });

    const noLiveRooms = () => waitFor('no live room', () => srv.server.status().rooms === 0);

    it('a new room is joinable by its code at once, and its device goes back to it', async () => {
      const a = await joinNew(srv.url, 'pc-a', 'screen');
      const later = await joinNew(srv.url, 'pc-x', 'other'); // pushes a's room out of the cache
      const b = await joinExisting(srv.url, 'pc-b', 'phone', a.roomId);
      await a.client.close();
      await b.close();
      await later.client.close();
      await noLiveRooms();
      const again = await TestClient.join(srv.url, { device_id: 'pc-a', identity: 'screen' });
      assert.equal(again.reply.status, 'reconnected');
      assert.equal(again.reply.room_id, a.roomId);
      await again.client.close();
      await noLiveRooms();
    });

    it("a room's seq carries on after it emptied", async () => {
      const a = await joinNew(srv.url, 'pc-seq-a', 'screen');
      const b = await joinExisting(srv.url, 'pc-seq-b', 'phone', a.roomId);
      a.client.send('{"n":1}');
      assert.equal(await b.nextText(), '{"n":1}');
      b.send('{"n":2}');
      assert.equal(await a.client.nextText(), '{"n":2}');
      await a.client.close();
      await b.close();
      await noLiveRooms();
      const c = await joinExisting(srv.url, 'pc-seq-c', 'tablet', a.roomId);
      const d = await joinExisting(srv.url, 'pc-seq-d', 'watch', a.roomId);
      c.send('{"n":3}');
      assert.equal(await d.nextText(), '{"n":3}');
      await c.close();
      await d.close();
      const rows = await srv.rows<{ seq: number; message_content: string }>(
        'select seq, message_content from messages where room_id = ? order by seq',
        a.roomId,
      );
      assert.deepEqual(
        rows.map((r) => [Number(r.seq), r.message_content]),
        [
          [1, '{"n":1}'],
          [2, '{"n":2}'],
          [3, '{"n":3}'],
        ],
      );
    });

    it('rooms made one after another get distinct codes, each recorded once', async () => {
      const codes: string[] = [];
      for (let i = 0; i < 12; i++) {
        const made = await joinNew(srv.url, `pc-many-${i}`, 'screen');
        codes.push(made.roomId);
        const other = await joinExisting(srv.url, `pc-many-${i}-b`, 'phone', made.roomId);
        await other.close();
        await made.client.close();
      }
      assert.equal(new Set(codes).size, codes.length);
      const rows = await srv.rows<{ room_id: string; n: number }>(
        'select room_id, count(*) as n from rooms group by room_id',
      );
      for (const code of codes) {
        assert.equal(Number(rows.find((r) => r.room_id === code)?.n), 1, `room ${code} recorded once`);
      }
    });
  });
}
