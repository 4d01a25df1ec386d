/**
 * Turning WebSocket frames into protocol values: one parse per frame, no more.
 */
import { isUtf8 } from 'node:buffer';
import { ErrorCode, ErrorText, CloseCode } from './codes.js';

/** The longest device_id / identity accepted, in characters (fits VARCHAR(255) everywhere). */
export const MAX_NAME_CHARS = 255;
const ROOM_ID = /^[A-Z0-9]{8}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export type JsonObject = Record<string, unknown>;

/**
 * A frame's text. Text frames arrive UTF-8-validated by ws; a binary frame counts as text only
 * when its bytes are valid UTF-8 (PROTOCOL.md), otherwise it is invalid JSON (undefined here).
 */
export function frameText(data: Buffer, isBinary: boolean): string | undefined {
  if (isBinary && !isUtf8(data)) return undefined;
  return data.toString('utf8');
}

/** JSON.parse that returns undefined unless the text is a JSON object. */
export function parseObject(text: string | undefined): JsonObject | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as JsonObject)
    : undefined;
}

export function isRoomId(s: string): boolean {
  return ROOM_ID.test(s);
}

export interface Hello {
  deviceId: string;
  identity: string;
  /** Upper-cased room code the client asked for, if any. */
  roomId?: string;
  /** 1 (the original protocol) unless the hello says `"protocol": 2`. */
  level: 1 | 2;
  /** Level 2 resume: back into this room, replaying every message after `lastSeq`. */
  resume?: { roomId: string; lastSeq: number };
  /** The whole hello object, for fields later levels read (token). */
  fields: JsonObject;
}

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  close: number;
}

export type HelloResult = { ok: true; hello: Hello } | { ok: false; error: ProtocolError };

const invalidHello: ProtocolError = {
  code: ErrorCode.InvalidIdentity,
  message: ErrorText.InvalidIdentity,
  close: CloseCode.InvalidHello,
};

/**
 * Validates a hello the way the original did: a JSON `null` counts as absent (Go decoded it to
 * ""), any other non-string value is a wrong type; identity is checked before device_id.
 */
export function parseHello(text: string | undefined): HelloResult {
  const obj = parseObject(text);
  if (!obj) return { ok: false, error: invalidHello };
  const identity = optionalString(obj.identity);
  const deviceId = optionalString(obj.device_id);
  const roomId = optionalString(obj.room_id);
  if (identity === null || deviceId === null || roomId === null) return { ok: false, error: invalidHello };
  if (!identity) {
    return {
      ok: false,
      error: {
        code: ErrorCode.MissingIdentity,
        message: ErrorText.MissingIdentity,
        close: CloseCode.MissingIdentity,
      },
    };
  }
  if (!deviceId) {
    return {
      ok: false,
      error: {
        code: ErrorCode.MissingDeviceId,
        message: ErrorText.MissingDeviceId,
        close: CloseCode.MissingDeviceId,
      },
    };
  }
  for (const [name, value] of [
    ['identity', identity],
    ['device_id', deviceId],
  ] as const) {
    if (charLength(value) > MAX_NAME_CHARS) {
      return {
        ok: false,
        error: {
          code: ErrorCode.InvalidIdentity,
          message: `Field ${name} is longer than ${MAX_NAME_CHARS} characters`,
          close: CloseCode.InvalidHello,
        },
      };
    }
    // U+0000 cannot be stored in a PostgreSQL text column, and a lone surrogate cannot be encoded
    // as UTF-8 at all: either would make the device's record unwritable.
    if (value.includes('\u0000') || LONE_SURROGATE.test(value)) {
      return {
        ok: false,
        error: {
          code: ErrorCode.InvalidIdentity,
          message: `Field ${name} contains a NUL character or invalid Unicode`,
          close: CloseCode.InvalidHello,
        },
      };
    }
  }
  const protocol = obj.protocol ?? 1;
  if (protocol !== 1 && protocol !== 2) {
    return {
      ok: false,
      error: {
        code: ErrorCode.UnsupportedProtocol,
        message: `Unsupported protocol ${JSON.stringify(protocol)}: this server speaks 1 and 2`,
        close: CloseCode.InvalidHello,
      },
    };
  }
  const hello: Hello = { deviceId, identity, level: protocol, fields: obj };
  if (roomId) hello.roomId = roomId.toUpperCase();
  // A Level 1 hello with a `resume` field is left alone: the original ignored unknown fields.
  if (protocol === 2 && obj.resume !== undefined && obj.resume !== null) {
    const r = obj.resume as JsonObject;
    if (typeof r !== 'object' || Array.isArray(r) || typeof r.room_id !== 'string' || !isSeq(r.last_seq)) {
      return {
        ok: false,
        error: {
          code: ErrorCode.InvalidMessage,
          message: 'Field resume must be {"room_id": string, "last_seq": integer >= 0}',
          close: CloseCode.InvalidHello,
        },
      };
    }
    hello.resume = { roomId: r.room_id.toUpperCase(), lastSeq: r.last_seq };
  }
  return { ok: true, hello };
}

/** A seq as a client may send it: an integer from 0 up. */
export function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** string → itself, absent or null → '', any other type → null (wrong type). */
function optionalString(v: unknown): string | null {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : null;
}

/** Length in Unicode code points, without allocating for the common short case. */
function charLength(s: string): number {
  if (s.length <= MAX_NAME_CHARS) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}
