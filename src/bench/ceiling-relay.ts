/**
 * The ceiling: the least a server can do and still speak Level 1 of the room protocol
 * (shared/PROTOCOL.md), with nothing recorded. The bench runs it beside room-manager so every
 * figure can be read as "how close to a bare relay on this machine".
 *
 * - on connect: the connection frame;
 * - the hello: `room_id` → join if the room exists (else the error and close 4004); no room_id →
 *   the device's last room (reconnected), else a new random 8-character room (created_new);
 * - then `query_room` → room_info; any other JSON object → the same bytes to every other member;
 *   anything else → the Invalid JSON format error.
 *
 * Node + ws, perMessageDeflate off, all state in Maps. Run as its own process:
 *   node dist/bench/ceiling-relay.js --port 0 [--host 127.0.0.1]
 * It prints one JSON line {"msg":"listening","port":N} and stops on SIGINT/SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';

const CONNECTION_FRAME = JSON.stringify({
  type: 'connection',
  message: 'Connected successfully',
  server: 'ceiling-relay',
});
const ROOM_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const MAX_FRAME_BYTES = 65536;

interface Member {
  ws: WebSocket;
  deviceId: string;
  identity: string;
}

function error(code: string, message: string): string {
  return JSON.stringify({ type: 'error', message, code });
}

function newRoomId(taken: Map<string, unknown>): string {
  for (;;) {
    let id = '';
    while (id.length < 8) {
      // 36 does not divide 256: bytes ≥ 252 are dropped so every character is equally likely.
      for (const b of randomBytes(12)) if (b < 252 && id.length < 8) id += ROOM_ALPHABET[b % 36];
    }
    if (!taken.has(id)) return id;
  }
}

export interface CeilingRelay {
  port: number;
  close(): Promise<void>;
}

/** Starts the relay on host:port (port 0 = any free port). */
export async function startCeilingRelay(port: number, host = '127.0.0.1'): Promise<CeilingRelay> {
  /** Rooms ever created (they outlive their members, as in the protocol) → live members. */
  const rooms = new Map<string, Set<Member>>();
  const lastRoom = new Map<string, string>();

  const http: Server = createServer((_req, res) => {
    const body = JSON.stringify({ server: 'ceiling-relay', rooms: rooms.size, pendingRecords: 0 });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  const wss = new WebSocketServer({
    server: http,
    perMessageDeflate: false,
    maxPayload: MAX_FRAME_BYTES * 4,
  });

  wss.on('connection', (ws) => {
    let member: Member | undefined;
    let room: Set<Member> | undefined;
    let roomId = '';
    ws.send(CONNECTION_FRAME);

    ws.on('message', (data: Buffer) => {
      let value: unknown;
      try {
        value = JSON.parse(data.toString('utf8'));
      } catch {
        value = undefined;
      }
      const obj =
        typeof value === 'object' && value !== null && !Array.isArray(value)
          ? (value as Record<string, unknown>)
          : undefined;

      if (!member) {
        // The hello.
        const identity = obj?.identity ?? '';
        const deviceId = obj?.device_id ?? '';
        const wanted = obj?.room_id ?? '';
        if (
          !obj ||
          typeof identity !== 'string' ||
          typeof deviceId !== 'string' ||
          typeof wanted !== 'string'
        ) {
          ws.send(error('invalid_identity', 'Invalid JSON format for identity'));
          return ws.close(4000, 'invalid_identity');
        }
        if (!identity) {
          ws.send(error('missing_identity', 'Missing identity field'));
          return ws.close(4001, 'missing_identity');
        }
        if (!deviceId) {
          ws.send(error('missing_device_id', 'Missing device_id field'));
          return ws.close(4002, 'missing_device_id');
        }
        let status: string;
        if (wanted) {
          roomId = wanted.toUpperCase();
          if (!rooms.has(roomId)) {
            ws.send(error('room_not_found', `Room ${roomId} does not exist`));
            return ws.close(4004, 'room_not_found');
          }
          status = 'joined_existing';
        } else if (lastRoom.has(deviceId)) {
          roomId = lastRoom.get(deviceId)!;
          status = 'reconnected';
        } else {
          roomId = newRoomId(rooms);
          rooms.set(roomId, new Set());
          status = 'created_new';
        }
        lastRoom.set(deviceId, roomId);
        room = rooms.get(roomId)!;
        member = { ws, deviceId, identity };
        room.add(member);
        ws.send(
          JSON.stringify({
            type: 'room',
            room_id: roomId,
            status,
            message: `${status}: joined room ${roomId}`,
          }),
        );
        return;
      }

      if (!obj) {
        ws.send(error('invalid_json', 'Invalid JSON format'));
        return;
      }
      if (obj.type === 'query_room') {
        const clients = [...room!]
          .filter((m) => m !== member)
          .map((m) => ({ device_id: m.deviceId, identity: m.identity }));
        ws.send(JSON.stringify({ type: 'room_info', room_id: roomId, total_clients: room!.size, clients }));
        return;
      }
      // The sender's own bytes, as a text frame, to everyone else in the room.
      for (const other of room!) if (other !== member) other.ws.send(data, { binary: false });
    });

    ws.on('close', () => {
      if (member) room?.delete(member);
    });
    ws.on('error', () => {
      /* the close event follows */
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  return {
    port: (http.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        http.close(() => resolve());
      }),
  };
}

/** `node ceiling-relay.js --port 0 --host 127.0.0.1` */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const relay = await startCeilingRelay(Number(values.port), values.host);
  console.log(
    JSON.stringify({ msg: 'listening', port: relay.port, server: 'ceiling-relay', pid: process.pid }),
  );
  const stop = (): void => {
    relay.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
