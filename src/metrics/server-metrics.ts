/**
 * The Prometheus metrics of one server (GET /metrics; names and meanings: docs/operations.md).
 *
 * Each server owns its registry, not prom-client's global one: several servers may run in one
 * process (the tests do), and each reports only its own. State (connections, rooms, members,
 * records waiting, the database) is read from the parts that know it when Prometheus scrapes.
 * The hot path's counts are plain numbers that the sessions, rooms and transport add to
 * (TrafficSink); they are copied into prom-client's counters at the scrape, since prom-client's
 * inc() and observe() make objects on every call.
 *
 * The delivery time is measured on one frame in DELIVERY_SAMPLE only: each clock read makes a
 * heap number (performance.now() and Date.now() alike), and a timed message needs two.
 */
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type Metric,
  type MetricObjectWithValues,
  type MetricValueWithName,
} from 'prom-client';
import type { TrafficSink } from '../rooms/traffic.js';
import { countMessages, type EncodedRecords } from '../store/record-queue.js';

/** What the metrics read at each scrape. */
export interface ServerState {
  /** Open WebSocket connections (in a room or not yet). */
  connections(): number;
  rooms(): number;
  /** Connections in rooms at protocol Level 1 and Level 2. */
  membersByLevel(): readonly [number, number];
  /** Records not yet in the database, and how many of them are in the spool file. */
  recordsPending(): number;
  recordsSpooled(): number;
  /** Whether the record writer's last database write succeeded. */
  databaseUp(): boolean;
  /** Cluster mode: whether this node reaches Redis; undefined on a single node (no such metric). */
  redisUp(): boolean | undefined;
  /** Rows the retention deleted since start, by table (rooms: forgotten); none when it is off. */
  retentionDeleted(): object | undefined;
}

/** One frame in this many is timed from its read to its delivery (a message's last write). */
const DELIVERY_SAMPLE = 16;

/** From well under a millisecond (a relay on an idle server) to the seconds of a stalled loop. */
const DELIVERY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** A hello answered from the cache takes a millisecond; one that waits for the database, more. */
const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** A batch commit: a few milliseconds, up to the write timeout when the database stalls. */
const BATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30];

export class ServerMetrics implements TrafficSink {
  readonly registry = new Registry();
  private messagesIn = 0;
  private messagesOut = 0;
  private messagesRecorded = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private framesRead = 0;
  /** performance.now() at the read of the frame being handled, if it is timed; else -1. */
  private timedFrom = -1;
  private readonly delivery = new FixedHistogram(
    'room_manager_delivery_seconds',
    "Time from the read of a message's frame to its write to the last recipient's socket (one message in 16)",
    DELIVERY_BUCKETS,
  );
  private readonly handshakes: Counter<'outcome'>;
  private readonly handshakeSeconds: Histogram;
  private readonly errors: Counter<'code'>;
  private readonly closes: Counter<'code'>;
  private readonly batchSeconds: Histogram;

