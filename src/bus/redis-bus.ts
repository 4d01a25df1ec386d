/**
 * The cluster bus: room traffic between nodes through Redis, numbered there. One Lua script
 * numbers a batch of a room's messages (INCR of the room's seq), PUBLISHes each on the room's
 * channel and XADDs it to the room's capped stream, atomically: Redis runs a script alone, so
 * every node receives a room's messages in seq order and no seq is given twice, whichever node
 * published. Seqs come only from durable reservations (the room's `limit` key, raised after the
 * record has the reservation), as in SeqReservations: a room that runs out holds its messages,
 * in order, until the next block is durable.
 *
 * A node has at most one script call in flight per room: the messages that come meanwhile go in
 * the next call, together. So a sender's messages are numbered in the order it sent them even
 * when a call comes back starved (a later call could otherwise be numbered before the held one).
 *
 * On the channel a message is `<seq>\n<header JSON>\n<payload>`: the payload's bytes follow as
 * they are (not escaped into JSON), so every node hands on the sender's bytes unchanged.
 */
import type { Logger } from 'pino';
import type {
  Bus,
  NodeCommand,
  NodeCommandHandler,
  PublishOutcome,
  RoomMessage,
  RoomMessageHandler,
  SeqStart,
} from './bus.js';
import { MAX_HELD, MAX_SEQ_BLOCK, SEQ_BLOCK } from './seq-reservations.js';
import type { LuaScript, RedisLink, ScriptArg } from '../cluster/redis-link.js';

export interface RedisBusOptions {
  link: RedisLink;
  nodeId: string;
  /** Messages each room's stream keeps for recent() (MAXLEN ~); 0: no stream. */
  historyWindow: number;
  /** Resolves once the record's reservation of the room's seqs reaches `through`, durably. */
  reserve(roomId: string, through: number): Promise<void>;
  log: Logger;
}

/** Most messages in one script call, and (roughly) most payload bytes. */
const MAX_BATCH = 256;
const MAX_BATCH_BYTES = 1 << 20;
const NEWLINE = 0x0a;
/**
 * A room's stream goes this long after its last message: resume and history of an idle room
 * read the record, and Redis does not keep a window for every room ever used.
 */
const STREAM_IDLE_TTL_MS = 24 * 3600 * 1000;

/**
 * Numbers up to ARGV[3] messages while the durable limit allows, publishing and streaming each.
 * KEYS: seq, limit, stream. ARGV: channel, stream MAXLEN (0: none), count, then header and
 * payload of each message. Returns {numbered, seq, limit}; {-1} when the room has no seq key.
 * Each call that adds to the stream renews its idle expiry.
 */
const PUBLISH: LuaScript = {
  name: 'rmBusPublish',
  keys: 3,
  lua: `
local current = redis.call('GET', KEYS[1])
if not current then return {-1, 0, 0} end
local seq = tonumber(current)
local limit = tonumber(redis.call('GET', KEYS[2]) or '0')
local maxlen = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local n = 0
while n < count and seq < limit do
  n = n + 1
  seq = redis.call('INCR', KEYS[1])
  local id = string.format('%d', seq)
  local data = id .. '\\n' .. ARGV[2 + 2 * n] .. '\\n' .. ARGV[3 + 2 * n]
  if maxlen > 0 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, id .. '-0', 'm', data)
  end
  redis.call('PUBLISH', ARGV[1], data)
end
if maxlen > 0 and n > 0 then redis.call('PEXPIRE', KEYS[3], ${STREAM_IDLE_TTL_MS}) end
return {n, seq, limit}
`,
};

/**
 * A room's seq where there is none (first use, or Redis lost its data): the record's last seq,
 * or higher if the stream or this node has seen higher; the limit raised to the record's
 * reservation. Does nothing when another node did it first. KEYS: seq, limit, stream. ARGV:
 * last, reserved. Returns the seq.
 */
const INITIALISE: LuaScript = {
  name: 'rmBusInitialise',
  keys: 3,
  lua: `
local current = redis.call('GET', KEYS[1])
if current then return tonumber(current) end
local seq = tonumber(ARGV[1])
local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
if top then
  local topSeq = tonumber(string.match(top[1], '^(%d+)'))
  if topSeq > seq then seq = topSeq end
end
redis.call('SET', KEYS[1], string.format('%d', seq))
local limit = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) > limit then redis.call('SET', KEYS[2], ARGV[2]) end
return seq
`,
};

