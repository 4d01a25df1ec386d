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
    protocols: [1],
  });
}

export function errorFrame(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', message, code });
}

export function protocolErrorFrame(error: ProtocolError): string {
  return errorFrame(error.code, error.message);
}

export const INVALID_JSON_FRAME = errorFrame(ErrorCode.InvalidJson, ErrorText.InvalidJson);

export function roomFrame(roomId: string, status: RoomStatus): string {
  return JSON.stringify({
    type: 'room',
    room_id: roomId,
    status,
    message: `${status}: joined room ${roomId}`,
  });
}

export function roomInfoFrame(roomId: string, totalClients: number, clients: MemberInfo[]): string {
  return JSON.stringify({ type: 'room_info', room_id: roomId, total_clients: totalClients, clients });
}
