/**
 * The Presence contract (test/contracts/presence-contract.ts) against LocalPresence (one node)
 * and RedisPresence (three nodes, each with its own RedisLink, sharing one key prefix). Then what
 * only the cluster has: RedisNodes reaping a node whose heartbeat stopped (every watcher told its
 * devices left, once, with two live reapers), node slots, and nodes cut off from Redis and back.
 *
 * Backend-independent: run in the SQLite pass of `npm test` only.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import { RedisLink } from '../src/cluster/redis-link.js';
import { NODE_SLOTS, RedisNodes } from '../src/cluster/redis-nodes.js';
import { LocalPresence } from '../src/presence/local-presence.js';
import type { PresenceEntry } from '../src/presence/presence.js';
import { RedisPresence } from '../src/presence/redis-presence.js';
import {
  entry,
  newConnId,
  newRoom,
  presenceContract,
  settle,
  Watcher,
  type PresenceFactory,
} from './contracts/presence-contract.js';
import { sqliteOnly } from './helpers/db.js';
import { deleteKeys, redisForTests } from './helpers/redis.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { waitFor } from './helpers/wait.js';

const silent = pino({ level: 'silent' });

const local: PresenceFactory = {
  maxNodes: 1,
  async make(t) {
    const presence = new LocalPresence();
    t.after(() => presence.close());
    return { presences: [presence] };
  },
};

/** A node's link and presence, closed when the test ends. */
async function redisNode(t: TestContext, url: string, prefix: string, nodeId: string) {
  const link = new RedisLink({ url, prefix, log: silent });
  const presence = new RedisPresence({ link, nodeId, log: silent });
  t.after(async () => {
    await presence.close();
    await link.close();
  });
  await link.connect();
  return { link, presence };
}

const redis: PresenceFactory = {
  maxNodes: 3,
  async make(t, count) {
    const server = await redisForTests(t);
    if (!server) return undefined;
    const presences = [];
    for (let i = 0; i < count; i++)
      presences.push((await redisNode(t, server.url, server.prefix, `node-${i}`)).presence);
    return { presences };
  },
};

/** A URL for the same Redis through `proxy`. */
function through(proxy: TcpProxy, url: string): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

async function proxyFor(t: TestContext, url: string): Promise<TcpProxy> {
  const u = new URL(url);
  const proxy = await TcpProxy.start(u.hostname, Number(u.port || 6379));
  t.after(() => proxy.close());
  return proxy;
}

function linkState(link: RedisLink, connected: boolean): Promise<void> {
  return new Promise((resolve) => {
    const stop = link.onState((up) => {
      if (up !== connected) return;
      stop();
      resolve();
    });
  });
}

