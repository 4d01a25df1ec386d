/**
 * One client connection, from the first frame to the close: the hello, room assignment, then
 * the room's messages. The transport hands it frames and tells it when the socket closed; it
 * answers through a SessionSocket and never touches ws directly.
 */
import type { Logger } from 'pino';
import type { RoomMessage } from '../bus/bus.js';
import { CloseCode, ErrorCode, ErrorText } from '../protocol/codes.js';
import {
  INVALID_JSON_FRAME,
  ackFrame,
  errorFrame,
  protocolErrorFrame,
  roomFrame,
  roomInfoFrame,
  type RoomReplyLevel2,
  type RoomStatus,
} from '../protocol/encode.js';
import { frameText, parseHello, parseObject, type Hello, type JsonObject } from '../protocol/frames.js';
import type { RecordWriter } from '../store/record-writer.js';
import { isoNow } from '../store/timestamp.js';
import type { ServerIds } from '../store/server-ids.js';
import type { Directory } from './directory.js';
import type { RoomPolicy } from '../auth/room-policy.js';
import type { Lobby } from './lobby.js';
import { ExpiryTimer, authenticate, roomPolicy } from '../auth/session-auth.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Room, Member } from './room.js';
import type { IpLimits } from '../limits/ip-limits.js';
import { TokenBucket } from '../limits/token-bucket.js';
import type { RoomChannel } from './room-channel.js';
import type { RoomHistory } from './room-history.js';
import type { RoomRegistry } from './room-registry.js';
import type { TrafficSink } from './traffic.js';
import { Level2Commands, type Level2Host } from './level2-commands.js';
import { recover, replayPaced } from './resume.js';
import { recordEntered, recordLeft, recordQuery } from './session-record.js';

// Still importable from here: the history limits are the protocol's (protocol/commands.ts).
export { HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT } from '../protocol/commands.js';

/** What a session needs of its socket. */
export interface SessionSocket {
  sendText(text: string): void;
  /** Sends a message's Level 1 bytes as a text frame (framed once for all recipients). */
  sendFrame(message: RoomMessage): void;
  /** Sends a message's Level 2 envelope (made and framed once for all Level 2 recipients). */
  sendEnvelope(message: RoomMessage): void;
  /** Bytes written but not yet taken by the peer. */
  bufferedAmount(): number;
  /** Resolves true once the peer has read what was written, false if the socket closed first. */
  drained(): Promise<boolean>;
  close(code: number, reason: string): void;
}

/** Everything sessions share: one per server. */
export interface SessionContext {
  log: Logger;
  lobby: Lobby;
  registry: RoomRegistry;
  directory: Directory;
  /** The one publish step (seq, record, delivery, ack). */
  channel: RoomChannel;
  /** This node's id: every message carries it. */
  nodeId: string;
  writer: RecordWriter;
  history: RoomHistory;
  connectionIds: ServerIds;
  helloTimeoutMs: number;
  maxFrameBytes: number;
  /** Most messages a resume replays; past it the reply says recovered: false. */
  resumeMaxMessages: number;
  /** The slow-consumer bound: a replay pauses for the client to read at half of it. */
  maxBufferedBytes: number;
  /** Checks hello tokens when authentication is on (src/auth); absent when it is off. */
  tokens?: TokenVerifier;
  /** Per-IP limits: failed room joins (and connections, counted by the transport). */
  ipLimits: IpLimits;
  /** Token bucket of every connection: messages per second after the hello, and the burst. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** Where sessions report what they did (the metrics). */
  traffic: TrafficSink;
}

/** Frames a client may send after its hello before its room is assigned; more is a flood. */
const MAX_EARLY_FRAMES = 256;

/**
 * hello → assigning (room lookup, resume replay) → live (in a room, or in none after a Level 2
 * leave_room) → closed. A Level 2 join_room goes from live back through assigning.
 *
 * What lives elsewhere: the Level 2 commands in level2-commands.ts (their frame shapes in
 * protocol/commands.ts), a resume's recovery and paced replay in resume.ts, and the records a
 * session writes in session-record.ts. The Level 1 hot path stays here, direct.
 */
type State = 'hello' | 'assigning' | 'live' | 'closed';

