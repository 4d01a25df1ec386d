/**
 * The Level 2 command frames' fields (PROTOCOL.md), read out of an object already parsed once by
 * frames.ts. Pure: what a field means for a room or a device is the caller's business.
 */
import { isSeq, type JsonObject } from './frames.js';

/** `history` without a limit returns this many messages (PROTOCOL.md); more than the cap is cut. */
export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 1000;

/** A command that does not have the shape it needs: the invalid_message text that answers it. */
export interface Invalid {
  readonly invalid: string;
}

// Made once: a malformed command costs no allocation to answer.
const INVALID_SEND: Invalid = { invalid: 'A send needs "to" (a device_id) and "data" (an object)' };
const INVALID_JOIN_ROOM: Invalid = { invalid: 'A join_room needs "room_id"' };
const INVALID_HISTORY: Invalid = {
  invalid: 'A history request takes "before_seq" and "limit", positive integers',
};

/** The answer to a frame (or a part of one) that JSON.stringify cannot re-encode. */
export const TOO_DEEP = 'Message is nested too deeply to be re-encoded';

/** `send`: the target device and the object it is sent. */
export function parseSend(message: JsonObject): { to: string; data: JsonObject } | Invalid {
  const { to, data } = message;
  if (typeof to !== 'string' || to === '' || !isObject(data)) return INVALID_SEND;
  return { to, data };
}

/** `join_room`: the room code, upper-cased (codes are case-insensitive on the wire). */
export function parseJoinRoom(message: JsonObject): { roomId: string } | Invalid {
  const wanted = message.room_id;
  if (typeof wanted !== 'string' || wanted === '') return INVALID_JOIN_ROOM;
  return { roomId: wanted.toUpperCase() };
}

/**
 * `history`: the messages before `before` (Infinity when not given: the newest), at most
 * `count` of them (the default when not given, never more than the cap).
 */
export function parseHistory(message: JsonObject): { before: number; count: number } | Invalid {
  const { before_seq: beforeSeq, limit } = message;
  if (
    (beforeSeq !== undefined && !(isSeq(beforeSeq) && beforeSeq > 0)) ||
    (limit !== undefined && !(isSeq(limit) && limit > 0))
  ) {
    return INVALID_HISTORY;
  }
  return {
    before: beforeSeq ?? Infinity,
    count: Math.min(limit ?? HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT),
  };
}

/** A broadcast's text without its ack_id (undefined when it cannot be re-encoded). */
export function withoutAckId(message: JsonObject): string | undefined {
  const { ack_id: _, ...rest } = message;
  return reencode(rest);
}

/**
 * JSON text of a parsed value. JSON.parse takes any depth but JSON.stringify recurses, so a
 * hostile nesting depth throws here: undefined then (answered invalid_message, TOO_DEEP). An
 * ack_id must pass it too: it is echoed back in acks and errors.
 */
export function reencode(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