/** Raises a room's limit to ARGV[1] (never lowers it). KEYS: limit. Returns the limit. */
const RAISE_LIMIT: LuaScript = {
  name: 'rmBusRaiseLimit',
  keys: 1,
  lua: `
local limit = tonumber(redis.call('GET', KEYS[1]) or '0')
local through = tonumber(ARGV[1])
if through > limit then
  redis.call('SET', KEYS[1], ARGV[1])
  limit = through
end
return limit
`,
};

/**
 * The stream's entries with ARGV[1] < seq ≤ ARGV[3] (ARGV[2] is ARGV[1] + 1), or nil unless the
 * stream holds every message published in that range: its first entry must be at most ARGV[2]
 * (entries are consecutive seqs from the first on). KEYS: seq, stream.
 */
const RECENT: LuaScript = {
  name: 'rmBusRecent',
  keys: 2,
  readOnly: true,
  lua: `
local current = redis.call('GET', KEYS[1])
if not current then return false end
if tonumber(current) > tonumber(ARGV[1]) then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if not first then return false end
  if tonumber(string.match(first[1], '^(%d+)')) > tonumber(ARGV[2]) then return false end
end
return redis.call('XRANGE', KEYS[2], ARGV[2], ARGV[3])
`,
};

/** A message's fields besides seq and payload, as a JSON array (short, and quick to parse). */
type Header = [
  node: string,
  senderId: number,
  fromDeviceId: string,
  fromIdentity: string,
  sentAt: string,
  to: string | null,
];

interface Pending {
  message: RoomMessage;
  outcome: PublishOutcome;
}

/** A room this node is subscribed to. */
class BusRoom {
  /** Subscribed and its seq known: messages may be published. */
  open = false;
  /** Unsubscribed: nothing more is delivered or sent. */
  closed = false;
  /** Highest seq handed to the handler (or resolved by subscribe). */
  delivered = 0;
  /** Highest seq this node saw, delivered or numbered. */
  highest = 0;
  /** Reasons to hold deliveries (subscribing, catching up after a reconnect). */
  holds = 0;
  /** Messages received while delivery is held, in order. */
  held: RoomMessage[] = [];
  /** Messages waiting to be sent to Redis, in order. */
  queue: Pending[] = [];
  /** The batch whose script call is in flight. */
  inflight: Pending[] | undefined;
  /** A pump is scheduled for the end of this tick (messages of one tick go in one call). */
  pumpScheduled = false;
  /** The room waits for seqs (a reservation, or its initialisation): nothing is sent. */
  waiting = false;
  /** Seqs reserved at a time: doubles each time the room runs out. */
  block = SEQ_BLOCK;
  reserving: Promise<void> | undefined;
  initialising: Promise<number> | undefined;
  opening: Promise<number> | undefined;

  constructor(
    readonly roomId: string,
    readonly channel: string,
    readonly seqKey: string,
    readonly limitKey: string,
    readonly streamKey: string,
    public handler: RoomMessageHandler,
    public start: () => Promise<SeqStart>,
  ) {}
}

export class RedisBus implements Bus {
  readonly nodeId: string;
  private readonly link: RedisLink;
  private readonly historyWindow: number;
  private readonly reserveDurably: (roomId: string, through: number) => Promise<void>;
  private readonly log: Logger;
  private readonly rooms = new Map<string, BusRoom>();
  private readonly nodeChannel: string;
  private readonly stopWatchingLink: () => void;
  private readonly commandsSubscribed: Promise<void>;
  private commandHandler: NodeCommandHandler = () => undefined;

  constructor(options: RedisBusOptions) {
    this.link = options.link;
    this.nodeId = options.nodeId;
    this.historyWindow = Math.max(0, Math.floor(options.historyWindow));
    this.reserveDurably = options.reserve;
    this.log = options.log;
    this.nodeChannel = this.commandChannel(this.nodeId);
    // Registered even while cut off: the link subscribes it when it connects.
    this.commandsSubscribed = this.link
      .listen(this.nodeChannel, (data) => this.onCommandMessage(data))
      .catch(
        () =>
          new Promise<void>((resolve) => {
            const stop = this.link.onState((connected) => {
              if (!connected) return;
              stop();
              resolve();
            });
          }),
      );
    this.stopWatchingLink = this.link.onState((connected) => this.onLinkState(connected));
  }

  /** Resolves once commands for this node reach it (its channel is subscribed). */
  ready(): Promise<void> {
    return this.commandsSubscribed;
  }

  get connected(): boolean {
    return this.link.connected;
  }