export class Session implements Member {
  /** Connection id: one `connections` row per stay in a room (a join_room starts a new one). */
  id: number;
  deviceId = '';
  identity = '';
  level: 1 | 2 = 1;
  private state: State = 'hello';
  private room: Room | undefined;
  /**
   * Live messages and presence events held back from the moment the session is a member until
   * its room reply (and a resume's replay) is sent: they must follow it; undefined otherwise.
   */
  private held: (RoomMessage | string)[] | undefined;
  /** Highest seq sent to this client in its room: nothing is sent twice across replay and live. */
  private sentSeq = 0;
  /** Messages per second after the hello (made when the hello is accepted). */
  private bucket: TokenBucket | undefined;
  /** Frames refused in a row by the rate limit, and when the client was last told. */
  private refused = 0;
  private refusalToldAt = 0;
  /** Set by endAfterReply(): the close code recorded once the peer's close reply comes. */
  private closingWith: number | undefined;
  private early: { data: Buffer; isBinary: boolean }[] = [];
  private helloTimer: NodeJS.Timeout | undefined;
  /** Authentication on: what the token allows, and the timer that ends the session when it expires. */
  private policy: RoomPolicy | undefined;
  private expiry: ExpiryTimer | undefined;
  /** A Level 2 client's commands (made once its hello says Level 2). */
  private level2: Level2Commands | undefined;
  private readonly openedAt = Date.now();
  /** performance.now() at the upgrade, until the first room assignment ends (then -1). */
  private handshakeFrom = performance.now();

  constructor(
    private readonly ctx: SessionContext,
    private readonly socket: SessionSocket,
    readonly clientIp: string,
    /** The upgrade request's token (Authorization: Bearer, or ?token=), if any. */
    private readonly upgradeToken?: string,
  ) {
    this.id = ctx.connectionIds.next();
    this.helloTimer = setTimeout(this.onHelloTimeout, ctx.helloTimeoutMs);
    this.helloTimer.unref();
  }

  get roomId(): string | undefined {
    return this.room?.id;
  }

  /** A frame from the client. */
  onFrame(data: Buffer, isBinary: boolean): void {
    if (this.bucket) {
      const now = Date.now();
      if (!this.bucket.take(now)) return this.refuse(now);
      this.refused = 0;
    }
    switch (this.state) {
      case 'live':
        return this.level === 1 ? this.onRoomFrame(data, isBinary) : this.onLevel2Frame(data, isBinary);
      case 'hello':
        return this.onHello(data, isBinary);
      case 'assigning':
        if (this.early.length >= MAX_EARLY_FRAMES) {
          return this.fail(
            ErrorCode.RateLimited,
            'Too many messages before room assignment',
            CloseCode.RateLimited,
          );
        }
        this.early.push({ data, isBinary });
        return;
      case 'closed':
        return;
    }
  }

  /**
   * A frame over the rate limit: not handled, not recorded. The client is told at most once a
   * second; one that sends a whole burst's worth more while refused is closed.
   */
  private refuse(now: number): void {
    if (this.state === 'closed') return;
    if (++this.refused >= this.ctx.rateLimitBurst) {
      this.ctx.log.warn({ conn: this.id, ip: this.clientIp, device: this.deviceId }, 'message flood: closed');
      return this.fail(ErrorCode.RateLimited, 'Message rate limit exceeded', CloseCode.RateLimited);
    }
    if (now - this.refusalToldAt >= 1000) {
      this.refusalToldAt = now;
      this.sendError(
        ErrorCode.RateLimited,
        errorFrame(
          ErrorCode.RateLimited,
          `More than ${this.ctx.rateLimitPerSecond} messages per second: message refused`,
        ),
      );
    }
  }

  /** The socket closed (by the peer, the network, or after our own close). */
  onClose(code: number): void {
    this.finish(this.closingWith ?? code);
  }

  /** A Level 1 member: it has no acks, so a close must not cut off what it is still sending. */
  get unacknowledged(): boolean {
    return this.state === 'live' && this.level === 1;
  }

