/**
 * What every Presence does, run against each implementation (test/presence-contract.test.ts):
 * joins and leaves per device, told once to every watcher; counts, devices and connections in
 * join order, the same on every node after each change; the full rule; a view built from what is
 * there when watching starts.
 *
 * Waiting is on events: after a change, a marker device joins and leaves through the first node,
 * and once every watcher has been told both, every earlier change has reached every node (a
 * room's events come in one order).
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Presence, PresenceEntry, PresenceListener } from '../../src/presence/presence.js';

export interface PresenceNodes {
  presences: Presence[];
}

export interface PresenceFactory {
  /** How many nodes the implementation can have. */
  maxNodes: number;
  /** `nodes` presences sharing one state, closed when the test ends; undefined when skipped. */
  make(t: TestContext, nodes: number): Promise<PresenceNodes | undefined>;
}

/** A listener that keeps what it was told (`+device` / `-device`) and waits for it. */
export class Watcher implements PresenceListener {
  readonly events: string[] = [];
  private readonly waiters: { event: string; times: number; resolve(): void }[] = [];

  deviceJoined(entry: PresenceEntry): void {
    this.push(`+${entry.deviceId}`);
  }

  deviceLeft(entry: PresenceEntry): void {
    this.push(`-${entry.deviceId}`);
  }

