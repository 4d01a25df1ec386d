/**
 * One client connection, from the first frame to the close: the hello, room assignment, then
 * the room's messages. The transport hands it frames and tells it when the socket closed; it
 * answers through a SessionSocket and never touches ws directly.
 */
import type { Logger } from 'pino';
import type { Bus, RoomMessage } from '../bus/bus.js';
import { CloseCode, ErrorCode, ErrorText } from '../protocol/codes.js';
import {
  INVALID_JSON_FRAME,
  errorFrame,
  protocolErrorFrame,
  roomFrame,
  roomInfoFrame,
} from '../protocol/encode.js';
import { frameText, parseHello, parseObject, type Hello } from '../protocol/frames.js';
import type { RecordWriter } from '../store/record-writer.js';
import { isoNow } from '../store/timestamp.js';
import type { ServerIds } from '../store/server-ids.js';
import type { Directory } from './directory.js';
import type { Lobby } from './lobby.js';
import type { Room, Member } from './room.js';
import type { RoomRegistry } from './room-registry.js';

/** What a session needs of its socket. */
export interface SessionSocket {
  sendText(text: string): void;
  /** Sends bytes that are already UTF-8 JSON as a text frame (framed once for all recipients). */
  sendFrame(message: RoomMessage): void;
  close(code: number, reason: string): void;
}

/** Everything sessions share: one per server. */
export interface SessionContext {
  log: Logger;
  lobby: Lobby;
  registry: RoomRegistry;
  directory: Directory;
  bus: Bus;
  writer: RecordWriter;
  connectionIds: ServerIds;
  helloTimeoutMs: number;
  maxFrameBytes: number;
}

/** Frames a client may send after its hello before its room is assigned; more is a flood. */
const MAX_EARLY_FRAMES = 256;

type State = 'hello' | 'assigning' | 'room' | 'closed';

export class Session implements Member {
  readonly id: number;
  deviceId = '';
  identity = '';
  private state: State = 'hello';
  private room: Room | undefined;
  private early: { data: Buffer; isBinary: boolean }[] = [];
  private helloTimer: NodeJS.Timeout | undefined;
  private readonly openedAt = Date.now();

  constructor(
    private readonly ctx: SessionContext,
    private readonly socket: SessionSocket,
    readonly clientIp: string,
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
    switch (this.state) {
      case 'room':
        return this.onRoomFrame(data, isBinary);
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

  /** The socket closed (by the peer, the network, or after our own close). */
  onClose(code: number): void {
    this.finish(code);
  }

  /** Ends the session from the server side. */
  end(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.finish(code);
    this.socket.close(code, reason);
  }

  deliver(message: RoomMessage): void {
    this.socket.sendFrame(message);
  }

  replace(): void {
    this.ctx.log.info(
      { conn: this.id, device: this.deviceId, room: this.roomId },
      'replaced by a newer connection',
    );
    this.end(CloseCode.Replaced, 'Replaced by a newer connection of this device');
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
      this.socket.sendText(protocolErrorFrame(result.error));
      return this.end(result.error.close, result.error.code);
    }
    this.state = 'assigning';
    this.deviceId = result.hello.deviceId;
    this.identity = result.hello.identity;
    this.assign(result.hello).catch((err: unknown) => {
      this.ctx.log.error({ err, conn: this.id, device: this.deviceId }, 'room assignment failed');
      this.fail(ErrorCode.Unavailable, 'Service unavailable, try again later', CloseCode.Unavailable);
    });
  }

  private async assign(hello: Hello): Promise<void> {
    const { lobby, registry, directory, writer, log } = this.ctx;
    const now = isoNow();
    const assignment = await lobby.assign(hello.deviceId, hello.roomId, now);
    if (this.state !== 'assigning') return; // the client left meanwhile
    if ('notFound' in assignment) {
      log.info({ conn: this.id, device: hello.deviceId, room: assignment.notFound }, 'room not found');
      return this.fail(
        ErrorCode.RoomNotFound,
        ErrorText.roomNotFound(assignment.notFound),
        CloseCode.RoomNotFound,
      );
    }
    const room = await registry.enter(assignment.roomId, this, () => this.state === 'assigning');
    if (!room) return;
    this.room = room;
    this.state = 'room';
    directory.setLastRoom(hello.deviceId, room.id);
    const at = new Date(this.openedAt).toISOString();
    writer.append({
      kind: 'device',
      deviceId: hello.deviceId,
      identity: hello.identity,
      roomId: room.id,
      at,
    });
    writer.append({
      kind: 'connection_open',
      id: this.id,
      deviceId: hello.deviceId,
      roomId: room.id,
      identity: hello.identity,
      clientIp: this.clientIp,
      at,
    });
    this.socket.sendText(roomFrame(room.id, assignment.status));
    log.info(
      {
        conn: this.id,
        device: hello.deviceId,
        identity: hello.identity,
        room: room.id,
        status: assignment.status,
      },
      'room assigned',
    );
    const early = this.early;
    this.early = [];
    for (const frame of early) {
      if (this.state !== 'room') break;
      this.onRoomFrame(frame.data, frame.isBinary);
    }
  }

  /** The hot path: one parse, then deliver the sender's own bytes and queue the record. */
  private onRoomFrame(data: Buffer, isBinary: boolean): void {
    const room = this.room!;
    if (data.length > this.ctx.maxFrameBytes) {
      this.socket.sendText(errorFrame(ErrorCode.PayloadTooLarge, this.tooLargeText(data.length)));
      return;
    }
    const text = frameText(data, isBinary);
    const message = parseObject(text);
    if (!message) {
      this.socket.sendText(INVALID_JSON_FRAME);
      return;
    }
    const now = isoNow();
    if (message.type === 'query_room') {
      this.socket.sendText(roomInfoFrame(room.id, room.members.size, room.othersOf(this)));
      this.ctx.writer.append({ kind: 'room_query', deviceId: this.deviceId, roomId: room.id, at: now });
      return;
    }
    const seq = ++room.seq;
    this.ctx.writer.append({
      kind: 'message',
      roomId: room.id,
      seq,
      fromDeviceId: this.deviceId,
      toDeviceId: null,
      content: text!,
      sentAt: now,
    });
    this.ctx.bus.publish({ roomId: room.id, seq, senderId: this.id, payload: data });
  }

  private tooLargeText(size: number): string {
    return `Message of ${size} bytes exceeds the limit of ${this.ctx.maxFrameBytes} bytes`;
  }

  private fail(code: ErrorCode, message: string, close: number): void {
    if (this.state === 'closed') return;
    this.socket.sendText(errorFrame(code, message));
    this.end(close, code);
  }

  /** Leaves the room and records the disconnect, once. */
  private finish(code: number): void {
    if (this.state === 'closed') return;
    const wasInRoom = this.state === 'room';
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.early = [];
    if (wasInRoom && this.room) {
      this.ctx.registry.leave(this.room, this);
      this.ctx.writer.append({ kind: 'connection_close', id: this.id, at: isoNow() });
    }
    this.ctx.log.info(
      {
        conn: this.id,
        device: this.deviceId || undefined,
        room: this.room?.id,
        code,
        seconds: Math.round((Date.now() - this.openedAt) / 1000),
      },
      'disconnected',
    );
  }
}
