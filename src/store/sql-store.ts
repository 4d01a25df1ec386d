/**
 * The Store over Kysely: the same queries for every backend, with the few dialect differences
 * (upsert syntax, timestamp values) handled here. A backend (SqliteStore, MysqlStore,
 * PostgresStore) adds its connection pool and the toDb/fromDb timestamp hooks.
 *
 * Every write is idempotent, so that a batch whose commit outcome is unknown (the connection
 * broke during COMMIT), or a spool replayed after a crash, can be written again: messages are
 * keyed by (room_id, seq), connections and room_queries by their server-assigned ids, devices are
 * upserted and a connection's close is an update.
 */
import { CompiledQuery, Kysely, Migrator, sql, type InsertQueryBuilder, type InsertResult } from 'kysely';
import type { Database } from './schema.js';
import {
  roomQueryId,
  type DeviceRow,
  type RecordConflict,
  type RoomSeq,
  type Dialect,
  type MessageQuery,
  type MessageRow,
  type RecordEntry,
  type RoomRow,
  type Store,
  type Timestamp,
} from './store.js';
import { migrations } from './migrations/index.js';
import type { PoolOptions } from './pool-options.js';
import { WriterThread } from './writer-thread.js';
import { databaseOpenError } from './open-errors.js';
import { decodeEntries, encodeEntries, type EncodedRecords } from './record-queue.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaseAttempt, LeaseClaimant, LeaseHolder } from './store.js';
import type { WriterLeaseTable } from './schema.js';
import type { RetainedTable } from './store.js';
import { numbered, retentionSql, type RetentionStatement } from './retention-sql.js';

/** Rows per multi-row INSERT: keeps every backend under its bound-parameter limit. */
const ROWS_PER_INSERT = 500;
/**
 * Characters of message content per INSERT: keeps one statement well under MySQL's
 * max_allowed_packet (16 MiB by default; mysql2 inlines escaped values, which can double them).
 */
const CONTENT_CHARS_PER_INSERT = 1_000_000;

/**
 * Where a database server's record batches are written: on a writer thread of the store's own
 * (the server's default, see sql-writer-thread.ts), or inline (that thread's own store, tools).
 */
export type BatchWrites = 'thread' | 'inline';

/** What a database server's writer thread opens: the same database, with a pool of its own. */
export interface ThreadTarget {
  url: string;
  pool: PoolOptions;
}

/** Connections of a writer thread's pool: its batch, and a retry of one that hangs. */
const WRITER_POOL: Pick<PoolOptions, 'max' | 'idle'> = { max: 2, idle: 1 };

export class SqlStore implements Store {
  private writerThread: WriterThread | undefined;
  /** Server databases may be shared by several servers (see Store.claimsRoomsByRead). */
  readonly claimsRoomsByRead: boolean = false;

  constructor(
    readonly dialect: Dialect,
    protected readonly db: Kysely<Database>,
    /** A server database's URL and pool, when its batches are written on a thread once migrated. */
    private readonly threadTarget?: ThreadTarget,
  ) {}

