/**
 * Server → client frames. Constant frames are serialised once at load time.
 */
import { ErrorCode, ErrorText } from './codes.js';
import type { ProtocolError } from './frames.js';

export const SERVER_NAME = 'room-manager';

export type RoomStatus = 'joined_existing' | 'reconnected' | 'created_new';

export interface MemberInfo {
  device_id: string;
  identity: string;
}

export function connectionFrame(version: string): string {
  return JSON.stringify({
    type: 'connection',
    message: 'Connected successfully',
    server: SERVER_NAME,
    version,
    protocols: [1, 2],
  });
}

/** `ackId` (Level 2): the ack_id of the client message this error answers. */
export function errorFrame(code: ErrorCode, message: string, ackId?: unknown): string {
  return ackId === undefined
    ? JSON.stringify({ type: 'error', message, code })
    : JSON.stringify({ type: 'error', message, code, ack_id: ackId });
}

export function protocolErrorFrame(error: ProtocolError): string {
  return errorFrame(error.code, error.message);
}

export const INVALID_JSON_FRAME = errorFrame(ErrorCode.InvalidJson, ErrorText.InvalidJson);

/** What a Level 2 room reply adds: the members (the joiner included), the room's seq, resume. */
export interface RoomReplyLevel2 {
  members: MemberInfo[];
  seq: number;
  recovered?: boolean;
  reason?: string;
}

export function roomFrame(roomId: string, status: RoomStatus, level2?: RoomReplyLevel2): string {
  const reply = { type: 'room', room_id: roomId, status, message: `${status}: joined room ${roomId}` };
  return JSON.stringify(level2 ? { ...reply, ...level2 } : reply);
}

/**
 * The Level 2 envelope of a room message. `data` is spliced in as the JSON text it already is
 * (no re-serialisation); the rest is a handful of escaped strings.
 */
export function messageEnvelope(m: EnvelopedMessage): string {
  return (
    `{"type":"message","room_id":${JSON.stringify(m.roomId)},"seq":${m.seq},` +
    `"from":{"device_id":${JSON.stringify(m.fromDeviceId)},"identity":${JSON.stringify(m.fromIdentity)}},` +
    `"sent_at":"${m.sentAt}"${m.to === null ? '' : `,"to":${JSON.stringify(m.to)}`},"data":${m.text}}`
  );
}

/** What a Level 2 envelope says of a room message (the bus's RoomMessage is one). */
export interface EnvelopedMessage {
  roomId: string;
  seq: number;
  fromDeviceId: string;
  fromIdentity: string;
  sentAt: string;
  to: string | null;
  /** The client's JSON object, as the text it arrived as. */
  text: string;
}

export function memberEventFrame(
  type: 'member_joined' | 'member_left',
  roomId: string,
  member: MemberInfo,
): string {
  return JSON.stringify({ type, room_id: roomId, device_id: member.device_id, identity: member.identity });
}

export function ackFrame(ackId: unknown, seq: number): string {
  return JSON.stringify({ type: 'ack', ack_id: ackId, seq });
}

export function leftFrame(roomId: string): string {
  return JSON.stringify({ type: 'left', room_id: roomId });
}

export const PONG_FRAME = JSON.stringify({ type: 'pong' });

export function historyFrame(roomId: string, messages: readonly EnvelopedMessage[]): string {
  return `{"type":"history","room_id":${JSON.stringify(roomId)},"messages":[${messages.map(messageEnvelope).join(',')}]}`;
}

export function roomInfoFrame(roomId: string, totalClients: number, clients: MemberInfo[]): string {
  return JSON.stringify({ type: 'room_info', room_id: roomId, total_clients: totalClients, clients });
}