  /**
   * Ends a Level 1 member from the server side but takes its frames until its close reply: what
   * it sent before it saw the close is still relayed and recorded (it has no acks to resend by).
   * Nothing more is sent to it: the socket sends no data frame after a close frame.
   */
  endAfterReply(code: number, reason: string): void {
    if (!this.unacknowledged) return this.end(code, reason);
    if (this.closingWith !== undefined) return;
    this.closingWith = code;
    this.socket.close(code, reason);
  }

  /** Ends the session from the server side. */
  end(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.finish(code);
    this.socket.close(code, reason);
  }

  deliver(message: RoomMessage): void {
    if (this.held) this.held.push(message);
    else this.send(message);
  }

  /** Presence events from the room (held, like messages, until a resume has replayed). */
  sendText(text: string): void {
    if (this.held) this.held.push(text);
    else this.socket.sendText(text);
  }

  private send(message: RoomMessage): void {
    if (message.seq <= this.sentSeq) return;
    this.sentSeq = message.seq;
    if (this.level === 1) this.socket.sendFrame(message);
    else this.socket.sendEnvelope(message);
  }

  replace(): void {
    this.ctx.log.info(
      { conn: this.id, device: this.deviceId, room: this.roomId },
      'replaced by a newer connection',
    );
    this.end(CloseCode.Replaced, 'Replaced by a newer connection of this device');
  }

  kick(reason: string): void {
    this.ctx.log.info({ conn: this.id, device: this.deviceId, room: this.roomId, reason }, 'kicked');
    this.end(CloseCode.Kicked, reason);
  }

  private readonly onHelloTimeout = (): void => {
    if (this.state !== 'hello') return;
    this.fail(
      ErrorCode.HelloTimeout,
      `No identity received within ${this.ctx.helloTimeoutMs} ms`,
      CloseCode.HelloTimeout,
    );
  };

  private onHello(data: Buffer, isBinary: boolean): void {
    clearTimeout(this.helloTimer);
    if (data.length > this.ctx.maxFrameBytes) {
      return this.fail(ErrorCode.PayloadTooLarge, this.tooLargeText(data.length), CloseCode.PayloadTooLarge);
    }
    const result = parseHello(frameText(data, isBinary));
    if (!result.ok) {
      this.ctx.log.info({ conn: this.id, ip: this.clientIp, code: result.error.code }, 'hello rejected');
      this.sendError(result.error.code, protocolErrorFrame(result.error));
      this.handshakeEnded(result.error.code);
      return this.end(result.error.close, result.error.code);
    }
    this.state = 'assigning';
    this.deviceId = result.hello.deviceId;
    this.identity = result.hello.identity;
    this.level = result.hello.level;
    if (this.level === 2) this.level2 = new Level2Commands(this.ctx, this.socket, this.level2Host());
    this.bucket = new TokenBucket(this.ctx.rateLimitPerSecond, this.ctx.rateLimitBurst, Date.now());
    this.assign(result.hello).catch((err: unknown) => {
      this.ctx.log.error({ err, conn: this.id, device: this.deviceId }, 'room assignment failed');
      this.fail(ErrorCode.Unavailable, 'Service unavailable, try again later', CloseCode.Unavailable);
    });
  }

  private async assign(hello: Hello): Promise<void> {
    const { lobby, log, ipLimits, tokens } = this.ctx;
    if (tokens && !(await this.authorize(hello, tokens))) return;
    const now = isoNow();
    // A resume names its room, as a hello's room_id does; the status says the device is back.
    const named = hello.resume ? hello.resume.roomId : hello.roomId;
    if (named !== undefined && !ipLimits.mayJoin(this.clientIp)) {
      log.warn({ conn: this.id, ip: this.clientIp, device: hello.deviceId }, 'too many failed joins');
      return this.fail(ErrorCode.TooManyFailedJoins, TOO_MANY_FAILED_JOINS, CloseCode.RateLimited);
    }
    const assignment = await lobby.assign(hello.deviceId, named, now, this.policy);
    if (this.state !== 'assigning') return; // the client left meanwhile
    if ('refused' in assignment) return this.unauthorized(assignment.refused);
    if ('notFound' in assignment) {
      ipLimits.failedJoin(this.clientIp);
      log.info({ conn: this.id, device: hello.deviceId, room: assignment.notFound }, 'room not found');
      return this.fail(
        ErrorCode.RoomNotFound,
        ErrorText.roomNotFound(assignment.notFound),
        CloseCode.RoomNotFound,
      );
    }
    const status: RoomStatus = hello.resume ? 'reconnected' : assignment.status;
    await this.enterRoom(
      assignment.roomId,
      status,
      new Date(this.openedAt).toISOString(),
      hello.resume?.lastSeq,
    );
  }

