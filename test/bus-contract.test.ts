/**
 * The Bus contract (test/contracts/bus-contract.ts) against each implementation: LocalBus (one
 * node, its seqs from a real SeqReservations over a real RecordWriter on an in-memory SQLite
 * store), and RedisBus (three nodes, each with its own RedisLink, sharing one key prefix). Then
 * what only the Redis bus has: a node cut off from Redis and back.
 *
 * Backend-independent: run in the SQLite pass of `npm test` only.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { Bus, RoomMessage } from '../src/bus/bus.js';
import { LocalBus } from '../src/bus/local-bus.js';
import { RedisBus } from '../src/bus/redis-bus.js';
import { SeqReservations } from '../src/bus/seq-reservations.js';
import { RedisLink } from '../src/cluster/redis-link.js';
import { openStore } from '../src/store/open-store.js';
import { RecordWriter } from '../src/store/record-writer.js';
import type { RecordEntry } from '../src/store/store.js';
import { busContract, type BusFactory, type BusNodes } from './contracts/bus-contract.js';
import { sqliteOnly } from './helpers/db.js';
import { deleteKeys, redisForTests } from './helpers/redis.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const silent = pino({ level: 'silent' });

/** Holds back durability notices while asked to, and tells when a reservation is asked for. */
class ReservationGate {
  private held: (() => void)[] | undefined;
  private readonly waiters: (() => void)[] = [];
  private readonly durable = new Map<string, number>();

  hold(): () => void {
    this.held ??= [];
    return () => {
      const held = this.held ?? [];
      this.held = undefined;
      for (const done of held) done();
    };
  }

  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  reserved(roomId: string): number {
    return this.durable.get(roomId) ?? 0;
  }

  /** Tells the waiters, and runs `done` (after recording the reservation) now or on release. */
  asked(roomId: string, through: number, done: () => void): void {
    for (const waiter of this.waiters.splice(0)) waiter();
    const made = (): void => {
      this.durable.set(roomId, Math.max(this.reserved(roomId), through));
      done();
    };
    if (this.held) this.held.push(made);
    else made();
  }
}

/**
 * The RecordWriter as SeqReservations sees it, with its `room_seq` durability notices going
 * through the gate (everything else is the real writer's).
 */
