/**
 * A Level 2 resume (hello with `resume`): what the device missed since its last_seq, or why it
 * cannot be recovered, and the replay of it written as fast as the client reads.
 */
import type { Logger } from 'pino';
import type { RoomMessage } from '../bus/bus.js';
import { CloseCode } from '../protocol/codes.js';
import type { Room } from './room.js';
import type { RoomHistory } from './room-history.js';

/** What a resume needs of the server (SessionContext has it). */
export interface ResumeContext {
  log: Logger;
  history: RoomHistory;
  /** Most messages a resume replays; past it the reply says recovered: false. */
  resumeMaxMessages: number;
  /** The slow-consumer bound: a replay pauses for the client to read at half of it. */
  maxBufferedBytes: number;
  /** How long a replay waits for the client to read before closing it. */
  helloTimeoutMs: number;
}

export interface Recovery {
  recovered: boolean;
  /** Why not recovered (the room reply's `reason`). */
  reason?: string;
  replay: RoomMessage[];
}

/** What a resume after `after` replays (`current` being the room's seq), or why it cannot. */
export async function recover(
  ctx: ResumeContext,
  room: Room,
  deviceId: string,
  conn: number,
  after: number,
  current: number,
): Promise<Recovery> {
  if (after > current) {
    return {
      recovered: false,
      reason: `last_seq ${after} is beyond the room's seq ${current}`,
      replay: [],
    };
  }
  const max = ctx.resumeMaxMessages;
  if (current - after > max) {
    return {
      recovered: false,
      reason: `${current - after} messages were missed, more than the resume limit of ${max}`,
      replay: [],
    };
  }
  if (after === current) return { recovered: true, replay: [] };
  try {
    return {
      recovered: true,
      replay: await ctx.history.since(room, deviceId, after, current, max),
    };
  } catch (err) {
    ctx.log.warn({ conn, room: room.id, err: (err as Error).message }, 'resume: history unavailable');
    return {
      recovered: false,
      reason: 'history is unavailable: the database is not answering',
      replay: [],
    };
  }
}

/** The session a replay is written to. */
export interface ReplayTarget {
  /** Connection id, for the logs. */
  readonly conn: number;
  readonly room: Room;
  readonly socket: {
    sendText(text: string): void;
    sendEnvelope(message: RoomMessage): void;
    bufferedAmount(): number;
    drained(): Promise<boolean>;
  };
  /** False once the session ended or left `room` meanwhile: the replay stops. */
  stillEntering(): boolean;
  /** Sends a held live message (skipped if the replay already sent its seq). */
  sendHeld(message: RoomMessage): void;
  /** Ends the session: it does not read. */
  end(code: number, reason: string): void;
}

/**
 * Writes the replay, then what was held meanwhile (live messages and presence events, in order:
 * `held` may still grow while this runs). A replay can be far larger than the slow-consumer
 * bound, so it is written as the client reads it. False when the session ended before the end.
 */
export async function replayPaced(
  ctx: ResumeContext,
  target: ReplayTarget,
  replay: readonly RoomMessage[],
  held: readonly (RoomMessage | string)[],
): Promise<boolean> {
  const socket = target.socket;
  for (const m of replay) {
    socket.sendEnvelope(m);
    if (!(await paced(ctx, target))) return false;
  }
  for (let i = 0; i < held.length; i++) {
    const m = held[i]!;
    if (typeof m === 'string') socket.sendText(m);
    else target.sendHeld(m);
    if (!(await paced(ctx, target))) return false;
  }
  return true;
}

/**
 * Waits while the client has half the slow-consumer bound unread. False when the session ended
 * or the client did not read within the hello timeout (then it is closed).
 */
async function paced(ctx: ResumeContext, target: ReplayTarget): Promise<boolean> {
  if (target.socket.bufferedAmount() <= ctx.maxBufferedBytes / 2) return true;
  let timer: NodeJS.Timeout | undefined;
  const read = await Promise.race([
    target.socket.drained(),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ctx.helloTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (!target.stillEntering()) return false;
  if (!read) {
    ctx.log.warn({ conn: target.conn, room: target.room.id }, 'resume: the client does not read its replay');
    target.end(CloseCode.SlowConsumer, 'slow consumer');
    return false;
  }
  return true;
}