  /**
   * Authentication on: the hello's token (or the upgrade's) must verify and name this device.
   * Keeps what it allows and arms the expiry; false once the session has been refused.
   */
  private async authorize(hello: Hello, tokens: TokenVerifier): Promise<boolean> {
    const result = await authenticate(tokens, hello, this.upgradeToken);
    if (this.state !== 'assigning') return false; // the client left meanwhile
    if (!result.ok) {
      this.unauthorized(result.reason);
      return false;
    }
    this.policy = roomPolicy(result.grant);
    this.expiry = new ExpiryTimer(result.grant.expiresAt, this.onTokenExpired);
    return true;
  }

  private unauthorized(reason: string): void {
    this.ctx.log.info({ conn: this.id, ip: this.clientIp, device: this.deviceId, reason }, 'unauthorized');
    this.fail(ErrorCode.Unauthorized, reason, CloseCode.Unauthorized);
  }

  /** The token's exp has passed: the client is told, closed, and its disconnect recorded. */
  private readonly onTokenExpired = (): void => {
    this.expiry = undefined;
    if (this.state === 'closed') return;
    this.ctx.log.info({ conn: this.id, device: this.deviceId, room: this.roomId }, 'token expired');
    this.fail(ErrorCode.TokenExpired, 'Token expired', CloseCode.Unauthorized);
  };

  /**
   * Puts the connection into a room (after a hello or a join_room), records it, answers the room
   * reply and, for a resume, replays what the device missed before anything live.
   */
  private async enterRoom(
    roomId: string,
    status: RoomStatus,
    at: string,
    resumeAfter?: number,
    byJoinRoom = false,
  ): Promise<void> {
    const { registry, directory, writer, log } = this.ctx;
    // Whatever is delivered from the moment we are a member waits until the room reply (and a
    // resume's replay) is sent.
    this.held = [];
    const room = await registry.enter(roomId, this, () => this.state === 'assigning');
    if (room === 'full') {
      this.held = undefined;
      const text = `Room ${roomId} is full`;
      // A hello into a full room is refused and closed, whatever the level.
      if (!byJoinRoom) return this.fail(ErrorCode.RoomFull, text, CloseCode.RoomFull);
      // A join_room that lost a race for the last place: the connection is now in no room.
      this.state = 'live';
      this.error(ErrorCode.RoomFull, text, undefined);
      return this.drainEarly();
    }
    if (!room) {
      this.held = undefined;
      return;
    }
    this.room = room;
    const current = room.seq;
    this.sentSeq = current;
    recordEntered(writer, directory, this, room.id, at);

    let level2: RoomReplyLevel2 | undefined;
    let replay: RoomMessage[] = [];
    if (this.level === 2) {
      level2 = { members: room.memberList(), seq: current };
      if (resumeAfter !== undefined) {
        const recovery = await recover(this.ctx, room, this.deviceId, this.id, resumeAfter, current);
        if (this.state !== 'assigning' || this.room !== room) return; // closed meanwhile
        replay = recovery.replay;
        level2.recovered = recovery.recovered;
        if (recovery.reason) level2.reason = recovery.reason;
      }
    }
    this.socket.sendText(roomFrame(room.id, status, level2));
    this.handshakeEnded(status);
    if (replay.length === 0 && this.held.length === 0) {
      this.held = undefined;
    } else {
      // Written as the client reads it: live messages keep arriving in `held` meanwhile, the
      // client's frames in `early`.
      const target = {
        conn: this.id,
        room,
        socket: this.socket,
        stillEntering: () => this.state === 'assigning' && this.room === room,
        sendHeld: (m: RoomMessage) => this.send(m),
        end: (code: number, reason: string) => this.end(code, reason),
      };
      if (!(await replayPaced(this.ctx, target, replay, this.held))) return;
      this.held = undefined;
    }
    this.state = 'live';
    log.debug(
      {
        conn: this.id,
        device: this.deviceId,
        identity: this.identity,
        room: room.id,
        status,
        level: this.level,
        ...(resumeAfter !== undefined && { resumedAfter: resumeAfter, replayed: replay.length }),
      },
      'room assigned',
    );
    this.drainEarly();
  }

