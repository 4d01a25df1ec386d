/**
 * The database goes away under steady traffic (a TCP proxy in front of the real MariaDB or
 * PostgreSQL server is cut) and comes back. Relay and query_room keep working, what needs the
 * database is answered `unavailable` / 4503, records past the memory bound go to the spool, and
 * afterwards every message sent is in `messages` exactly once, in order, with the spool emptied.
 * Then: a shutdown during an outage spools the rest, and the next start writes it before it
 * accepts a client.
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { TEST_DATABASE, serverDatabasesOnly } from './helpers/db.js';
import { joinExisting, joinNew } from './helpers/rooms.js';
import { readDatabase, removeDir, startServer, tempDir, type TestServer } from './helpers/server.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';
import { proxiedDatabase } from './helpers/chaos.js';
import { waitFor } from './helpers/wait.js';

const backend = TEST_DATABASE === 'sqlite' ? 'mysql' : TEST_DATABASE;
const OUTAGE_MS = Number(process.env.TEST_OUTAGE_MS ?? 4000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two clients that send to each other every `everyMs` and count what they receive. */
class Traffic {
  readonly sent: string[] = [];
  received = 0;
  private timer: NodeJS.Timeout | undefined;
  private n = 0;

  constructor(
    private readonly a: TestClient,
    private readonly b: TestClient,
  ) {
    for (const c of [a, b])
      c.ws.on('message', (data: Buffer) => {
        if (data.toString().startsWith('{"from"')) this.received++;
      });
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => {
      for (const [name, c] of [
        ['a', this.a],
        ['b', this.b],
      ] as const) {
        const text = JSON.stringify({ from: name, n: ++this.n, pad: 'x'.repeat(this.n % 50) });
        c.send(text);
        this.sent.push(text);
      }
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

describe(`database outage on ${backend}: no message lost or duplicated`, serverDatabasesOnly, () => {
  const dir = tempDir();
  const logLines: string[] = [];
  let proxy: TcpProxy;
  let directUrl = '';
  let srv: TestServer;
  let a: TestClient;
  let b: TestClient;
  let roomId = '';
  let traffic: Traffic;
  const during: Record<string, unknown> = {};

  before(async () => {
    const db = await proxiedDatabase(dir, backend);
    proxy = db.proxy;
    directUrl = db.directUrl;
    srv = await startServer({ databaseUrl: db.url, writerQueueMax: 50, dbTimeoutMs: 1000 }, dir, {
      logLines,
    });
    const joined = await joinNew(srv.url, 'out-a', 'alpha');
    a = joined.client;
    roomId = joined.roomId;
    b = await joinExisting(srv.url, 'out-b', 'beta', roomId);
    // A room that exists but has no member now: known to the cache, not in memory.
    const other = await joinNew(srv.url, 'out-c', 'gamma');
    await other.client.close();

    traffic = new Traffic(a, b);
    traffic.start(10);
    await sleep(500);

    // The outage.
    proxy.cut();
    const sentAtCut = traffic.sent.length;
    const receivedAtCut = traffic.received;
    await sleep(OUTAGE_MS / 2);
    during.readyz = await fetch(`http://127.0.0.1:${srv.port}/readyz`).then(async (r) => ({
      status: r.status,
      body: await r.json(),
    }));
    const mark = a.received.length;
    a.send({ type: 'query_room' });
    during.roomInfo = await waitFor('room_info', () => {
      const text = a.received.slice(mark).find((t) => t.includes('"type":"room_info"'));
      return text && (JSON.parse(text) as Record<string, unknown>);
    });
    const newcomer = await TestClient.join(srv.url, { device_id: 'out-new', identity: 'new' });
    during.newcomer = { reply: newcomer.reply, closed: await newcomer.client.closed };
    const unknownRoom = await TestClient.join(srv.url, {
      device_id: 'out-x',
      identity: 'x',
      room_id: 'ZZZZ9999',
    });
    during.unknownRoom = { reply: unknownRoom.reply, closed: await unknownRoom.client.closed };
    await sleep(OUTAGE_MS / 2);
    // Still cut: pause the senders and let every frame in flight arrive. (Counting both sides
    // at one instant raced the frames in flight.)
    traffic.stop();
    during.sentDuring = traffic.sent.length - sentAtCut;
    await waitFor('relay during the outage', () => traffic.received >= traffic.sent.length, 500).catch(
      () => {},
    );
    during.receivedDuring = traffic.received - receivedAtCut;
    during.spooled = srv.server.status().spooledRecords;
    traffic.start(10);

    // The database returns; traffic goes on a little, then stops.
    proxy.restore();
    await sleep(500);
    traffic.stop();
    // Every message has reached the other side (each sent frame is received once).
    await waitFor('all relayed', () => traffic.received >= traffic.sent.length, 2000, 5);
  });

  after(async () => {
    traffic?.stop();
    await a?.close();
    await b?.close();
    await srv?.stop();
    await proxy?.close();
    removeDir(dir);
  });

  it('relay and query_room keep working while the database is away', () => {
    assert.ok((during.sentDuring as number) > 50, `traffic during the outage: ${String(during.sentDuring)}`);
    assert.ok(
      (during.receivedDuring as number) >= (during.sentDuring as number),
      `relayed during the outage: ${String(during.receivedDuring)} of ${String(during.sentDuring)}`,
    );
    const info = during.roomInfo as Record<string, unknown>;
    assert.equal(info.type, 'room_info');
    assert.equal(info.total_clients, 2);
  });

  it('a hello that needs the database gets error unavailable and close 4503', () => {
    for (const key of ['newcomer', 'unknownRoom']) {
      const { reply, closed } = during[key] as { reply: Record<string, unknown>; closed: { code: number } };
      assert.equal(reply.type, 'error', `${key}: ${JSON.stringify(reply)}`);
      assert.equal(reply.code, 'unavailable');
      assert.equal(closed.code, 4503);
    }
  });

  it('/readyz says the database is down, with the waiting records', () => {
    const r = during.readyz as { status: number; body: { database: string; records: { pending: number } } };
    assert.equal(r.status, 503);
    assert.equal(r.body.database, 'down');
    assert.ok(r.body.records.pending > 0);
  });

  it('records past the memory bound went to the spool', () => {
    assert.ok((during.spooled as number) > 0, `spooled: ${String(during.spooled)}`);
  });

  it('afterwards every message sent is in the record exactly once, in order, and the spool is empty', async () => {
    await srv.server.flushRecords();
    const rows = await readDatabase<{ message_content: string; seq: number }>(
      directUrl,
      'select message_content, seq from messages where room_id = ? order by seq',
      roomId,
    );
    const sent = new Set(traffic.sent);
    const recorded = rows.map((r) => r.message_content);
    const distinct = new Set(recorded);
    const figures = {
      sent: traffic.sent.length,
      recorded: rows.length,
      duplicates: rows.length - distinct.size,
    };
    console.log(`# outage on ${backend}: ${JSON.stringify(figures)}`);
    assert.equal(figures.duplicates, 0);
    assert.equal(rows.length, traffic.sent.length, 'every message once');
    for (const text of recorded) assert.ok(sent.has(text), 'only messages that were sent');
    assert.deepEqual(
      rows.map((r) => r.seq),
      rows.map((_, i) => i + 1),
      'seq 1..N without gaps',
    );
    // Each sender's messages are recorded in the order it sent them.
    for (const from of ['a', 'b']) {
      const ns = recorded
        .map((t) => JSON.parse(t) as { from: string; n: number })
        .filter((m) => m.from === from);
      assert.deepEqual(
        ns.map((m) => m.n),
        [...ns.map((m) => m.n)].sort((x, y) => x - y),
      );
    }
    const spool = srv.server.spoolPath;
    assert.ok(spool);
    assert.ok(!existsSync(spool) || statSync(spool).size === 0, 'spool emptied');
    assert.equal(srv.server.status().spooledRecords, 0);
  });

  it('the pool reconnected: a new device gets a new room, /readyz is up again', async () => {
    const fresh = await joinNew(srv.url, 'out-later', 'later');
    await fresh.client.close();
    const r = await fetch(`http://127.0.0.1:${srv.port}/readyz`);
    assert.equal(r.status, 200);
  });

  it('the outage is logged once, not per message', () => {
    const entries = logLines.map((l) => JSON.parse(l) as { msg: string });
    const failed = entries.filter((e) => /database write failed/.test(e.msg));
    const resumed = entries.filter((e) => /database writes resumed/.test(e.msg));
    assert.equal(failed.length, 1, 'one line for the outage');
    assert.equal(resumed.length, 1, 'one line for the recovery');
    assert.ok(entries.length < 60, `a handful of log lines, not one per message: ${entries.length}`);
  });
});

describe(
  `a stop during an outage spools; the next start writes the spool before accepting clients (${backend})`,
  serverDatabasesOnly,
  () => {
    const dir = tempDir();
    let proxy: TcpProxy;
    let url = '';
    let directUrl = '';
    const sent: string[] = [];
    let roomId = '';
    let spooled = 0;
    let second: TestServer | undefined;
    let countAtStart = -1;

    before(async () => {
      ({ proxy, url, directUrl } = await proxiedDatabase(dir, backend));
      const first = await startServer({ databaseUrl: url, writerQueueMax: 20, dbTimeoutMs: 1000 }, dir);
      const joined = await joinNew(first.url, 'sp-a', 'alpha');
      roomId = joined.roomId;
      const b = await joinExisting(first.url, 'sp-b', 'beta', roomId);
      proxy.cut();
      for (let i = 1; i <= 120; i++) {
        const text = `{"spool":${i}}`;
        joined.client.send(text);
        sent.push(text);
      }
      for (const text of sent) assert.equal(await b.nextText(), text);
      await first.stop();
      spooled = first.server.status().spooledRecords as number;
      proxy.restore();
      // start() resolves once it listens; it has written the spool before that. No client yet.
      second = await startServer({ databaseUrl: url, dbTimeoutMs: 1000 }, dir);
      countAtStart = (await readDatabase<{ n: number }>(directUrl, 'select count(*) as n from messages'))[0]!
        .n;
    });
    after(async () => {
      await second?.stop();
      await proxy?.close();
      removeDir(dir);
    });

    it('the stopped server spooled what it could not write', () => {
      assert.ok(spooled >= 120, `spooled ${spooled}`);
    });

    it('the next start wrote every spooled message exactly once before it listened, and emptied the spool', async () => {
      assert.equal(Number(countAtStart), sent.length);
      const rows = await readDatabase<{ message_content: string }>(
        directUrl,
        'select message_content from messages where room_id = ? order by seq',
        roomId,
      );
      assert.deepEqual(
        rows.map((r) => r.message_content),
        sent,
      );
      const disconnected = await readDatabase<{ n: number }>(
        directUrl,
        'select count(*) as n from connections where disconnected_at is not null',
      );
      assert.equal(Number(disconnected[0]!.n), 2, 'both connections recorded, with their close');
      const spool = second!.server.spoolPath!;
      assert.ok(!existsSync(spool), 'spool emptied');
    });
  },
);

describe(
  `a database that stops answering (packets dropped) is noticed within the timeout (${backend})`,
  serverDatabasesOnly,
  () => {
    const dir = tempDir();
    let proxy: TcpProxy;
    let srv: TestServer;
    before(async () => {
      const db = await proxiedDatabase(dir, backend);
      proxy = db.proxy;
      srv = await startServer({ databaseUrl: db.url, dbTimeoutMs: 500, dbPoolIdle: 0 }, dir);
    });
    after(async () => {
      await srv?.stop();
      await proxy?.close();
      removeDir(dir);
    });

    it('a hello that needs the database is answered unavailable / 4503, and /readyz 503, in seconds', async () => {
      proxy.cut('blackhole');
      const started = Date.now();
      const { client, reply } = await TestClient.join(srv.url, { device_id: 'bh-a', identity: 'a' });
      assert.equal(reply.code, 'unavailable');
      assert.equal((await client.closed).code, 4503);
      const ready = await fetch(`http://127.0.0.1:${srv.port}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { database: string }).database, 'down');
      assert.ok(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`);
      proxy.restore();
      const again = await joinNew(srv.url, 'bh-b', 'b');
      await again.client.close();
    });
  },
);