  /** Events other than the markers'. */
  get told(): string[] {
    return this.events.filter((e) => !e.slice(1).startsWith(MARKER));
  }

  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }

  /** Resolves once `event` was told `times` times. */
  seen(event: string, times = 1): Promise<void> {
    if (this.count(event) >= times) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ event, times, resolve }));
  }

  private push(event: string): void {
    this.events.push(event);
    for (const waiter of [...this.waiters]) {
      if (this.count(waiter.event) >= waiter.times) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}

const MARKER = 'marker-';
let counter = 0;

export function newRoom(): string {
  return `P${process.pid.toString(36).slice(-3)}${(counter++).toString(36).padStart(4, '0')}`.toUpperCase();
}

export function newConnId(): number {
  return 7_000_000_000_000 + process.pid * 10_000 + counter++;
}

export function entry(connId: number, deviceId: string, node = 'node-0'): PresenceEntry {
  return { connId, node, deviceId, identity: `identity of ${deviceId}`, level: connId % 2 ? 1 : 2 };
}

/**
 * Returns once every change made before it has reached every watcher: a marker device joins and
 * leaves through `via`, and each watcher is told both.
 */
export async function settle(via: Presence, watchers: Watcher[], roomId: string): Promise<void> {
  const marker = entry(newConnId(), `${MARKER}${counter++}`);
  assert.equal(await via.join(roomId, marker, 0), 'joined');
  await Promise.all(watchers.map((w) => w.seen(`+${marker.deviceId}`)));
  via.leave(roomId, marker.connId);
  await Promise.all(watchers.map((w) => w.seen(`-${marker.deviceId}`)));
}

/** Every node's view of the room: connections in order, count, and which devices it has. */
function views(presences: Presence[], roomId: string, devices: string[]) {
  return presences.map((p) => ({
    connections: p.connections(roomId).map((e) => `${e.connId}:${e.deviceId}`),
    count: p.count(roomId),
    devices: devices.filter((d) => p.hasDevice(roomId, d)),
  }));
}

export function presenceContract(name: string, factory: PresenceFactory): void {
  const several = Math.min(3, factory.maxNodes);

  describe(`Presence contract: ${name}`, () => {
    it("a device's first connection is its join and its last one leaving its leave, told once to each watcher", async (t) => {
      const nodes = await factory.make(t, several);
      if (!nodes) return;
      const { presences } = nodes;
      const room = newRoom();
      const watchers = presences.map(() => new Watcher());
      for (const [i, p] of presences.entries()) await p.watch(room, watchers[i]!);
      const first = presences[0]!;
      const last = presences[presences.length - 1]!;
      const [c1, c2] = [newConnId(), newConnId()];

      assert.equal(await first.join(room, entry(c1, 'dev-a'), 0), 'joined');
      assert.deepEqual(watchers[0]!.told, ['+dev-a'], 'told on the joining node before join() resolved');
      assert.equal(await last.join(room, entry(c2, 'dev-a', 'node-last'), 0), 'joined');
      await settle(first, watchers, room);
      for (const w of watchers)
        assert.deepEqual(w.told, ['+dev-a'], 'a second connection of a device is no join');

      first.leave(room, c1);
      assert.equal(first.count(room), 1, 'a leave shows in reads at once');
      await settle(first, watchers, room);
      for (const w of watchers) assert.deepEqual(w.told, ['+dev-a'], 'its device is still there: no leave');
      for (const p of presences) assert.equal(p.hasDevice(room, 'dev-a'), true);

      last.leave(room, c2);
      await Promise.all(watchers.map((w) => w.seen('-dev-a')));
      await settle(first, watchers, room);
      for (const w of watchers) assert.deepEqual(w.told, ['+dev-a', '-dev-a'], 'one join, one leave');
      for (const p of presences) {
        assert.equal(p.count(room), 0);
        assert.equal(p.hasDevice(room, 'dev-a'), false);
        assert.deepEqual(p.connections(room), []);
      }
    });

    it('count, hasDevice and connections (in join order) agree on every node after each change', async (t) => {
      const nodes = await factory.make(t, several);
      if (!nodes) return;
      const { presences } = nodes;
      const room = newRoom();
      const watchers = presences.map(() => new Watcher());
      for (const [i, p] of presences.entries()) await p.watch(room, watchers[i]!);
      const on = (i: number) => presences[i % presences.length]!;
      const devices = ['dev-a', 'dev-b', 'dev-c', 'dev-d'];
      const ids = Array.from({ length: 5 }, () => newConnId());
      const expected: string[] = [];
      const check = async (what: string): Promise<void> => {
        await settle(presences[0]!, watchers, room);
        const present = devices.filter((d) => expected.some((e) => e.endsWith(`:${d}`)));
        for (const [i, view] of views(presences, room, devices).entries()) {
          assert.deepEqual(
            view,
            { connections: expected, count: expected.length, devices: present },
            `node ${i} ${what}`,
          );
        }
      };
      const join = async (node: number, k: number, device: string): Promise<void> => {
        assert.equal(await on(node).join(room, entry(ids[k]!, device, `node-${node}`), 0), 'joined');
        expected.push(`${ids[k]}:${device}`);
        await check(`after conn ${k} of ${device} joined on node ${node}`);
      };
      const leave = async (node: number, k: number): Promise<void> => {
        on(node).leave(room, ids[k]!);
        expected.splice(
          expected.findIndex((e) => e.startsWith(`${ids[k]}:`)),
          1,
        );
        await check(`after conn ${k} left on node ${node}`);
      };
      await join(0, 0, 'dev-a');
      await join(1, 1, 'dev-b');
      await join(2, 2, 'dev-c');
      await join(1, 3, 'dev-a');
      await leave(1, 1);
      await join(0, 4, 'dev-d');
      await leave(0, 0);
      await leave(2, 2);
      for (const w of watchers) {
        assert.deepEqual(w.told, ['+dev-a', '+dev-b', '+dev-c', '-dev-b', '+dev-d', '-dev-c']);
      }
    });

    it("refuses other devices once a room has maxMembers connections, never the device's own", async (t) => {
      const nodes = await factory.make(t, several);
      if (!nodes) return;
      const { presences } = nodes;
      const room = newRoom();
      const watchers = presences.map(() => new Watcher());
      for (const [i, p] of presences.entries()) await p.watch(room, watchers[i]!);
      const a = presences[0]!;
      const b = presences[presences.length - 1]!;
      assert.equal(await a.join(room, entry(newConnId(), 'dev-a'), 2), 'joined');
      assert.equal(await b.join(room, entry(newConnId(), 'dev-b'), 2), 'joined');
      assert.equal(await a.join(room, entry(newConnId(), 'dev-c'), 2), 'full');
      assert.equal(await b.join(room, entry(newConnId(), 'dev-c'), 2), 'full', 'full seen from every node');
      assert.equal(await b.join(room, entry(newConnId(), 'dev-a'), 2), 'joined', "a device's own connection");
      assert.equal(await a.join(room, entry(newConnId(), 'dev-d'), 3), 'full');
      assert.equal(await a.join(room, entry(newConnId(), 'dev-d'), 4), 'joined');
      assert.equal(await b.join(room, entry(newConnId(), 'dev-e'), 0), 'joined', '0: no limit');
      await settle(a, watchers, room);
      for (const p of presences) assert.equal(p.count(room), 5);
      for (const w of watchers)
        assert.deepEqual(w.told, ['+dev-a', '+dev-b', '+dev-d', '+dev-e'], 'nothing of dev-c');
    });

    it('join() on a room not watched is refused', async (t) => {
      const nodes = await factory.make(t, 1);
      if (!nodes) return;
      await assert.rejects(
        nodes.presences[0]!.join(newRoom(), entry(newConnId(), 'dev-a'), 0),
        /not watched/,
      );
    });

    if (factory.maxNodes > 1) {
      it('watch() builds the view from what is there, quietly, and misses no change made meanwhile', async (t) => {
        const nodes = await factory.make(t, 2);
        if (!nodes) return;
        const [first, late] = nodes.presences as [Presence, Presence];
        const room = newRoom();
        const early = new Watcher();
        await first.watch(room, early);
        const ids = [newConnId(), newConnId(), newConnId(), newConnId()];
        await first.join(room, entry(ids[0]!, 'dev-a'), 0);
        await first.join(room, entry(ids[1]!, 'dev-b'), 0);
        await first.join(room, entry(ids[2]!, 'dev-a'), 0);
        const watcher = new Watcher();
        // A join while the late node reads its snapshot: in the snapshot or told after it, once.
        const [, joined] = await Promise.all([
          late.watch(room, watcher),
          first.join(room, entry(ids[3]!, 'dev-c'), 0),
        ]);
        assert.equal(joined, 'joined');
        await settle(first, [early, watcher], room);
        assert.deepEqual(
          late.connections(room).map((e) => e.connId),
          ids,
          'in join order',
        );
        assert.deepEqual(late.connections(room)[1], entry(ids[1]!, 'dev-b'), 'entries as joined');
        assert.equal(late.count(room), 4);
        assert.equal(late.hasDevice(room, 'dev-b'), true);
        assert.ok(
          watcher.told.length === 0 || watcher.told.join() === '+dev-c',
          `told ${watcher.told.join()}`,
        );
      });
    }
  });
}