  async migrate(): Promise<string[]> {
    const list = migrations(this.dialect);
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => list },
      migrationTableName: 'schema_migrations',
      migrationLockTableName: 'schema_migrations_lock',
    });
    const { error, results } = await migrator.migrateToLatest();
    // The first query of a server's life: a wrong URL fails here, said in plain words.
    if (error) throw databaseOpenError(error) ?? (error instanceof Error ? error : new Error(String(error)));
    if (this.threadTarget && !this.writerThread) {
      const { url, pool } = this.threadTarget;
      this.writerThread = new WriterThread('sql-writer-thread', { url, pool: { ...pool, ...WRITER_POOL } });
      // Started and connected now: the first batch's write timeout must not pay for it.
      await this.writerThread.request({ op: 'ready' });
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }

  async getRoom(roomId: string): Promise<RoomRow | undefined> {
    const row = await this.db
      .selectFrom('rooms')
      .selectAll()
      .where('room_id', '=', roomId)
      .executeTakeFirst();
    return row && { roomId: row.room_id, createdAt: this.fromDb(row.created_at) };
  }

  async insertRoom(roomId: string, createdAt: Timestamp, seqReserved = 0): Promise<boolean> {
    const result = await this.insertRooms([
      { room_id: roomId, created_at: this.toDb(createdAt), seq_reserved: seqReserved },
    ]).executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  /** An INSERT of rooms that leaves a code already there as it was. */
  private insertRooms(rows: { room_id: string; created_at: string; seq_reserved?: number }[]) {
    const insert = this.db.insertInto('rooms').values(rows);
    return this.dialect === 'mysql'
      ? insert.ignore() // rooms has no foreign key IGNORE could hide
      : insert.onConflict((oc) => oc.column('room_id').doNothing());
  }

  async getDevice(deviceId: string): Promise<DeviceRow | undefined> {
    const row = await this.db
      .selectFrom('devices')
      .selectAll()
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return (
      row && {
        deviceId: row.device_id,
        firstConnectedAt: this.fromDb(row.first_connected_at),
        lastConnectedAt: this.fromDb(row.last_connected_at),
        lastRoomId: row.last_room_id,
        lastIdentity: row.last_identity,
      }
    );
  }

  async roomSeq(roomId: string): Promise<RoomSeq> {
    // One round trip: the room's reservation, and the highest seq of its messages.
    const row = await this.db
      .selectFrom('rooms')
      .select((eb) => [
        'seq_reserved',
        eb
          .selectFrom('messages')
          .select((m) => m.fn.max('seq').as('seq'))
          .where('room_id', '=', roomId)
          .as('recorded'),
      ])
      .where('room_id', '=', roomId)
      .executeTakeFirst();
    return { recorded: Number(row?.recorded ?? 0), reserved: Number(row?.seq_reserved ?? 0) };
  }

  async readMessages(q: MessageQuery): Promise<MessageRow[]> {
    const rows = await this.db
      .selectFrom('messages as m')
      .leftJoin('devices as d', 'd.device_id', 'm.from_device_id')
      .select([
        'm.seq',
        'm.from_device_id',
        'm.from_identity',
        'd.last_identity',
        'm.to_device_id',
        'm.message_content',
        'm.sent_at',
      ])
      .where('m.room_id', '=', q.roomId)
      .where('m.seq', '>', q.afterSeq)
      .where('m.seq', '<', q.beforeSeq)
      .where((eb) => eb.or([eb('m.to_device_id', 'is', null), eb('m.to_device_id', '=', q.deviceId)]))
      .orderBy('m.seq', q.newest ? 'desc' : 'asc')
      .limit(q.limit)
      .execute();
    if (q.newest) rows.reverse();
    return rows.map((r) => ({
      seq: Number(r.seq),
      fromDeviceId: r.from_device_id,
      fromIdentity: r.from_identity ?? r.last_identity ?? '',
      toDeviceId: r.to_device_id,
      content: r.message_content,
      sentAt: this.fromDb(r.sent_at),
    }));
  }

  async maxConnectionId(): Promise<number> {
    const row = await this.db
      .selectFrom('connections')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  async maxRoomQueryId(): Promise<number> {
    const row = await this.db
      .selectFrom('room_queries')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  async closeOpenConnections(at: Timestamp): Promise<number> {
    const result = await this.db
      .updateTable('connections')
      .set({ disconnected_at: this.toDb(at) })
      .where('disconnected_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async writeEncoded(records: EncodedRecords): Promise<RecordConflict[]> {
    if (records.count === 0) return [];
    if (this.writerThread) return this.writerThread.write(records);
    return this.write(decodeEntries(records));
  }

  async write(entries: readonly RecordEntry[]): Promise<RecordConflict[]> {
    if (entries.length === 0) return [];
    if (this.writerThread) return this.writerThread.write(encodeEntries(entries));
    entries = byKind(entries);
    const conflicts: RecordConflict[] = [];
    await this.inTransaction(async (tx) => {
      const exec = async (statements: BatchStatement[]) => {
        for (const s of statements) {
          const changed = await tx.run(s);
          // Fewer rows than records: some keys were there. The same contents are a rewrite;
          // anything else is reported, never passed over.
          if (s.check && changed < s.check.rows) {
            conflicts.push(...s.check.conflicts(await tx.rows(s.check.find())));
          }
        }
      };
      // Consecutive entries of one kind become one multi-row statement. Statements run one after
      // another on the transaction's connection, and the next one is built while the database
      // runs the current one: building a 500-row INSERT is about a third of a row's cost, and
      // done in turn it left the database idle for that long.
      let running: Promise<void> | undefined;
      let i = 0;
      while (i < entries.length) {
        const kind = entries[i]!.kind;
        let j = i + 1;
        let chars = contentChars(entries[i]!);
        while (j < entries.length && entries[j]!.kind === kind && j - i < ROWS_PER_INSERT) {
          chars += contentChars(entries[j]!);
          if (chars > CONTENT_CHARS_PER_INSERT) break;
          j++;
        }
        const statements = this.compileRun(entries.slice(i, j));
        if (running) await running;
        running = exec(statements);
        // Awaited above or below; until then a failure must not count as unhandled.
        running.catch(() => undefined);
        i = j;
      }
      await running;
    });
    return conflicts;
  }

  /**
   * Runs `body` in one transaction, whose statements run one after another on its connection.
   * MySQL overrides it (its prepared statements need the connection itself).
   */
  protected async inTransaction(body: (tx: BatchTransaction) => Promise<void>): Promise<void> {
    await this.db.transaction().execute((trx) =>
      body({
        run: async (s) => {
          if (!(s instanceof CompiledStatement))
            throw new Error(`${this.dialect} cannot run a ${s.kind} statement`);
          const result = await trx.executeQuery(s.query);
          return Number(result.numAffectedRows ?? 0n);
        },
        rows: async (q) => (await trx.executeQuery(q)).rows as Record<string, unknown>[],
      }),
    );
  }

  /** The statements that write a run of entries of one kind. */
  private compileRun(run: RecordEntry[]): BatchStatement[] {
    const db = this.db;
    const kind = run[0]!.kind;
    switch (kind) {
      case 'room':
        return [
          compiled(
            this.insertRooms(
              (run as Extract<RecordEntry, { kind: 'room' }>[]).map((e) => ({
                room_id: e.roomId,
                created_at: this.toDb(e.at),
                seq_reserved: e.seqReserved,
              })),
            ).compile(),
          ),
        ];
      case 'room_seq': {
        // Only ever raised: servers sharing the database reserve blocks of one room, and their
        // writes commit in any order.
        const raise = this.dialect === 'sqlite' ? 'max' : 'greatest';
        return (run as Extract<RecordEntry, { kind: 'room_seq' }>[]).map((e) =>
          compiled(
            db
              .updateTable('rooms')
              .set({ seq_reserved: sql<number>`${sql.raw(raise)}(seq_reserved, ${e.reserved})` })
              .where('room_id', '=', e.roomId)
              .compile(),
          ),
        );
      }
      case 'room_seq_given_back':
        return (run as Extract<RecordEntry, { kind: 'room_seq_given_back' }>[]).map((e) =>
          compiled(
            db
              .updateTable('rooms')
              .set({ seq_reserved: e.reserved })
              .where('room_id', '=', e.roomId)
              .compile(),
          ),
        );
      case 'device':
        return [compiled(this.upsertDevices(run as Extract<RecordEntry, { kind: 'device' }>[]))];
      case 'connection_open': {
        const opens = run as Extract<RecordEntry, { kind: 'connection_open' }>[];
        return [
          compiled(
            db
              .insertInto('connections')
              .values(
                opens.map((e) => ({
                  id: e.id,
                  device_id: e.deviceId,
                  room_id: e.roomId,
                  identity: e.identity,
                  connected_at: this.toDb(e.at),
                  disconnected_at: null,
                  client_ip: e.clientIp,
                })),
              )
              .$call(this.keepExistingId)
              .compile(),
            this.idCheck('connection_open', 'connections', 'connected_at', opens),
          ),
        ];
      }
      case 'connection_close':
        return (run as Extract<RecordEntry, { kind: 'connection_close' }>[]).map((e) =>
          compiled(
            db
              .updateTable('connections')
              .set({ disconnected_at: this.toDb(e.at) })
              .where('id', '=', e.id)
              .compile(),
          ),
        );
      case 'message':
        return this.messageInserts(run as Extract<RecordEntry, { kind: 'message' }>[]);
      case 'room_query': {
        const queries = run as Extract<RecordEntry, { kind: 'room_query' }>[];
        return [
          compiled(
            db
              .insertInto('room_queries')
              .values(
                queries.map((e) => ({
                  id: roomQueryId(e),
                  device_id: e.deviceId,
                  room_id: e.roomId,
                  queried_at: this.toDb(e.at),
                })),
              )
              .$call(this.keepExistingId)
              .compile(),
            this.idCheck(
              'room_query',
              'room_queries',
              'queried_at',
              queries.map((e) => ({ ...e, id: roomQueryId(e) })),
            ),
          ),
        ];
      }
    }
  }

  /**
   * For an INSERT of rows keyed by server-assigned ids: the rows already there with those ids,
   * and which of them hold another device, room or time than the record.
   */
  private idCheck(
    kind: 'connection_open' | 'room_query',
    table: 'connections' | 'room_queries',
    timeColumn: 'connected_at' | 'queried_at',
    run: { id: number; deviceId: string; roomId: string; at: Timestamp }[],
  ): ConflictCheck {
    return {
      rows: run.length,
      find: () =>
        sql`select id, device_id, room_id, ${sql.ref(timeColumn)} as at from ${sql.table(table)} where id in (${sql.join(run.map((e) => e.id))})`.compile(
          this.db,
        ),
      conflicts: (found) => {
        const byId = new Map(found.map((r) => [Number(r.id), r]));
        return run
          .filter((e) => {
            const r = byId.get(e.id);
            return r && (r.device_id !== e.deviceId || r.room_id !== e.roomId || this.fromDb(r.at) !== e.at);
          })
          .map((e) => ({ kind, key: String(e.id) }));
      },
    };
  }

  /** For an INSERT of messages: the rows already there at those (room, seq), and which differ. */
  protected messageCheck(run: Extract<RecordEntry, { kind: 'message' }>[]): ConflictCheck {
    return {
      rows: run.length,
      find: () =>
        this.db
          .selectFrom('messages')
          .select(['room_id', 'seq', 'from_device_id', 'to_device_id', 'message_content'])
          .where((eb) =>
            eb(
              eb.refTuple('room_id', 'seq'),
              'in',
              run.map((e) => eb.tuple(e.roomId, e.seq)),
            ),
          )
          .compile(),
      conflicts: (found) => {
        const byKey = new Map(found.map((r) => [`${String(r.room_id)}#${Number(r.seq)}`, r]));
        return run
          .filter((e) => {
            const r = byKey.get(`${e.roomId}#${e.seq}`);
            return (
              r &&
              (r.from_device_id !== e.fromDeviceId ||
                r.to_device_id !== e.toDeviceId ||
                r.message_content !== e.content)
            );
          })
          .map((e) => ({ kind: 'message' as const, key: `${e.roomId}#${e.seq}` }));
      },
    };
  }

  /** A row whose server-assigned id is there already stays as it is (a batch written twice). */
  private readonly keepExistingId = <TB extends 'connections' | 'room_queries'>(
    q: InsertQueryBuilder<Database, TB, InsertResult>,
  ): InsertQueryBuilder<Database, TB, InsertResult> =>
    this.dialect === 'mysql'
      ? q.modifyEnd(sql`on duplicate key update ${sql.ref('id')} = ${sql.ref('id')}`)
      : q.onConflict((oc) => oc.column('id').doNothing());

  /**
   * The INSERTs of a run of messages, the hot kind of the record (one row per message); MySQL
   * overrides it with prepared statements. Written twice, a (room_id, seq) inserts nothing.
   */
  protected messageInserts(run: Extract<RecordEntry, { kind: 'message' }>[]): BatchStatement[] {
    return [
      new CompiledStatement(
        this.db
          .insertInto('messages')
          .values(
            run.map((e) => ({
              from_device_id: e.fromDeviceId,
              from_identity: e.fromIdentity,
              to_device_id: e.toDeviceId,
              room_id: e.roomId,
              message_content: e.content,
              sent_at: this.toDb(e.sentAt),
              seq: e.seq,
            })),
          )
          .onConflict((oc) => oc.columns(['room_id', 'seq']).doNothing())
          .compile(),
        this.messageCheck(run),
      ),
    ];
  }

  private upsertDevices(run: Extract<RecordEntry, { kind: 'device' }>[]): CompiledQuery {
    // One row per device per statement (PostgreSQL refuses to update a row twice in one upsert);
    // the latest assignment wins, the first connection time is the earliest seen.
    const byDevice = new Map<string, { first: Timestamp; last: Extract<RecordEntry, { kind: 'device' }> }>();
    for (const e of run) {
      const seen = byDevice.get(e.deviceId);
      byDevice.set(e.deviceId, { first: seen?.first ?? e.at, last: e });
    }
    const rows = [...byDevice.values()].map(({ first, last }) => ({
      device_id: last.deviceId,
      first_connected_at: this.toDb(first),
      last_connected_at: this.toDb(last.at),
      last_room_id: last.roomId,
      last_identity: last.identity,
    }));
    const insert = this.db.insertInto('devices').values(rows);
    if (this.dialect === 'mysql') {
      return insert
        .onDuplicateKeyUpdate({
          last_connected_at: sql`values(last_connected_at)`,
          last_room_id: sql`values(last_room_id)`,
          last_identity: sql`values(last_identity)`,
        })
        .compile();
    }
    return insert
      .onConflict((oc) =>
        oc.column('device_id').doUpdateSet((eb) => ({
          last_connected_at: eb.ref('excluded.last_connected_at'),
          last_room_id: eb.ref('excluded.last_room_id'),
          last_identity: eb.ref('excluded.last_identity'),
        })),
      )
      .compile();
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.writerThread?.close();
    await this.db.destroy();
  }

  /** Timestamp → the value this backend stores. SQLite keeps the ISO text itself. */
  protected toDb(ts: Timestamp): string {
    return ts;
  }

  /** A stored timestamp → ISO text. */
  protected fromDb(value: unknown): Timestamp {
    return value instanceof Date ? value.toISOString() : String(value);
  }

  async tryAcquireLease(
    me: LeaseClaimant,
    nowMs: number,
    ttlMs: number,
    isHolderDead: (holder: LeaseHolder) => boolean,
  ): Promise<LeaseAttempt> {
    const ours = {
      node_id: me.nodeId,
      host: me.host,
      pid: me.pid,
      acquired_ms: nowMs,
      expires_ms: nowMs + ttlMs,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (trx): Promise<LeaseAttempt> => {
          // MySQL and PostgreSQL lock the row until commit. SQLite takes its write lock at the
          // first write: a server that wrote between our read and our write makes ours fail.
          const read = trx.selectFrom('writer_lease').selectAll().where('name', '=', LEASE_ROW);
          const row = await (this.dialect === 'sqlite' ? read : read.forUpdate()).executeTakeFirst();
          if (!row) {
            await trx
              .insertInto('writer_lease')
              .values({ name: LEASE_ROW, ...ours })
              .execute();
            return { acquired: true };
          }
          const holder = leaseHolder(row);
          const ourOwn = holder.nodeId === me.nodeId;
          const free = ourOwn || holder.expiresMs < nowMs || isHolderDead(holder);
          if (!free) return { acquired: false, holder };
          await trx.updateTable('writer_lease').set(ours).where('name', '=', LEASE_ROW).execute();
          return ourOwn ? { acquired: true } : { acquired: true, previous: holder };
        });
      } catch (err) {
        // Another server inserted or took the row meanwhile (or holds SQLite's write lock): the
        // next attempt reads what it wrote.
        if (attempt >= LEASE_ATTEMPTS || !lostLeaseRace(err)) throw err;
        await sleep(LEASE_RETRY_MS);
      }
    }
  }

  async renewLease(nodeId: string, nowMs: number, ttlMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('writer_lease')
      .set({ expires_ms: nowMs + ttlMs })
      .where('name', '=', LEASE_ROW)
      .where('node_id', '=', nodeId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async releaseLease(nodeId: string): Promise<void> {
    await this.db
      .deleteFrom('writer_lease')
      .where('name', '=', LEASE_ROW)
      .where('node_id', '=', nodeId)
      .execute();
  }

  async deleteOlderThan(table: RetainedTable, cutoff: Timestamp, limit: number): Promise<number> {
    return this.runRetention(this.retention.deleteOld[table], cutoff, '', limit);
  }

  async countOlderThan(table: RetainedTable, cutoff: Timestamp): Promise<number> {
    const [row] = await this.retentionRows(this.retention.countOld[table], cutoff, '', 0);
    return Number(row?.n ?? 0);
  }

  async idleRooms(cutoff: Timestamp, afterRoomId: string, limit: number): Promise<string[]> {
    const rows = await this.retentionRows(this.retention.idleRooms, cutoff, afterRoomId, limit);
    return rows.map((r) => String(r.room_id));
  }

  async deleteRoomMessages(roomId: string, limit: number): Promise<number> {
    return this.runRetention(this.retention.deleteRoomMessages, '', roomId, limit);
  }

  async forgetRoom(roomId: string, cutoff: Timestamp): Promise<boolean> {
    const r = this.retention;
    return this.db.transaction().execute(async (trx) => {
      const run = (s: RetentionStatement) => trx.executeQuery(this.retentionQuery(s, cutoff, roomId, 0));
      if ((await run(r.roomIdle)).rows.length === 0) return false;
      for (const s of r.forget) await run(s);
      return true;
    });
  }

  private retentionStatements: ReturnType<typeof retentionSql> | undefined;

  private get retention() {
    return (this.retentionStatements ??= retentionSql(this.dialect));
  }

  private retentionQuery(s: RetentionStatement, cutoff: Timestamp, roomId: string, limit: number) {
    const text = this.dialect === 'postgres' ? numbered(s.sql) : s.sql;
    return CompiledQuery.raw(text, s.params(cutoff && this.toDb(cutoff), roomId, limit));
  }

  private async retentionRows(s: RetentionStatement, cutoff: Timestamp, roomId: string, limit: number) {
    const result = await this.db.executeQuery(this.retentionQuery(s, cutoff, roomId, limit));
    return result.rows as Record<string, unknown>[];
  }

  private async runRetention(s: RetentionStatement, cutoff: Timestamp, roomId: string, limit: number) {
    const result = await this.db.executeQuery(this.retentionQuery(s, cutoff, roomId, limit));
    return Number(result.numAffectedRows ?? 0n);
  }

  async readLease(): Promise<LeaseHolder | undefined> {
    const row = await this.db
      .selectFrom('writer_lease')
      .selectAll()
      .where('name', '=', LEASE_ROW)
      .executeTakeFirst();
    return row && leaseHolder(row);
  }
}

/** The writer lease's one row. */
const LEASE_ROW = 'writer';
/** Attempts at taking the lease while other servers race for it or hold SQLite's write lock. */
const LEASE_ATTEMPTS = 50;
const LEASE_RETRY_MS = 20;

function leaseHolder(row: WriterLeaseTable): LeaseHolder {
  return {
    nodeId: row.node_id,
    host: row.host,
    pid: Number(row.pid),
    acquiredMs: Number(row.acquired_ms),
    expiresMs: Number(row.expires_ms),
  };
}

/** An error of losing a race for the lease row: a duplicate key, a deadlock, SQLite busy. */
function lostLeaseRace(err: unknown): boolean {
  const code = String((err as { code?: unknown } | undefined)?.code ?? '');
  return /^SQLITE_(BUSY|CONSTRAINT)/.test(code) || LEASE_RACE_CODES.has(code);
}

/** MySQL: duplicate key, deadlock; PostgreSQL: unique violation, serialization failure, deadlock. */
const LEASE_RACE_CODES = new Set(['ER_DUP_ENTRY', 'ER_LOCK_DEADLOCK', '23505', '40001', '40P01']);

/**
 * How an INSERT of `rows` records that may meet existing keys tells a rewrite from a conflict:
 * when it inserted fewer rows, `find` reads the rows at those keys and `conflicts` names the
 * records they differ from.
 */
export interface ConflictCheck {
  rows: number;
  /** Built only when needed: most statements insert every row. */
  find: () => CompiledQuery;
  conflicts(found: Record<string, unknown>[]): RecordConflict[];
}

/** A statement of a record batch, as Kysely compiled it. */
export class CompiledStatement {
  readonly kind = 'compiled';
  constructor(
    readonly query: CompiledQuery,
    readonly check?: ConflictCheck,
  ) {}
}

/** A statement for a server-side prepared statement: `sql` with `?` placeholders. */
export class PreparedStatement {
  readonly kind = 'prepared';
  constructor(
    readonly sql: string,
    readonly params: (string | number | null)[],
    readonly check?: ConflictCheck,
  ) {}
}

export type BatchStatement = CompiledStatement | PreparedStatement;

/** A batch's transaction, as SqlStore.write uses it. */
export interface BatchTransaction {
  /** Runs a statement; resolves with how many rows it inserted or changed. */
  run(statement: BatchStatement): Promise<number>;
  /** Runs a query; resolves with its rows. */
  rows(query: CompiledQuery): Promise<Record<string, unknown>[]>;
}

function compiled(query: CompiledQuery, check?: ConflictCheck): CompiledStatement {
  return new CompiledStatement(query, check);
}

/**
 * The kinds in the order a batch writes them: a room before the rows that name it, a device row
 * before its connections and room queries, a connection's open before its close; messages have
 * no foreign keys (migration 0003). A given-back reservation is one group with room_seq: a room
 * reserving again after giving back must not see its reservation lowered after it was raised.
 */
const KIND_ORDER: readonly KindGroup[] = [
  'room',
  'room_seq',
  'device',
  'connection_open',
  'connection_close',
  'message',
  'room_query',
];

/**
 * The batch grouped by kind (each kind in its own order), so that joins interleaving device and
 * connection records make two statements, not two per join. One transaction writes the whole
 * batch, so no reader sees the order inside it; a device's upserts merge as they would in turn.
 */
function byKind(entries: readonly RecordEntry[]): readonly RecordEntry[] {
  const first = entries[0]!.kind;
  if (entries.every((e) => e.kind === first)) return entries; // the relay's batches: messages only
  const groups = new Map<KindGroup, RecordEntry[]>(KIND_ORDER.map((k) => [k, []]));
  for (const e of entries) groups.get(kindGroup(e.kind))!.push(e);
  return KIND_ORDER.flatMap((k) => groups.get(k)!);
}

/** The kinds byKind keeps in their own order, as one group. */
type KindGroup = Exclude<RecordEntry['kind'], 'room_seq_given_back'>;

function kindGroup(kind: RecordEntry['kind']): KindGroup {
  return kind === 'room_seq_given_back' ? 'room_seq' : kind;
}

function contentChars(e: RecordEntry): number {
  return e.kind === 'message' ? e.content.length : 0;
}
