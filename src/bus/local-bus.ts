/**
 * The in-process bus: one node. A room's seq is a counter here, handed out from durable
 * reservations (SeqReservations); a publish is numbered, recorded (the caller's `numbered`) and
 * delivered to the room's handler synchronously, so the record and every member see one order.
 */
import type {
  Bus,
  NodeCommand,
  NodeCommandHandler,
  PublishOutcome,
  RoomMessage,
  RoomMessageHandler,
  SeqStart,
} from './bus.js';
import { RoomSeqs, type SeqReservations } from './seq-reservations.js';

interface OpenRoom {
  seqs: RoomSeqs;
  handler: RoomMessageHandler;
}

export class LocalBus implements Bus {
  private readonly rooms = new Map<string, OpenRoom>();
  private commandHandler: NodeCommandHandler = () => undefined;
  readonly connected = true;

  constructor(
    readonly nodeId: string,
    private readonly reservations: SeqReservations,
  ) {}

  async subscribe(
    roomId: string,
    handler: RoomMessageHandler,
    start: () => Promise<SeqStart>,
  ): Promise<number> {
    const open = this.rooms.get(roomId);
    if (open) {
      open.handler = handler;
      return open.seqs.seq;
    }
    const { last, reserved } = await start();
    const seqs = new RoomSeqs(roomId, last, reserved);
    try {
      await this.reservations.ready(seqs);
    } catch (err) {
      seqs.active = false;
      throw err;
    }
    this.rooms.set(roomId, { seqs, handler });
    return seqs.seq;
  }

  unsubscribe(roomId: string): SeqStart | undefined {
    const open = this.rooms.get(roomId);
    if (!open) return undefined;
    this.rooms.delete(roomId);
    open.seqs.active = false;
    return { last: open.seqs.seq, reserved: open.seqs.limit };
  }

  seq(roomId: string): number {
    return this.rooms.get(roomId)?.seqs.seq ?? 0;
  }

  publish(message: RoomMessage, outcome: PublishOutcome): void {
    const open = this.rooms.get(message.roomId);
    if (!open) return outcome.refused('the room is not open on this node');
    const { seqs } = open;
    if (seqs.canNumber) return this.number(open, message, outcome);
    const admit = (): void => {
      // The room closed while the message waited (its sender left with everyone else).
      if (!seqs.active) return outcome.refused('the room closed');
      if (seqs.canNumber) this.number(open, message, outcome);
      else seqs.hold(admit);
    };
    if (!seqs.hold(admit)) return outcome.refused('too many messages wait for seqs');
    this.reservations.starved(seqs);
  }

  private number(open: OpenRoom, message: RoomMessage, outcome: PublishOutcome): void {
    const { seqs } = open;
    message.seq = ++seqs.seq;
    if (seqs.seq >= seqs.renewAt) this.reservations.renew(seqs);
    outcome.numbered(message);
    open.handler(message);
  }

  async recent(): Promise<undefined> {
    return undefined;
  }

  command(_nodeId: string, command: NodeCommand): void {
    this.commandHandler(command);
  }

  onCommand(handler: NodeCommandHandler): void {
    this.commandHandler = handler;
  }

  async close(): Promise<void> {
    this.rooms.clear();
  }
}