  /** The hot path: one parse, then deliver the sender's own bytes and queue the record. */
  private onRoomFrame(data: Buffer, isBinary: boolean): void {
    const room = this.room!;
    const frame = this.parseFrame(data, isBinary);
    if (!frame) return;
    const now = isoNow();
    if (frame.message.type === 'query_room') return this.queryRoom(room, now);
    this.accept(room, frame.text, data, null, now, undefined);
  }

  /** A room frame's text and object (one parse), or undefined after answering why not. */
  private parseFrame(data: Buffer, isBinary: boolean): { text: string; message: JsonObject } | undefined {
    if (data.length > this.ctx.maxFrameBytes) {
      this.sendError(
        ErrorCode.PayloadTooLarge,
        errorFrame(ErrorCode.PayloadTooLarge, this.tooLargeText(data.length)),
      );
      return undefined;
    }
    const text = frameText(data, isBinary);
    const message = parseObject(text);
    if (!message) {
      this.sendError(ErrorCode.InvalidJson, INVALID_JSON_FRAME);
      return undefined;
    }
    return { text: text!, message };
  }

  /** room_info for the asker, and the query recorded. */
  private queryRoom(room: Room, now: string): void {
    this.socket.sendText(roomInfoFrame(room.id, room.memberCount, room.othersOf(this)));
    recordQuery(this.ctx.writer, this.deviceId, room.id, now);
  }

  /**
   * Takes a message into the room through the one publish step. With an `ackId`, the ack follows
   * once the record is durable; a refusal is an `unavailable` error (with the ack_id).
   */
  private accept(
    room: Room,
    text: string,
    payload: Buffer,
    to: string | null,
    now: string,
    ackId: unknown,
  ): void {
    const message: RoomMessage = {
      roomId: room.id,
      seq: 0,
      node: this.ctx.nodeId,
      senderId: this.id,
      fromDeviceId: this.deviceId,
      fromIdentity: this.identity,
      sentAt: now,
      to,
      payload,
      text,
    };
    const socket = this.socket;
    this.ctx.channel.publish(
      message,
      ackId === undefined ? undefined : (seq) => socket.sendText(ackFrame(ackId, seq)),
      (reason) => {
        if (this.state !== 'closed') this.error(ErrorCode.Unavailable, notKept(reason), ackId);
      },
    );
  }

  /** A Level 2 client's frame: parsed here once, then handled by its commands. */
  private onLevel2Frame(data: Buffer, isBinary: boolean): void {
    const frame = this.parseFrame(data, isBinary);
    if (frame) this.level2!.handle(frame.message, frame.text, data);
  }

  /** What Level2Commands may see and do of this session. */
  private level2Host(): Level2Host {
    return {
      conn: () => this.id,
      deviceId: () => this.deviceId,
      room: () => this.room,
      closed: () => this.state === 'closed',
      error: (code, message, ackId) => this.error(code, message, ackId),
      queryRoom: (room, now) => this.queryRoom(room, now),
      accept: (room, text, payload, to, now, ackId) => this.accept(room, text, payload, to, now, ackId),
      joinRoom: (roomId, ackId) => this.joinRoom(roomId, ackId),
      leaveCurrent: () => this.leaveCurrent(),
    };
  }