function gatedWriter(writer: RecordWriter, gate: ReservationGate): RecordWriter {
  let lastReservation: Extract<RecordEntry, { kind: 'room_seq' }> | undefined;
  return new Proxy(writer, {
    get(target, property) {
      if (property === 'append') {
        return (entry: RecordEntry): void => {
          if (entry.kind === 'room_seq') lastReservation = entry;
          target.append(entry);
        };
      }
      if (property === 'whenDurable') {
        return (ticket: number, done: () => void, urgent?: boolean): void => {
          const reservation = lastReservation;
          lastReservation = undefined;
          if (!reservation) return target.whenDurable(ticket, done, urgent);
          target.whenDurable(
            ticket,
            () => gate.asked(reservation.roomId, reservation.reserved, done),
            urgent,
          );
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const local: BusFactory = {
  maxNodes: 1,
  historyWindow: undefined,
  async make(t: TestContext): Promise<BusNodes> {
    const store = openStore('sqlite::memory:', undefined, silent);
    await store.migrate();
    const writer = new RecordWriter(store, { batchSize: 10_000, flushMs: 1 }, silent);
    const gate = new ReservationGate();
    const bus = new LocalBus('local-node', new SeqReservations(gatedWriter(writer, gate)));
    t.after(async () => {
      await bus.close();
      await writer.close(Date.now() + 5_000);
      await store.close();
    });
    return {
      buses: [bus],
      holdReservations: () => gate.hold(),
      nextReservation: () => gate.next(),
      reserved: (roomId) => gate.reserved(roomId),
    };
  },
};

const REDIS_WINDOW = 10;

/** The record's reservations for RedisBus: durable at once, or when released. */
class TestReservations extends ReservationGate {
  reserve = (roomId: string, through: number): Promise<void> =>
    new Promise((resolve) => this.asked(roomId, through, resolve));
}

async function redisNode(
  url: string,
  prefix: string,
  nodeId: string,
  reserve: TestReservations,
  t: TestContext,
) {
  const link = new RedisLink({ url, prefix, log: silent });
  const bus = new RedisBus({
    link,
    nodeId,
    historyWindow: REDIS_WINDOW,
    reserve: reserve.reserve,
    log: silent,
  });
  t.after(async () => {
    await bus.close();
    await link.close();
  });
  await link.connect();
  await bus.ready();
  return { link, bus };
}

const redis: BusFactory = {
  maxNodes: 3,
  historyWindow: REDIS_WINDOW,
  async make(t: TestContext, count: number): Promise<BusNodes | undefined> {
    const server = await redisForTests(t);
    if (!server) return undefined;
    const reservations = new TestReservations();
    const buses: Bus[] = [];
    for (let i = 0; i < count; i++) {
      buses.push((await redisNode(server.url, server.prefix, `node-${i}`, reservations, t)).bus);
    }
    return {
      buses,
      holdReservations: () => reservations.hold(),
      nextReservation: () => reservations.next(),
      reserved: (roomId) => reservations.reserved(roomId),
      loseSharedState: async () => {
        await deleteKeys(server.url, server.prefix);
      },
    };
  },
};

describe('bus implementations', sqliteOnly, () => {
  busContract('local', local);
  busContract('redis', redis);

  describe('RedisBus cut off from Redis', () => {
    it('refuses at once while cut off; once back, delivers what others sent meanwhile, then numbers again', async (t) => {
      const server = await redisForTests(t);
      if (!server) return;
      const target = new URL(server.url);
      const proxy = await TcpProxy.start(target.hostname, Number(target.port || 6379));
      t.after(() => proxy.close());
      const proxied = new URL(server.url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      const reservations = new TestReservations();
      const a = await redisNode(proxied.toString(), server.prefix, 'node-a', reservations, t);
      const b = await redisNode(server.url, server.prefix, 'node-b', reservations, t);
      const room = 'CUTOFF01';
      const start = async () => ({ last: 0, reserved: reservations.reserved(room) });
      const received: RoomMessage[][] = [[], []];
      const waiters: (() => void)[] = [];
      const handler = (i: number) => (m: RoomMessage) => {
        received[i]!.push(m);
        for (const w of waiters.splice(0)) w();
      };
      const until = async (done: () => boolean): Promise<void> => {
        while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
      };
      await a.bus.subscribe(room, handler(0), start);
      await b.bus.subscribe(room, handler(1), start);
      const publish = (bus: Bus, text: string) =>
        new Promise<number | string>((resolve) =>
          bus.publish(
            {
              roomId: room,
              seq: 0,
              node: bus.nodeId,
              senderId: 1,
              fromDeviceId: 'd',
              fromIdentity: 'i',
              sentAt: '2026-12-01T00:00:00.000Z',
              to: null,
              payload: Buffer.from(text),
              text,
            },
            { numbered: (m) => resolve(m.seq), refused: (reason) => resolve(reason) },
          ),
        );
      assert.equal(await publish(a.bus, '{"n":1}'), 1);
      await until(() => received[0]!.length === 1 && received[1]!.length === 1);

      const cut = new Promise<void>((resolve) => a.link.onState((up) => !up && resolve()));
      proxy.cut();
      await cut;
      assert.equal(a.bus.connected, false);
      let refusedAtOnce: string | undefined;
      a.bus.publish(
        {
          roomId: room,
          seq: 0,
          node: 'node-a',
          senderId: 1,
          fromDeviceId: 'd',
          fromIdentity: 'i',
          sentAt: '2026-12-01T00:00:00.000Z',
          to: null,
          payload: Buffer.from('{}'),
          text: '{}',
        },
        {
          numbered: () => assert.fail('numbered while cut off'),
          refused: (reason) => (refusedAtOnce = reason),
        },
      );
      assert.match(refusedAtOnce ?? '', /cut off/, 'refused before publish() returned');
      assert.equal(await publish(b.bus, '{"n":2}'), 2);
      assert.equal(await publish(b.bus, '{"n":3}'), 3);

      const back = new Promise<void>((resolve) => a.link.onState((up) => up && resolve()));
      proxy.restore();
      await back;
      await until(() => received[0]!.length === 3);
      assert.deepEqual(
        received[0]!.map((m) => [m.seq, m.text]),
        [
          [1, '{"n":1}'],
          [2, '{"n":2}'],
          [3, '{"n":3}'],
        ],
        'caught up from the stream, in order',
      );
      assert.equal(await publish(a.bus, '{"n":4}'), 4);
      await until(() => received[0]!.length === 4 && received[1]!.length === 4);
      assert.deepEqual(
        received[1]!.map((m) => m.seq),
        [1, 2, 3, 4],
      );
    });
  });
});
