/**
 * A live Level 2 client's frames (PROTOCOL.md, Level 2): ping, join_room, leave_room, history,
 * query_room, send, and broadcasts with or without ack_id. The frame shapes are read by
 * protocol/commands.ts; what moves the connection (joining, leaving, publishing) is the Session's,
 * reached through Level2Host.
 */
import type { Logger } from 'pino';
import { ErrorCode } from '../protocol/codes.js';
import {
  TOO_DEEP,
  parseHistory,
  parseJoinRoom,
  parseSend,
  reencode,
  withoutAckId,
} from '../protocol/commands.js';
import { PONG_FRAME, historyFrame, leftFrame } from '../protocol/encode.js';
import type { JsonObject } from '../protocol/frames.js';
import { isoNow } from '../store/timestamp.js';
import type { Room } from './room.js';
import type { RoomHistory } from './room-history.js';

/** What the commands need of their Session. */
export interface Level2Host {
  /** Connection id (changes with each join_room), for the logs. */
  conn(): number;
  deviceId(): string;
  /** The room the connection is in: none after a leave_room or a lost join race. */
  room(): Room | undefined;
  closed(): boolean;
  /** An error frame that leaves the connection open. */
  error(code: ErrorCode, message: string, ackId: unknown): void;
  /** Answers room_info and records the query. */
  queryRoom(room: Room, now: string): void;
  /** Publishes a message into `room` (to one device with `to`); acks it with an ackId. */
  accept(room: Room, text: string, payload: Buffer, to: string | null, now: string, ackId: unknown): void;
  /** Moves the connection to another room (a validated, upper-cased code). */
  joinRoom(roomId: string, ackId: unknown): void;
  /** Leaves the current room and records the end of that stay. */
  leaveCurrent(): void;
}

export class Level2Commands {
  constructor(
    private readonly ctx: { log: Logger; history: RoomHistory },
    private readonly socket: { sendText(text: string): void },
    private readonly host: Level2Host,
  ) {}

  /** A frame already parsed once: `text` and `payload` are its bytes, sent on as they are when possible. */
  handle(message: JsonObject, text: string, payload: Buffer): void {
    const host = this.host;
    const ackId = message.ack_id;
    if (ackId !== undefined && reencode(ackId) === undefined) {
      return host.error(ErrorCode.InvalidMessage, TOO_DEEP, undefined);
    }
    switch (message.type) {
      case 'ping':
        return this.socket.sendText(PONG_FRAME);
      case 'join_room':
        return this.joinRoom(message, ackId);
      case 'leave_room':
        return this.leaveRoom(ackId);
      case 'history':
        return this.history(message, ackId);
    }
    const room = host.room();
    if (!room) return host.error(ErrorCode.NotInRoom, NOT_IN_ROOM, ackId);
    const now = isoNow();
    if (message.type === 'query_room') return host.queryRoom(room, now);
    if (message.type === 'send') return this.send(room, message, now, ackId);
    // A broadcast: the sender's own bytes, unless ack_id must be taken out first.
    if (ackId === undefined) return host.accept(room, text, payload, null, now, undefined);
    const restText = withoutAckId(message);
    if (restText === undefined) return host.error(ErrorCode.InvalidMessage, TOO_DEEP, ackId);
    host.accept(room, restText, Buffer.from(restText), null, now, ackId);
  }

  private send(room: Room, message: JsonObject, now: string, ackId: unknown): void {
    const host = this.host;
    const send = parseSend(message);
    if ('invalid' in send) return host.error(ErrorCode.InvalidMessage, send.invalid, ackId);
    const { to, data } = send;
    if (!room.hasDevice(to)) {
      return host.error(ErrorCode.UnknownTarget, `Device ${to} is not in room ${room.id}`, ackId);
    }
    // Re-encoded only once the target is known: an unknown target is answered first.
    const innerText = reencode(data);
    if (innerText === undefined) return host.error(ErrorCode.InvalidMessage, TOO_DEEP, ackId);
    host.accept(room, innerText, Buffer.from(innerText), to, now, ackId);
  }

  private joinRoom(message: JsonObject, ackId: unknown): void {
    const join = parseJoinRoom(message);
    if ('invalid' in join) return this.host.error(ErrorCode.InvalidMessage, join.invalid, ackId);
    this.host.joinRoom(join.roomId, ackId);
  }

  private leaveRoom(ackId: unknown): void {
    const room = this.host.room();
    if (!room) return this.host.error(ErrorCode.NotInRoom, 'Not in a room', ackId);
    this.host.leaveCurrent();
    this.socket.sendText(leftFrame(room.id));
  }

  private history(message: JsonObject, ackId: unknown): void {
    const host = this.host;
    const room = host.room();
    if (!room) return host.error(ErrorCode.NotInRoom, NOT_IN_ROOM, ackId);
    const wanted = parseHistory(message);
    if ('invalid' in wanted) return host.error(ErrorCode.InvalidMessage, wanted.invalid, ackId);
    const before = Math.min(wanted.before, room.seq + 1);
    this.ctx.history.before(room, host.deviceId(), before, wanted.count).then(
      (messages) => {
        if (!host.closed()) this.socket.sendText(historyFrame(room.id, messages));
      },
      (err: unknown) => {
        this.ctx.log.warn(
          { conn: host.conn(), room: room.id, err: (err as Error).message },
          'history unavailable',
        );
        host.error(ErrorCode.Unavailable, 'History is unavailable right now, try again later', ackId);
      },
    );
  }
}

const NOT_IN_ROOM = 'Not in a room: join one first';
