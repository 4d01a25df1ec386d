/**
 * What every Bus does, run against each implementation (test/bus-contract.test.ts): seqs 1, 2, 3…
 * per room from durable reservations only, every subscribed node gets every message in seq order
 * with the sender's bytes, the publisher's `numbered` sees the seq it delivers, a starved room
 * holds its messages in order, and node commands reach their node.
 *
 * Waiting is on events (a message delivered, a reservation asked for), never on time.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Bus, NodeCommand, RoomMessage, SeqStart } from '../../src/bus/bus.js';

/** Several nodes' buses over one shared state (one node for an in-process bus). */
export interface BusNodes {
  buses: Bus[];
  /** Reservations made from now on become durable only once the returned function is called. */
  holdReservations(): () => void;
  /** Resolves at the next reservation asked for (from now on). */
  nextReservation(): Promise<void>;
  /** The highest reservation made durable per room (what start() reads from the record). */
  reserved(roomId: string): number;
  /** The shared state lost (Redis restarted empty); undefined when there is none. */
  loseSharedState?: () => Promise<void>;
}

export interface BusFactory {
  /** How many nodes the implementation can have. */
  maxNodes: number;
  /** The stream window recent() keeps; undefined when recent() keeps none. */
  historyWindow: number | undefined;
  /** `nodes` buses, closed when the test ends; undefined when the test was skipped. */
  make(t: TestContext, nodes: number): Promise<BusNodes | undefined>;
}

let roomCounter = 0;
/** A room id of its own per test (8 characters, as room codes). */
function newRoom(): string {
  return `R${process.pid.toString(36).slice(-3)}${(roomCounter++).toString(36).padStart(4, '0')}`.toUpperCase();
}

/** A room's record as the tests keep it: what start() reads (the last seq and the reservation). */
class TestRecord {
  private readonly last = new Map<string, number>();

  constructor(private readonly nodes: BusNodes) {}

  numbered(message: RoomMessage): void {
    this.last.set(message.roomId, Math.max(this.last.get(message.roomId) ?? 0, message.seq));
  }

  start(roomId: string): () => Promise<SeqStart> {
    return async () => ({ last: this.last.get(roomId) ?? 0, reserved: this.nodes.reserved(roomId) });
  }
}

/** A handler's deliveries, and promises for "at least n delivered". */
class Inbox {
  readonly messages: RoomMessage[] = [];
  private readonly waiters: { count: number; resolve(): void }[] = [];

