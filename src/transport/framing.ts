/**
 * Frame a broadcast once, write the same bytes to every recipient (as socket.io does with
 * `wsPreEncodedFrame`). ws's public send() frames per call; its Sender exposes the framing as a
 * static function and the write as `sendFrame`, which is what send() itself ends in when
 * permessage-deflate is off (it is, here: the server never negotiates it).
 */
import * as ws from 'ws';
import type { WebSocket } from 'ws';
import type { OutgoingFrame } from '../bus/bus.js';

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
// Not in @types/ws, but exported by ws's ESM entry point.
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };
if (typeof Sender?.frame !== 'function') throw new Error('ws no longer exports Sender.frame');

interface SenderInternals {
  _sender: { sendFrame(list: readonly Buffer[], cb?: (err?: Error) => void): void };
}

const TEXT: FrameOptions = { fin: true, opcode: 0x01, mask: false, readOnly: true, rsv1: false };

export function sendFramed(socket: WebSocket, frame: OutgoingFrame): void {
  frame.wire ??= Sender.frame(frame.payload, TEXT);
  (socket as unknown as SenderInternals)._sender.sendFrame(frame.wire);
}