  subscribe(roomId: string, handler: RoomMessageHandler, start: () => Promise<SeqStart>): Promise<number> {
    const existing = this.rooms.get(roomId);
    if (existing) {
      existing.handler = handler;
      existing.start = start;
      return existing.opening ?? Promise.resolve(existing.delivered);
    }
    const key = (part: string): string => this.link.key('room', `{${roomId}}`, part);
    const room = new BusRoom(roomId, key('msg'), key('seq'), key('limit'), key('stream'), handler, start);
    this.rooms.set(roomId, room);
    room.opening = this.open(room).finally(() => {
      room.opening = undefined;
    });
    return room.opening;
  }

  unsubscribe(roomId: string): SeqStart | undefined {
    const room = this.rooms.get(roomId);
    if (!room) return undefined;
    this.rooms.delete(roomId);
    room.closed = true;
    room.open = false;
    this.link.unlisten(room.channel);
    this.refuseQueued(room, 'the room closed');
    return undefined;
  }

  seq(roomId: string): number {
    return this.rooms.get(roomId)?.highest ?? 0;
  }

  publish(message: RoomMessage, outcome: PublishOutcome): void {
    const room = this.rooms.get(message.roomId);
    if (!room?.open) return outcome.refused('the room is not open on this node');
    if (!this.link.connected) return outcome.refused('cut off from Redis');
    if (room.queue.length >= MAX_HELD) return outcome.refused('too many messages wait for seqs');
    room.queue.push({ message, outcome });
    if (room.pumpScheduled) return;
    room.pumpScheduled = true;
    queueMicrotask(() => {
      room.pumpScheduled = false;
      this.pump(room);
    });
  }

  async recent(roomId: string, after: number, upTo: number): Promise<RoomMessage[] | undefined> {
    if (this.historyWindow === 0) return undefined;
    if (upTo <= after) return [];
    const key = (part: string): string => this.link.key('room', `{${roomId}}`, part);
    let entries: StreamEntry[] | null;
    try {
      entries = await this.link.run<StreamEntry[] | null>(
        RECENT,
        [key('seq'), key('stream')],
        [after, after + 1, upTo],
        true,
      );
    } catch (err) {
      // The caller falls back to the record, as for a window that does not reach back.
      this.log.debug({ err, roomId }, 'redis bus: recent() could not read the stream');
      return undefined;
    }
    if (!entries) return undefined;
    return entries.map((entry) => decode(roomId, streamData(entry)));
  }

  command(nodeId: string, command: NodeCommand): void {
    if (nodeId === this.nodeId) return this.commandHandler(command);
    if (!this.link.connected) {
      this.log.warn(
        { node: nodeId, command: command.type },
        'redis bus: command not sent, cut off from Redis',
      );
      return;
    }
    this.link.commands.publish(this.commandChannel(nodeId), JSON.stringify(command)).catch((err: unknown) => {
      this.log.warn({ err, node: nodeId, command: command.type }, 'redis bus: command not sent');
    });
  }

  onCommand(handler: NodeCommandHandler): void {
    this.commandHandler = handler;
  }

  async close(): Promise<void> {
    for (const roomId of [...this.rooms.keys()]) this.unsubscribe(roomId);
    this.link.unlisten(this.nodeChannel);
    this.stopWatchingLink();
  }

  private commandChannel(nodeId: string): string {
    return this.link.key('node', nodeId);
  }

  /** subscribe()'s work: the channel first, then the seq, so no message falls between. */
  private async open(room: BusRoom): Promise<number> {
    room.holds++;
    try {
      if (!this.link.connected) throw this.link.unavailable();
      await this.link.listen(room.channel, (data) => this.onRoomMessage(room, data));
      const current = await this.link.commands.get(room.seqKey);
      const seq = current === null ? await this.initialise(room) : Number(current);
      if (room.closed) throw new Error(`room ${room.roomId} was unsubscribed while subscribing`);
      room.delivered = seq;
      if (seq > room.highest) room.highest = seq;
      room.open = true;
      // What came meanwhile goes to the handler after the caller has seen the resolved seq.
      setImmediate(() => this.releaseDelivery(room));
      return seq;
    } catch (err) {
      if (this.rooms.get(room.roomId) === room) {
        this.rooms.delete(room.roomId);
        this.link.unlisten(room.channel);
      }
      room.closed = true;
      throw err;
    }
  }

  /** Sets the room's seq from the record's values unless it exists (one call at a time). */
  private initialise(room: BusRoom): Promise<number> {
    room.initialising ??= (async () => {
      const start = await room.start();
      // Never below a seq this node saw: Redis may have lost the room after it was used.
      const last = Math.max(start.last, room.highest);
      const seq = await this.link.run<number>(
        INITIALISE,
        [room.seqKey, room.limitKey, room.streamKey],
        [last, start.reserved],
      );
      return Number(seq);
    })().finally(() => {
      room.initialising = undefined;
    });
    return room.initialising;
  }