  readonly handler = (message: RoomMessage): void => {
    this.messages.push(message);
    for (const waiter of [...this.waiters]) {
      if (this.messages.length >= waiter.count) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  get seqs(): number[] {
    return this.messages.map((m) => m.seq);
  }

  received(count: number): Promise<void> {
    if (this.messages.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }
}

type Outcome = { seq: number; message: RoomMessage } | { refused: string };

/** Publishes and resolves with what became of it. */
function publish(bus: Bus, record: TestRecord | undefined, message: RoomMessage): Promise<Outcome> {
  return new Promise((resolve) =>
    bus.publish(message, {
      numbered: (m) => {
        record?.numbered(m);
        resolve({ seq: m.seq, message: m });
      },
      refused: (reason) => resolve({ refused: reason }),
    }),
  );
}

function seqOf(outcome: Outcome): number {
  if ('refused' in outcome) assert.fail(`refused: ${outcome.refused}`);
  return outcome.seq;
}

function message(bus: Bus, roomId: string, text: string, extra: Partial<RoomMessage> = {}): RoomMessage {
  return {
    roomId,
    seq: 0,
    node: bus.nodeId,
    senderId: 1000,
    fromDeviceId: 'device-1',
    fromIdentity: 'one',
    sentAt: '2026-12-01T10:00:00.000Z',
    to: null,
    payload: Buffer.from(text),
    text,
    ...extra,
  };
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function busContract(name: string, factory: BusFactory): void {
  const several = Math.min(3, factory.maxNodes);

  describe(`Bus contract: ${name}`, () => {
    it('numbers a room 1, 2, 3…; numbered gets the seq the handler is given, in that order', async (t) => {
      const nodes = await factory.make(t, 1);
      if (!nodes) return;
      const [bus] = nodes.buses as [Bus];
      const record = new TestRecord(nodes);
      const room = newRoom();
      const inbox = new Inbox();
      assert.equal(await bus.subscribe(room, inbox.handler, record.start(room)), 0);
      const outcomes = await Promise.all(
        range(1, 5).map((n) => publish(bus, record, message(bus, room, `{"n":${n}}`))),
      );
      assert.deepEqual(outcomes.map(seqOf), [1, 2, 3, 4, 5]);
      await inbox.received(5);
      assert.deepEqual(inbox.seqs, [1, 2, 3, 4, 5]);
      assert.deepEqual(
        inbox.messages.map((m) => m.text),
        range(1, 5).map((n) => `{"n":${n}}`),
      );
      assert.equal(bus.seq(room), 5);
    });

    it('numbers each room on its own', async (t) => {
      const nodes = await factory.make(t, 1);
      if (!nodes) return;
      const [bus] = nodes.buses as [Bus];
      const record = new TestRecord(nodes);
      const rooms = [newRoom(), newRoom()];
      const inboxes = [new Inbox(), new Inbox()];
      for (let i = 0; i < 2; i++)
        await bus.subscribe(rooms[i]!, inboxes[i]!.handler, record.start(rooms[i]!));
      const outcomes = await Promise.all(
        range(0, 9).map((n) => publish(bus, record, message(bus, rooms[n % 2]!, `{"n":${n}}`))),
      );
      assert.deepEqual(outcomes.map(seqOf), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
      await Promise.all(inboxes.map((inbox) => inbox.received(5)));
      for (const inbox of inboxes) assert.deepEqual(inbox.seqs, [1, 2, 3, 4, 5]);
      assert.deepEqual(
        inboxes[1]!.messages.map((m) => m.text),
        ['{"n":1}', '{"n":3}', '{"n":5}', '{"n":7}', '{"n":9}'],
      );
    });

    it(`every subscribed node (${several}) gets every message in seq order, whichever node sent it`, async (t) => {
      const nodes = await factory.make(t, several);
      if (!nodes) return;
      const record = new TestRecord(nodes);
      const room = newRoom();
      const inboxes = nodes.buses.map(() => new Inbox());
      for (const [i, bus] of nodes.buses.entries())
        await bus.subscribe(room, inboxes[i]!.handler, record.start(room));
      const sent: Promise<Outcome>[] = [];
      for (let n = 0; n < 30; n++) {
        const bus = nodes.buses[n % nodes.buses.length]!;
        sent.push(publish(bus, record, message(bus, room, `{"n":${n}}`, { senderId: n })));
      }
      const outcomes = await Promise.all(sent);
      const bySeq = new Map(outcomes.map((o) => [seqOf(o), (o as { message: RoomMessage }).message.text]));
      assert.deepEqual(
        [...bySeq.keys()].sort((a, b) => a - b),
        range(1, 30),
      );
      await Promise.all(inboxes.map((inbox) => inbox.received(30)));
      for (const inbox of inboxes) {
        assert.deepEqual(inbox.seqs, range(1, 30));
        assert.deepEqual(
          inbox.messages.map((m) => m.text),
          range(1, 30).map((seq) => bySeq.get(seq)),
          'the message numbered N is the one delivered as N',
        );
      }
    });

    it('no seq is given twice when nodes publish to one room at once (2 × 500 interleaved)', async (t) => {
      const nodes = await factory.make(t, Math.min(2, factory.maxNodes));
      if (!nodes) return;
      const record = new TestRecord(nodes);
      const room = newRoom();
      const inboxes = nodes.buses.map(() => new Inbox());
      for (const [i, bus] of nodes.buses.entries())
        await bus.subscribe(room, inboxes[i]!.handler, record.start(room));
      const senders = [0, 1].map((s) => nodes.buses[s % nodes.buses.length]!);
      const perSender: Promise<Outcome>[][] = [[], []];
      for (let n = 0; n < 500; n++) {
        for (const s of [0, 1]) {
          const bus = senders[s]!;
          perSender[s]!.push(
            publish(bus, record, message(bus, room, `{"s":${s},"n":${n}}`, { senderId: s })),
          );
        }
      }
      const seqs = await Promise.all(
        perSender.map(async (outcomes) => (await Promise.all(outcomes)).map(seqOf)),
      );
      for (const own of seqs) {
        assert.deepEqual(
          own,
          [...own].sort((a, b) => a - b),
          "a sender's messages are numbered in the order it sent them",
        );
      }
      assert.deepEqual(
        seqs.flat().sort((a, b) => a - b),
        range(1, 1000),
        'each of 1..1000 exactly once',
      );
      await Promise.all(inboxes.map((inbox) => inbox.received(1000)));
      for (const inbox of inboxes) assert.deepEqual(inbox.seqs, range(1, 1000));
    });

    it("hands on the payload's bytes unchanged and keeps the sender's fields and the target", async (t) => {
      const nodes = await factory.make(t, several);
      if (!nodes) return;
      const record = new TestRecord(nodes);
      const room = newRoom();
      const inboxes = nodes.buses.map(() => new Inbox());
      for (const [i, bus] of nodes.buses.entries())
        await bus.subscribe(room, inboxes[i]!.handler, record.start(room));
      const texts = [
        '{"sql":"\'); DROP TABLE messages; --","like":"%_\\\\"}',
        '{"emoji":"😀👩‍👩‍👧","combining":"é","rtl":"שלום","separators":"\u2028\u2029","nul":"\\u0000"}',
        '{\n  "pretty": [1, 2, 3],\r\n\t"newlines": "a\\nb"\n}',
        '{"lone":"\\ud800","quote":"\\"","slash":"\\/"}',
        '  {"leading space and a BOM-less start":true}  ',
        `{"big":"${'x'.repeat(200_000)}"}`,
      ];
      const sender = nodes.buses[nodes.buses.length - 1]!;
      const fields: Partial<RoomMessage>[] = texts.map((_, i) => ({
        senderId: 4_200_000_000_000 + i,
        fromDeviceId: `dévice-${i} "quoted" \\ ✓`,
        fromIdentity: i % 2 ? 'ünïcode identity' : '',
        sentAt: `2026-12-0${i + 1}T10:00:00.${String(i).padStart(3, '0')}Z`,
        to: i % 2 ? null : `tärget-${i}\n`,
      }));
      const outcomes = await Promise.all(
        texts.map((text, i) => publish(sender, record, message(sender, room, text, fields[i]))),
      );
      assert.deepEqual(outcomes.map(seqOf), range(1, texts.length));
      await Promise.all(inboxes.map((inbox) => inbox.received(texts.length)));
      for (const inbox of inboxes) {
        for (const [i, got] of inbox.messages.entries()) {
          assert.ok(got.payload.equals(Buffer.from(texts[i]!)), `payload ${i} byte for byte`);
          assert.equal(got.text, texts[i]);
          assert.equal(got.roomId, room);
          assert.equal(got.node, sender.nodeId);
          assert.deepEqual(
            {
              senderId: got.senderId,
              fromDeviceId: got.fromDeviceId,
              fromIdentity: got.fromIdentity,
              sentAt: got.sentAt,
              to: got.to,
            },
            fields[i],
          );
        }
      }
    });

    it('a room out of durable seqs holds its messages, then numbers them in order once reserved', async (t) => {
      const nodes = await factory.make(t, 1);
      if (!nodes) return;
      const [bus] = nodes.buses as [Bus];
      const record = new TestRecord(nodes);
      const room = newRoom();
      const inbox = new Inbox();
      await bus.subscribe(room, inbox.handler, record.start(room));
      const release = nodes.holdReservations();
      const asked = nodes.nextReservation();
      // More than one block, so that the room runs out whatever it started with.
      const total = 1100;
      const numbered: number[] = [];
      const sent = range(1, total).map((n) =>
        publish(bus, record, message(bus, room, `{"n":${n}}`)).then((o) => {
          numbered.push(seqOf(o));
          return o;
        }),
      );
      await asked;
      const before = await settledCount(sent);
      assert.ok(before < total, `held while the reservation is not durable (${before} of ${total} numbered)`);
      release();
      const outcomes = await Promise.all(sent);
      assert.deepEqual(outcomes.map(seqOf), range(1, total), 'numbered in the order sent');
      assert.deepEqual(numbered, range(1, total));
      await inbox.received(total);
      assert.deepEqual(inbox.seqs, range(1, total));
      assert.ok(nodes.reserved(room) >= total, 'every seq given was reserved first');
    });

    it('refuses a message for a room not subscribed here, and unsubscribe stops delivery', async (t) => {
      const nodes = await factory.make(t, 1);
      if (!nodes) return;
      const [bus] = nodes.buses as [Bus];
      const record = new TestRecord(nodes);
      const room = newRoom();
      const refused = await publish(bus, record, message(bus, room, '{}'));
      assert.ok('refused' in refused, 'refused: not subscribed');
      const inbox = new Inbox();
      await bus.subscribe(room, inbox.handler, record.start(room));
      assert.equal(seqOf(await publish(bus, record, message(bus, room, '{"n":1}'))), 1);
      await inbox.received(1);
      bus.unsubscribe(room);
      const after = await publish(bus, record, message(bus, room, '{"n":2}'));
      assert.ok('refused' in after, 'refused after unsubscribe');
      assert.deepEqual(inbox.seqs, [1]);
    });

    it('subscribe resolves the seq so far, and earlier messages are not delivered to the new handler', async (t) => {
      const nodes = await factory.make(t, Math.min(2, factory.maxNodes));
      if (!nodes) return;
      const record = new TestRecord(nodes);
      const room = newRoom();
      const sender = nodes.buses[0]!;
      const late = nodes.buses[nodes.buses.length - 1]!;
      const senderInbox = new Inbox();
      await sender.subscribe(room, senderInbox.handler, record.start(room));
      for (let n = 1; n <= 3; n++) seqOf(await publish(sender, record, message(sender, room, `{"n":${n}}`)));
      await senderInbox.received(3);
      if (late === sender) {
        // One node: leave the room and come back, as the last member leaving and a new one coming.
        const kept = sender.unsubscribe(room);
        const start = record.start(room);
        const lateInbox = new Inbox();
        assert.equal(await late.subscribe(room, lateInbox.handler, kept ? async () => kept : start), 3);
        assert.equal(seqOf(await publish(sender, record, message(sender, room, '{"n":4}'))), 4);
        await lateInbox.received(1);
        assert.deepEqual(lateInbox.seqs, [4]);
        return;
      }
      const lateInbox = new Inbox();
      assert.equal(await late.subscribe(room, lateInbox.handler, record.start(room)), 3);
      assert.equal(seqOf(await publish(sender, record, message(sender, room, '{"n":4}'))), 4);
      await lateInbox.received(1);
      await senderInbox.received(4);
      assert.deepEqual(lateInbox.seqs, [4], 'only what came after subscribe resolved');
      // The late node leaves; what comes next reaches the sender only.
      late.unsubscribe(room);
      assert.equal(seqOf(await publish(sender, record, message(sender, room, '{"n":5}'))), 5);
      await senderInbox.received(5);
      const again = new Inbox();
      assert.equal(await late.subscribe(room, again.handler, record.start(room)), 5);
      assert.equal(seqOf(await publish(late, record, message(late, room, '{"n":6}'))), 6);
      await again.received(1);
      assert.deepEqual(lateInbox.seqs, [4], 'nothing reached the handler of the unsubscribed room');
      assert.deepEqual(again.seqs, [6]);
    });

    it(
      factory.historyWindow === undefined
        ? 'recent() keeps no shared window: undefined'
        : `recent() gives exactly the asked range from the window (${factory.historyWindow}), else undefined`,
      async (t) => {
        const nodes = await factory.make(t, Math.min(2, factory.maxNodes));
        if (!nodes) return;
        const record = new TestRecord(nodes);
        const room = newRoom();
        const [bus] = nodes.buses as [Bus];
        const reader = nodes.buses[nodes.buses.length - 1]!;
        await bus.subscribe(room, () => undefined, record.start(room));
        const total = 1000;
        const outcomes = await Promise.all(
          range(1, total).map((n) =>
            publish(bus, record, message(bus, room, `{"n":${n}}`, { to: n % 3 ? null : 'x' })),
          ),
        );
        assert.equal(seqOf(outcomes[total - 1]!), total);
        const window = factory.historyWindow;
        if (window === undefined) {
          assert.equal(await reader.recent(room, total - 5, total), undefined);
          return;
        }
        const recent = await reader.recent(room, total - window, total);
        assert.ok(recent, 'the window reaches back');
        assert.deepEqual(
          recent.map((m) => m.seq),
          range(total - window + 1, total),
        );
        assert.deepEqual(
          recent.map((m) => m.text),
          range(total - window + 1, total).map((n) => `{"n":${n}}`),
        );
        assert.deepEqual(
          recent.map((m) => m.to),
          range(total - window + 1, total).map((n) => (n % 3 ? null : 'x')),
        );
        const middle = await reader.recent(room, total - 4, total - 2);
        assert.deepEqual(
          middle?.map((m) => m.seq),
          [total - 3, total - 2],
        );
        assert.equal(
          await reader.recent(room, 0, total),
          undefined,
          'seq 1 was trimmed: not the whole range',
        );
        assert.deepEqual(await reader.recent(room, total, total), [], 'nothing after the last');
        assert.deepEqual(
          (await reader.recent(room, total - 1, total + 10))?.map((m) => m.seq),
          [total],
          'what was published of a range that reaches past the last seq',
        );
      },
    );

    it('commands reach the node addressed, and this node’s own synchronously', async (t) => {
      const nodes = await factory.make(t, Math.min(2, factory.maxNodes));
      if (!nodes) return;
      const got = nodes.buses.map(() => [] as NodeCommand[]);
      const arrived = nodes.buses.map(() => deferred());
      for (const [i, bus] of nodes.buses.entries()) {
        bus.onCommand((command) => {
          got[i]!.push(command);
          arrived[i]!.resolve();
        });
      }
      const [first] = nodes.buses as [Bus];
      first.command(first.nodeId, { type: 'kick', connId: 7, reason: 'by the admin' });
      assert.deepEqual(
        got[0],
        [{ type: 'kick', connId: 7, reason: 'by the admin' }],
        'handled before command() returned',
      );
      if (nodes.buses.length === 1) return;
      const other = nodes.buses[1]!;
      first.command(other.nodeId, { type: 'replace', connId: 8 });
      await arrived[1]!.promise;
      assert.deepEqual(got[1], [{ type: 'replace', connId: 8 }]);
      assert.deepEqual(got[0], [{ type: 'kick', connId: 7, reason: 'by the admin' }], 'not to the sender');
    });

    if (factory.maxNodes > 1) {
      it('shared state lost (Redis emptied): the room starts again from start() and reuses no seq', async (t) => {
        const nodes = await factory.make(t, 2);
        if (!nodes?.loseSharedState) return;
        const record = new TestRecord(nodes);
        const room = newRoom();
        const [a, b] = nodes.buses as [Bus, Bus];
        const inboxes = [new Inbox(), new Inbox()];
        await a.subscribe(room, inboxes[0]!.handler, record.start(room));
        await b.subscribe(room, inboxes[1]!.handler, record.start(room));
        for (let n = 1; n <= 3; n++) seqOf(await publish(a, record, message(a, room, `{"n":${n}}`)));
        await Promise.all(inboxes.map((inbox) => inbox.received(3)));
        await nodes.loseSharedState();
        assert.equal(seqOf(await publish(b, record, message(b, room, '{"n":4}'))), 4);
        assert.equal(seqOf(await publish(a, record, message(a, room, '{"n":5}'))), 5);
        const both = await Promise.all([
          publish(a, record, message(a, room, '{"n":6}')),
          publish(b, record, message(b, room, '{"n":7}')),
        ]);
        assert.deepEqual(both.map(seqOf).sort(), [6, 7]);
        await Promise.all(inboxes.map((inbox) => inbox.received(7)));
        for (const inbox of inboxes) assert.deepEqual(inbox.seqs, range(1, 7));
      });
    }
  });
}

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** How many of the promises have settled by now (after what is already queued has run). */
async function settledCount(promises: Promise<unknown>[]): Promise<number> {
  let settled = 0;
  for (const p of promises) void p.then(() => settled++);
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}
