/**
 * The bus carries room traffic between the nodes that serve a room. A node subscribes to a room
 * while it has members in it and publishes every accepted message; each subscribed node (the
 * publisher included) delivers it to its own members. LocalBus is the in-process default; a
 * RedisBus will implement the same interface for a cluster.
 */

/**
 * A message accepted into a room: everything any recipient needs, plain data (a cluster bus can
 * serialise it as is). The two wire forms are made lazily, once per message, by the first
 * recipient of each kind.
 */
export interface RoomMessage {
  roomId: string;
  /** Per-room order (PROTOCOL.md Level 2): 1, 2, 3, … per recorded message. */
  seq: number;
  /** Connection id of the sender: it is not delivered back to the sender. */
  senderId: number;
  fromDeviceId: string;
  fromIdentity: string;
  sentAt: string;
  /** Target device of a directed message (`send`); null for a broadcast. */
  to: string | null;
  /**
   * What a Level 1 recipient gets, UTF-8 JSON: the sender's frame byte for byte for a plain
   * broadcast, else the data object's text (a `send`'s inner object, a message without ack_id).
   */
  payload: Buffer;
  /** The same JSON as text: the `data` of the Level 2 envelope and the recorded content. */
  text: string;
  /** The transport's framed form of `payload` (Level 1), made once for all recipients. */
  wire?: readonly Buffer[];
  /** The framed Level 2 envelope, made once for all Level 2 recipients. */
  envelopeWire?: readonly Buffer[];
}

export type RoomMessageHandler = (message: RoomMessage) => void;

export interface Bus {
  subscribe(roomId: string, handler: RoomMessageHandler): void;
  unsubscribe(roomId: string): void;
  publish(message: RoomMessage): void;
  close(): Promise<void>;
}