  /** Sends the next batch of the room's queue, unless a call is in flight or the room waits. */
  private pump(room: BusRoom): void {
    if (room.inflight || room.waiting || room.closed || room.queue.length === 0) return;
    if (!this.link.connected) return this.refuseQueued(room, 'cut off from Redis');
    let count = 0;
    let bytes = 0;
    while (count < room.queue.length && count < MAX_BATCH && bytes < MAX_BATCH_BYTES) {
      bytes += room.queue[count]!.message.payload.length;
      count++;
    }
    const batch = room.queue.splice(0, count);
    room.inflight = batch;
    const args: ScriptArg[] = [room.channel, this.historyWindow, count];
    for (const { message } of batch) args.push(encodeHeader(message), message.payload);
    this.link.run<[number, number, number]>(PUBLISH, [room.seqKey, room.limitKey, room.streamKey], args).then(
      (reply) => this.published(room, batch, reply),
      (err: unknown) => this.publishFailed(room, batch, err),
    );
  }

  private published(room: BusRoom, batch: Pending[], [numbered, seq, limit]: [number, number, number]): void {
    room.inflight = undefined;
    if (numbered < 0) {
      // The room has no seq in Redis (first use, or Redis lost it): set it, then send again.
      this.requeue(room, batch);
      if (!room.closed) this.waitFor(room, () => this.initialise(room));
      return;
    }
    const first = seq - numbered + 1;
    for (let i = 0; i < numbered; i++) {
      const { message, outcome } = batch[i]!;
      message.seq = first + i;
      settle(this.log, () => outcome.numbered(message));
    }
    if (seq > room.highest) room.highest = seq;
    if (numbered < batch.length) {
      // Out of durable seqs: the rest wait, in order, for a larger block.
      this.requeue(room, batch.slice(numbered));
      if (room.closed) return;
      room.block = Math.min(MAX_SEQ_BLOCK, room.block * 2);
      this.waitFor(room, () => this.reserve(room, seq));
      return;
    }
    if (limit - seq < room.block / 2 && !room.reserving && !room.closed) {
      this.reserve(room, seq).catch((err: unknown) => {
        this.log.debug({ err, roomId: room.roomId }, 'redis bus: seq reservation failed; retried later');
      });
    }
    this.pump(room);
  }

  private publishFailed(room: BusRoom, batch: Pending[], err: unknown): void {
    room.inflight = undefined;
    const reason = `Redis: ${(err as Error).message ?? String(err)}`;
    for (const { outcome } of batch) settle(this.log, () => outcome.refused(reason));
    if (!this.link.connected) this.refuseQueued(room, 'cut off from Redis');
    else this.pump(room);
  }

  /** Puts messages back at the head of the queue (refused if the room closed meanwhile). */
  private requeue(room: BusRoom, messages: Pending[]): void {
    if (room.closed) {
      for (const { outcome } of messages) settle(this.log, () => outcome.refused('the room closed'));
      return;
    }
    room.queue.unshift(...messages);
  }

  /** Holds the room's queue until `ready` settles; on failure its messages are refused. */
  private waitFor(room: BusRoom, ready: () => Promise<unknown>): void {
    room.waiting = true;
    ready().then(
      () => {
        room.waiting = false;
        this.pump(room);
      },
      (err: unknown) => {
        room.waiting = false;
        this.log.warn(
          { err, roomId: room.roomId },
          'redis bus: no seqs for the room; its waiting messages are refused',
        );
        this.refuseQueued(room, `no seqs: ${(err as Error).message ?? String(err)}`);
      },
    );
  }

  /** The next block: durable in the record, then the limit in Redis (one at a time per room). */
  private reserve(room: BusRoom, seq: number): Promise<void> {
    room.reserving ??= (async () => {
      const through = seq + room.block;
      await this.reserveDurably(room.roomId, through);
      await this.link.run(RAISE_LIMIT, [room.limitKey], [through]);
    })().finally(() => {
      room.reserving = undefined;
    });
    return room.reserving;
  }

  private refuseQueued(room: BusRoom, reason: string): void {
    const queue = room.queue;
    room.queue = [];
    for (const { outcome } of queue) settle(this.log, () => outcome.refused(reason));
  }