describe('presence implementations', sqliteOnly, () => {
  presenceContract('local', local);
  presenceContract('redis', redis);

  describe('RedisNodes', () => {
    it('reaps a node whose heartbeat stopped: each watcher told its devices left, once, with two reapers', async (t) => {
      const server = await redisForTests(t);
      if (!server) return;
      const ttlMs = 600;
      const reaps: { by: string; entries: { roomId: string; entry: PresenceEntry }[] }[] = [];
      let reaped!: () => void;
      const firstReap = new Promise<void>((resolve) => (reaped = resolve));
      const node = async (id: string) => {
        const { link, presence } = await redisNode(t, server.url, server.prefix, id);
        const nodes = new RedisNodes({
          link,
          nodeId: id,
          ttlMs,
          onReaped: (entries) => {
            reaps.push({ by: id, entries });
            reaped();
          },
          log: silent,
        });
        t.after(() => nodes.stop().catch(() => undefined));
        await nodes.start();
        return { link, presence, nodes };
      };
      const [a, b, c] = [await node('node-a'), await node('node-b'), await node('node-c')];
      const room = newRoom();
      const watchers = [new Watcher(), new Watcher()];
      await a.presence.watch(room, new Watcher());
      await b.presence.watch(room, watchers[0]!);
      await c.presence.watch(room, watchers[1]!);
      const [c1, c2, c3] = [newConnId(), newConnId(), newConnId()];
      await a.presence.join(room, entry(c1, 'dev-1', 'node-a'), 0);
      await a.presence.join(room, entry(c2, 'dev-2', 'node-a'), 0);
      await b.presence.join(room, entry(c3, 'dev-3', 'node-b'), 0);
      await settle(b.presence, watchers, room);

      // node-a dies: its connections to Redis end, nothing is cleaned up, its heartbeat expires.
      await a.link.close();
      await firstReap;
      await Promise.all(watchers.flatMap((w) => [w.seen('-dev-1'), w.seen('-dev-2')]));
      // Both reapers have looked again, and every event published so far has arrived.
      await Promise.all([b.nodes.checkNow(), c.nodes.checkNow()]);
      await settle(b.presence, watchers, room);

      assert.equal(reaps.length, 1, `reaped once (by ${reaps.map((r) => r.by).join(', ')})`);
      assert.deepEqual(
        reaps[0]!.entries
          .map((r) => [r.roomId, r.entry])
          .sort((x, y) => (x[1] as PresenceEntry).connId - (y[1] as PresenceEntry).connId),
        [
          [room, entry(c1, 'dev-1', 'node-a')],
          [room, entry(c2, 'dev-2', 'node-a')],
        ],
      );
      for (const w of watchers) {
        assert.deepEqual(w.told.slice(0, 3), ['+dev-1', '+dev-2', '+dev-3']);
        assert.deepEqual(w.told.slice(3).sort(), ['-dev-1', '-dev-2'], 'each leave once (in any order)');
      }
      for (const p of [b.presence, c.presence]) {
        assert.deepEqual(
          p.connections(room).map((e) => e.connId),
          [c3],
        );
      }
      assert.equal(await b.link.commands.sismember(b.link.key('nodes'), 'node-a'), 0, 'no longer a member');
      assert.deepEqual((await b.link.commands.smembers(b.link.key('nodes'))).sort(), ['node-b', 'node-c']);
    });

    it(`gives each live node its own slot of ${NODE_SLOTS}, refuses one more, and frees a stopped node's`, async (t) => {
      const server = await redisForTests(t);
      if (!server) return;
      const link = new RedisLink({ url: server.url, prefix: server.prefix, log: silent });
      t.after(() => link.close());
      await link.connect();
      const make = (id: string) => {
        const nodes = new RedisNodes({ link, nodeId: id, onReaped: () => undefined, log: silent });
        t.after(() => nodes.stop().catch(() => undefined));
        return nodes;
      };
      const all = Array.from({ length: NODE_SLOTS }, (_, i) => make(`slot-node-${i}`));
      await Promise.all(all.map((n) => n.start()));
      const slots = all.map((n) => n.slot());
      assert.deepEqual(
        [...slots].sort((x, y) => x - y),
        Array.from({ length: NODE_SLOTS }, (_, i) => i),
      );
      const extra = make('slot-node-extra');
      await assert.rejects(extra.start(), /all 16 node slots .* are taken/);
      await all[5]!.stop();
      const again = make('slot-node-again');
      await again.start();
      assert.equal(again.slot(), slots[5], "the stopped node's slot");
    });
  });

  describe('RedisPresence cut off from Redis', () => {
    it('a leave made while cut off is sent when back, and the view catches up with what changed meanwhile', async (t) => {
      const server = await redisForTests(t);
      if (!server) return;
      const proxy = await proxyFor(t, server.url);
      const a = await redisNode(t, through(proxy, server.url), server.prefix, 'node-a');
      const b = await redisNode(t, server.url, server.prefix, 'node-b');
      const room = newRoom();
      const [wa, wb] = [new Watcher(), new Watcher()];
      await a.presence.watch(room, wa);
      await b.presence.watch(room, wb);
      const [c1, c2, c3] = [newConnId(), newConnId(), newConnId()];
      await a.presence.join(room, entry(c1, 'dev-a', 'node-a'), 0);
      await a.presence.join(room, entry(c3, 'dev-c', 'node-a'), 0);
      await settle(b.presence, [wa, wb], room);

      const cut = linkState(a.link, false);
      proxy.cut();
      await cut;
      a.presence.leave(room, c1);
      assert.deepEqual(
        a.presence.connections(room).map((e) => e.connId),
        [c3],
        'at once on the node cut off',
      );
      assert.equal(await b.presence.join(room, entry(c2, 'dev-b', 'node-b'), 0), 'joined');

      const back = linkState(a.link, true);
      proxy.restore();
      await back;
      await Promise.all([wa.seen('+dev-b'), wb.seen('-dev-a')]);
      await settle(b.presence, [wa, wb], room);
      for (const p of [a.presence, b.presence]) {
        assert.deepEqual(
          p.connections(room).map((e) => e.connId),
          [c3, c2],
        );
      }
      assert.deepEqual(wa.told, ['+dev-a', '+dev-c', '-dev-a', '+dev-b']);
      assert.deepEqual(
        wb.told,
        ['+dev-a', '+dev-c', '+dev-b', '-dev-a'],
        'the leave reached Redis after the join',
      );
    });

    it('Redis back empty: each node puts its own connections back, and the views agree', async (t) => {
      const server = await redisForTests(t);
      if (!server) return;
      const proxies = [await proxyFor(t, server.url), await proxyFor(t, server.url)];
      const a = await redisNode(t, through(proxies[0]!, server.url), server.prefix, 'node-a');
      const b = await redisNode(t, through(proxies[1]!, server.url), server.prefix, 'node-b');
      const room = newRoom();
      const [wa, wb] = [new Watcher(), new Watcher()];
      await a.presence.watch(room, wa);
      await b.presence.watch(room, wb);
      const [cx, cy] = [newConnId(), newConnId()];
      await a.presence.join(room, entry(cx, 'dev-x', 'node-a'), 0);
      await b.presence.join(room, entry(cy, 'dev-y', 'node-b'), 0);
      await settle(a.presence, [wa, wb], room);

      const cut = Promise.all([linkState(a.link, false), linkState(b.link, false)]);
      for (const proxy of proxies) proxy.cut();
      await cut;
      await deleteKeys(server.url, server.prefix);
      const back = Promise.all([linkState(a.link, true), linkState(b.link, true)]);
      for (const proxy of proxies) proxy.restore();
      await back;

      // Each node's own entry is back in Redis, then every view shows both.
      const members = b.link.key('room', `{${room}}`, 'members');
      await waitFor('both entries back in Redis', async () => (await b.link.commands.hlen(members)) === 2);
      const both = (p: RedisPresence) => p.hasDevice(room, 'dev-x') && p.hasDevice(room, 'dev-y');
      await waitFor('both views whole again', () => both(a.presence) && both(b.presence));
      await settle(a.presence, [wa, wb], room);
      for (const p of [a.presence, b.presence]) {
        assert.deepEqual(
          p
            .connections(room)
            .map((e) => e.connId)
            .sort(),
          [cx, cy].sort(),
        );
      }
      const fresh = await redisNode(t, server.url, server.prefix, 'node-fresh');
      await fresh.presence.watch(room, new Watcher());
      assert.deepEqual(
        fresh.presence
          .connections(room)
          .map((e) => e.connId)
          .sort(),
        [cx, cy].sort(),
        'a node that starts watching now sees both',
      );
    });
  });
});