  constructor(state: ServerState) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    read('websocket_active_connections', 'Current active WebSocket connections', () => state.connections());
    read('room_manager_rooms_active', 'Rooms with members on this server', () => state.rooms());
    new Gauge({
      name: 'room_manager_members',
      help: 'Connections in rooms, by protocol level',
      labelNames: ['protocol'],
      registers,
      collect() {
        const [level1, level2] = state.membersByLevel();
        this.set({ protocol: 'level1' }, level1);
        this.set({ protocol: 'level2' }, level2);
      },
    });
    read('room_manager_records_pending', 'Records not yet in the database (in memory and in the spool)', () =>
      state.recordsPending(),
    );
    read('room_manager_records_spooled', 'Records waiting in the spool file for the database', () =>
      state.recordsSpooled(),
    );
    read(
      'room_manager_database_up',
      "1 while the record writer's database writes succeed, 0 while they fail",
      () => (state.databaseUp() ? 1 : 0),
    );
    if (state.redisUp() !== undefined) {
      read('room_manager_redis_up', '1 while this cluster node reaches Redis, 0 while it is cut off', () =>
        state.redisUp() ? 1 : 0,
      );
    }
    copied('room_manager_messages_received_total', 'Messages accepted into rooms', () => this.messagesIn);
    copied(
      'room_manager_messages_delivered_total',
      'Messages written to recipients (one per recipient)',
      () => this.messagesOut,
    );
    copied(
      'room_manager_messages_recorded_total',
      'Messages committed to the database',
      () => this.messagesRecorded,
    );
    copied(
      'room_manager_bytes_received_total',
      'Payload bytes of the WebSocket frames read from clients',
      () => this.bytesIn,
    );
    copied(
      'room_manager_bytes_sent_total',
      'Payload bytes of the WebSocket frames written to clients',
      () => this.bytesOut,
    );
    new Counter({
      name: 'room_manager_retention_deleted_total',
      help: 'Rows deleted by the --retain-* settings since start, by table (rooms: rooms forgotten)',
      labelNames: ['table'],
      registers,
      collect() {
        this.reset();
        for (const [table, n] of Object.entries(state.retentionDeleted() ?? {}))
          this.inc({ table }, n as number);
      },
    });
    this.registry.registerMetric(this.delivery as unknown as Metric);
    this.handshakes = new Counter({
      name: 'room_manager_handshakes_total',
      help: 'Connections whose first room assignment ended, by the room status or the refusal code',
      labelNames: ['outcome'],
      registers,
    });
    this.handshakeSeconds = new Histogram({
      name: 'room_manager_handshake_seconds',
      help: 'Time from the WebSocket upgrade to the room reply or the refusal',
      buckets: HANDSHAKE_BUCKETS,
      registers,
    });
    this.errors = new Counter({
      name: 'room_manager_errors_total',
      help: 'Error frames sent to clients, by error code',
      labelNames: ['code'],
      registers,
    });
    this.closes = new Counter({
      name: 'room_manager_closes_total',
      help: 'Connections ended, by close code',
      labelNames: ['code'],
      registers,
    });
    this.batchSeconds = new Histogram({
      name: 'room_manager_writer_batch_seconds',
      help: 'Time to write one batch of records to the database (committed batches)',
      buckets: BATCH_BUCKETS,
      registers,
    });

    /** A gauge read from the server's state at each scrape. */
    function read(name: string, help: string, value: () => number): void {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    }

    /** A counter whose value is kept in a plain number and copied at each scrape. */
    function copied(name: string, help: string, read: () => number): void {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    }
  }

  /** The text a scrape gets, and its content type. */
  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  frameRead(bytes: number): void {
    this.bytesIn += bytes;
    if (++this.framesRead % DELIVERY_SAMPLE === 0) this.timedFrom = performance.now();
  }

  frameDone(): void {
    this.timedFrom = -1;
  }

  bytesSent(bytes: number): void {
    this.bytesOut += bytes;
  }

  messageReceived(): void {
    this.messagesIn++;
  }

  messageDelivered(recipients: number): void {
    this.messagesOut += recipients;
    // A message that waited for its room's seqs is delivered outside its frame: not timed.
    if (this.timedFrom < 0 || recipients === 0) return;
    this.delivery.observe((performance.now() - this.timedFrom) / 1000);
    this.timedFrom = -1;
  }

  handshakeEnded(outcome: string, seconds: number): void {
    this.handshakes.inc({ outcome });
    this.handshakeSeconds.observe(seconds);
  }

  errorSent(code: string): void {
    this.errors.inc({ code });
  }

  closed(code: number): void {
    this.closes.inc({ code: String(code) });
  }

  /** RecordWriter.onBatchWritten: a batch committed. */
  readonly batchWritten = (records: EncodedRecords, seconds: number): void => {
    this.messagesRecorded += countMessages(records);
    this.batchSeconds.observe(seconds);
  };
}

/**
 * A histogram without labels whose observe() only adds to numbers (prom-client's makes objects
 * on every call): bucket counts in a typed array, turned into prom-client's form at the scrape.
 */
class FixedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Per bucket (not cumulative); the last is +Inf. */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  /** What prom-client's registry reads of a metric. */
  get(): Omit<MetricObjectWithValues<MetricValueWithName<string>>, 'collect'> {
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i]!;
      const le = i < this.bounds.length ? this.bounds[i]! : '+Inf';
      values.push({ metricName: `${this.name}_bucket`, labels: { le }, value: cumulative });
    }
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: 'histogram' as never, values, aggregator: 'sum' };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}