  private onRoomMessage(room: BusRoom, data: Buffer): void {
    let message: RoomMessage;
    try {
      message = decode(room.roomId, data);
    } catch (err) {
      this.log.error({ err, roomId: room.roomId }, 'redis bus: unreadable message on the room channel');
      return;
    }
    if (room.holds > 0) room.held.push(message);
    else this.deliver(room, message);
  }

  /** Hands a message on unless it is not newer than the last (seq order, once each). */
  private deliver(room: BusRoom, message: RoomMessage): void {
    if (room.closed || message.seq <= room.delivered) return;
    room.delivered = message.seq;
    if (message.seq > room.highest) room.highest = message.seq;
    settle(this.log, () => room.handler(message));
  }

  private releaseDelivery(room: BusRoom): void {
    if (--room.holds > 0) return;
    const held = room.held;
    room.held = [];
    for (const message of held) this.deliver(room, message);
  }

  private onLinkState(connected: boolean): void {
    if (!connected) {
      for (const room of this.rooms.values()) this.refuseQueued(room, 'cut off from Redis');
      return;
    }
    for (const room of this.rooms.values()) {
      if (room.open) void this.catchUp(room);
    }
  }

  /**
   * After a reconnect: what the room's channel carried while this node was cut off, from the
   * stream, before what comes live (held meanwhile).
   */
  private async catchUp(room: BusRoom): Promise<void> {
    room.holds++;
    try {
      const from = room.delivered + 1;
      const [current, entries] = await Promise.all([
        this.link.commands.get(room.seqKey),
        this.historyWindow > 0
          ? (this.link.commands.xrangeBuffer(room.streamKey, String(from), '+') as Promise<StreamEntry[]>)
          : Promise.resolve([]),
      ]);
      const messages = entries.map((entry) => decode(room.roomId, streamData(entry)));
      const firstFound = messages[0]?.seq ?? Number(current ?? 0) + 1;
      if (current !== null && firstFound > from && Number(current) >= from) {
        this.log.warn(
          { roomId: room.roomId, from, to: Math.min(firstFound - 1, Number(current)) },
          'redis bus: messages published while cut off are no longer in the stream; not delivered here',
        );
      }
      for (const message of messages) this.deliver(room, message);
    } catch (err) {
      this.log.warn({ err, roomId: room.roomId }, 'redis bus: could not catch up after reconnecting');
    } finally {
      this.releaseDelivery(room);
    }
  }

  private onCommandMessage(data: Buffer): void {
    let command: NodeCommand;
    try {
      command = JSON.parse(data.toString('utf8')) as NodeCommand;
    } catch (err) {
      this.log.error({ err }, 'redis bus: unreadable node command');
      return;
    }
    settle(this.log, () => this.commandHandler(command));
  }
}

/** A stream entry as XRANGE returns it with Buffers: [id, [field, value, …]]. */
type StreamEntry = [Buffer, Buffer[]];

function streamData([, fields]: StreamEntry): Buffer {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.length === 1 && fields[i]![0] === 0x6d /* m */) return fields[i + 1]!;
  }
  throw new Error('stream entry without its message');
}

function encodeHeader(message: RoomMessage): string {
  const header: Header = [
    message.node,
    message.senderId,
    message.fromDeviceId,
    message.fromIdentity,
    message.sentAt,
    message.to,
  ];
  return JSON.stringify(header);
}

/** `<seq>\n<header>\n<payload>` → the message (its payload copied out of the socket's chunk). */
function decode(roomId: string, data: Buffer): RoomMessage {
  const seqEnd = data.indexOf(NEWLINE);
  const headerEnd = seqEnd < 0 ? -1 : data.indexOf(NEWLINE, seqEnd + 1);
  if (headerEnd < 0) throw new Error('bus message without seq and header');
  const seq = Number(data.toString('latin1', 0, seqEnd));
  const [node, senderId, fromDeviceId, fromIdentity, sentAt, to] = JSON.parse(
    data.toString('utf8', seqEnd + 1, headerEnd),
  ) as Header;
  // A copy: a view would keep the whole chunk it came in alive as long as the message.
  const payload = Buffer.from(data.subarray(headerEnd + 1));
  return {
    roomId,
    seq,
    node,
    senderId,
    fromDeviceId,
    fromIdentity,
    sentAt,
    to,
    payload,
    // The record's content and the Level 2 data: the payload's text (they are the same bytes).
    text: payload.toString('utf8'),
  };
}

/** Calls the caller's callback; its failure is logged, not thrown into the bus's own work. */
function settle(log: Logger, callback: () => void): void {
  try {
    callback();
  } catch (err) {
    log.error({ err }, 'redis bus: a callback failed');
  }
}
