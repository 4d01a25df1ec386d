/** The in-process bus: a publish is a direct, synchronous call of the room's handler. */
import type { Bus, RoomMessage, RoomMessageHandler } from './bus.js';

export class LocalBus implements Bus {
  private readonly handlers = new Map<string, RoomMessageHandler>();

  subscribe(roomId: string, handler: RoomMessageHandler): void {
    this.handlers.set(roomId, handler);
  }

  unsubscribe(roomId: string): void {
    this.handlers.delete(roomId);
  }

  publish(message: RoomMessage): void {
    this.handlers.get(message.roomId)?.(message);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
