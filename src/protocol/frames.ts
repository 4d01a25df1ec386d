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
  /** The whole hello object, for fields later levels read (protocol, resume, token). */
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
  const hello: Hello = { deviceId, identity, fields: obj };
  if (roomId) hello.roomId = roomId.toUpperCase();
  return { ok: true, hello };
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
