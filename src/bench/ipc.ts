/**
 * Messages between the bench coordinator (run.ts) and its load-generator workers (worker.ts),
 * over the child_process IPC channel. Every command carries a `reqId`; the worker answers each
 * with exactly one reply carrying the same id.
 */
import type { HistogramData } from './histogram.js';

/** What every command that opens connections needs. */
export interface ConnectSpec {
  /** ws://127.0.0.1:PORT — the bench only ever targets loopback. */
  url: string;
  /**
   * A cluster's nodes (ws://127.0.0.1:PORT each), instead of `url`: the hold's connection i goes
   * to node i mod N, and member m of room r to node (r + m) mod N, so that a room's members are
   * on different nodes (as long as members ≤ N).
   */
  nodeUrls?: string[];
  /** Local source addresses (127.0.0.x) to spread the connections over. */
  localAddresses: string[];
  /** Prefix of the device_ids this worker invents; unique per worker and scenario. */
  devicePrefix: string;
  /** Most handshakes in flight at once in this worker. */
  concurrency: number;
}

/** hold: open `count` idle connections (each a new device → created_new) and keep them. */
export interface HoldCommand extends ConnectSpec {
  op: 'hold';
  reqId: number;
  count: number;
  /** Give up on the whole batch after this long. */
  timeoutMs: number;
}

/** rooms: open `rooms` rooms of `members` members (the first creates it, the others join). */
export interface RoomsCommand extends ConnectSpec {
  op: 'rooms';
  reqId: number;
  rooms: number;
  members: number;
  timeoutMs: number;
}

/**
 * traffic: in the rooms opened by `rooms`, the first `sendersPerRoom` members of each room send
 * timestamped messages at `rate` msgs/s in total (this worker's share), open loop. Warm-up, then
 * the measurement window, then the drain (no sending) until deliveries stop.
 */
export interface TrafficCommand {
  op: 'traffic';
  reqId: number;
  rate: number;
  sendersPerRoom: number;
  warmupMs: number;
  durationMs: number;
  /** Longest wait after the window for messages sent in it to arrive. */
  drainMs: number;
  /** Approximate size of each message in bytes. */
  payloadBytes: number;
}

/** join: repeat full handshakes (connect, hello, room reply, close) for a fixed time. */
export interface JoinCommand extends ConnectSpec {
  op: 'join';
  reqId: number;
  warmupMs: number;
  durationMs: number;
}

/** closeAll: close every socket this worker holds (close handshake, then terminate leftovers). */
export interface CloseAllCommand {
  op: 'closeAll';
  reqId: number;
  timeoutMs: number;
}

export type WorkerCommand = HoldCommand | RoomsCommand | TrafficCommand | JoinCommand | CloseAllCommand;

export interface HoldResult {
  opened: number;
  failed: number;
  /** Room reply statuses seen, e.g. { created_new: 9000 }. */
  statuses: Record<string, number>;
  /** Time from the command to the last room reply, in this worker (ms). */
  elapsedMs: number;
  handshake: HistogramData;
  errors: string[];
}

export interface RoomsResult {
  rooms: number;
  connections: number;
  failed: number;
  errors: string[];
}

export interface TrafficResult {
  /** Messages sent inside the window. */
  sent: number;
  /** Sends the generator could not make in time (it fell behind or the socket buffer was full). */
  skipped: number;
  /** Messages received inside the window (whenever they were sent). */
  receivedInWindow: number;
  /** Deliveries expected for the messages sent in the window (sent × (members − 1)). */
  expected: number;
  /** Deliveries of messages sent in the window, received by the end of the drain. */
  deliveredOfWindow: number;
  /** Actual window length in this worker (ms). */
  windowMs: number;
  /** Latency of the messages sent in the window (send timestamp → receipt), ms. */
  latency: HistogramData;
}

export interface JoinResult {
  completed: number;
  failed: number;
  windowMs: number;
  /** Connect start → room reply, ms. */
  handshake: HistogramData;
  errors: string[];
}

export interface CloseAllResult {
  closed: number;
  /** Sockets that did not finish the close handshake in time and were cut. */
  terminated: number;
  /** Sockets the server closed while the bench still held them (since the last closeAll). */
  unexpectedCloses: number;
}

export type WorkerReply =
  { reqId: number; ok: true; result: unknown } | { reqId: number; ok: false; error: string };

/** Sent once by a worker when it is ready for commands. */
export interface WorkerReady {
  ready: true;
  pid: number;
}
