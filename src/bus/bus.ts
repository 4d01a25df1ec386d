/**
 * The bus carries room traffic between the nodes that serve a room. A node subscribes to a room
 * while it has members in it and publishes every accepted message; each subscribed node (the
 * publisher included) delivers it to its own members. LocalBus is the in-process default; a
 * RedisBus will implement the same interface for a cluster.
 */

/** A message accepted into a room. */
export interface RoomMessage {
  roomId: string;
  seq: number;
  /** Connection id of the sender: it is not delivered back to the sender. */
  senderId: number;
  /** The sender's frame, byte for byte (UTF-8 JSON). */
  payload: Buffer;
  /**
   * The transport's framed form of the payload, made by the first recipient's socket and reused
   * by the rest: a broadcast is framed once.
   */
  wire?: readonly Buffer[];
}

export type RoomMessageHandler = (message: RoomMessage) => void;

export interface Bus {
  subscribe(roomId: string, handler: RoomMessageHandler): void;
  unsubscribe(roomId: string): void;
  publish(message: RoomMessage): void;
  close(): Promise<void>;
}