  /** A Level 2 join_room (its room_id read and upper-cased): live → assigning → live elsewhere. */
  private joinRoom(roomId: string, ackId: unknown): void {
    if (this.room?.id === roomId) {
      // Already there: the same reply as for a join, nothing moves.
      const room = this.room;
      this.socket.sendText(
        roomFrame(room.id, 'joined_existing', { members: room.memberList(), seq: room.seq }),
      );
      return;
    }
    if (this.policy && !this.policy.mayEnter(roomId)) {
      // Authentication: the token's "rooms" claim does not list it. The connection stays.
      return this.error(ErrorCode.Unauthorized, `Token does not allow room ${roomId}`, ackId);
    }
    const { ipLimits, registry } = this.ctx;
    if (!ipLimits.mayJoin(this.clientIp)) {
      return this.error(ErrorCode.TooManyFailedJoins, TOO_MANY_FAILED_JOINS, ackId);
    }
    if (registry.isFull(roomId, this.deviceId)) {
      return this.error(ErrorCode.RoomFull, `Room ${roomId} is full`, ackId);
    }
    this.state = 'assigning';
    this.ctx.lobby
      .assign(this.deviceId, roomId, isoNow())
      .then(async (assignment) => {
        if (this.state !== 'assigning') return;
        if ('notFound' in assignment) {
          // The connection stays where it was.
          ipLimits.failedJoin(this.clientIp);
          this.state = 'live';
          this.error(ErrorCode.RoomNotFound, ErrorText.roomNotFound(assignment.notFound), ackId);
          return this.drainEarly();
        }
        this.leaveCurrent();
        this.id = this.ctx.connectionIds.next();
        await this.enterRoom(assignment.roomId, 'joined_existing', isoNow(), undefined, true);
      })
      .catch((err: unknown) => {
        this.ctx.log.error({ err, conn: this.id, device: this.deviceId }, 'join_room failed');
        this.fail(ErrorCode.Unavailable, 'Service unavailable, try again later', CloseCode.Unavailable);
      });
  }

  /** Leaves the current room (if any) and records the end of that stay. */
  private leaveCurrent(): void {
    const room = this.room;
    if (!room) return;
    this.room = undefined;
    this.held = undefined;
    this.ctx.registry.leave(room, this);
    recordLeft(this.ctx.writer, this.id);
  }

  /** An error frame that leaves the connection open (with the ack_id it answers, if any). */
  private error(code: ErrorCode, message: string, ackId: unknown): void {
    this.sendError(code, errorFrame(code, message, ackId));
  }

  /** The one place a session sends an error frame (`frame`, made with `code`). */
  private sendError(code: ErrorCode, frame: string): void {
    this.ctx.traffic.errorSent(code);
    this.socket.sendText(frame);
  }

  /** The first room assignment ended: the room reply's status, or the refusal's code. Once. */
  private handshakeEnded(outcome: string): void {
    if (this.handshakeFrom < 0) return;
    this.ctx.traffic.handshakeEnded(outcome, (performance.now() - this.handshakeFrom) / 1000);
    this.handshakeFrom = -1;
  }

  /** Frames that arrived while the room was being assigned, in order. */
  private drainEarly(): void {
    // A join_room among them sends the session back to assigning: the rest wait for it.
    while (this.state === 'live' && this.early.length > 0) {
      const frame = this.early.shift()!;
      this.onFrame(frame.data, frame.isBinary);
    }
  }

  private tooLargeText(size: number): string {
    return `Message of ${size} bytes exceeds the limit of ${this.ctx.maxFrameBytes} bytes`;
  }

  private fail(code: ErrorCode, message: string, close: number): void {
    if (this.state === 'closed') return;
    this.sendError(code, errorFrame(code, message));
    this.handshakeEnded(code);
    this.end(close, code);
  }

  /** Leaves the room and records the disconnect, once. */
  private finish(code: number): void {
    if (this.state === 'closed') return;
    const roomId = this.room?.id;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.expiry?.cancel();
    this.early = [];
    this.leaveCurrent();
    // Gone before a room was assigned: the client left, or the server is shutting down.
    this.handshakeEnded('closed');
    this.ctx.traffic.closed(code);
    this.ctx.log.debug(
      {
        conn: this.id,
        device: this.deviceId || undefined,
        room: roomId,
        code,
        seconds: Math.round((Date.now() - this.openedAt) / 1000),
      },
      'disconnected',
    );
  }
}

function notKept(reason: string): string {
  return `Message not accepted: ${reason}; it was not delivered, send it again later`;
}
const TOO_MANY_FAILED_JOINS = 'Too many attempts to join rooms that do not exist; try again in a minute';
