/**
 * The bus carries room traffic between the nodes that serve a room, and it owns the room's seq:
 * its publish step gives a message the room's next seq and delivers it to every node subscribed to
 * the room (the way Centrifuge's broker returns the offset). LocalBus is the in-process default
 * (synchronous: a publish is numbered, recorded and delivered before it returns); RedisBus
 * numbers and publishes in one atomic step in Redis, for a cluster.
 *
 * It also carries node-addressed commands (replace or kick a connection wherever it lives).
 * What it carries is plain data: wire caches belong to the transport.
 */

/** A message accepted into a room: everything any recipient needs, plain data. */
export interface RoomMessage {
  roomId: string;
  /** Per-room order (PROTOCOL.md Level 2): 1, 2, 3, … per recorded message; 0 until numbered. */
  seq: number;
  /** The node that accepted it. */
  node: string;
  /** Connection id of the sender (unique across nodes): it is not delivered back to the sender. */
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
}

export type RoomMessageHandler = (message: RoomMessage) => void;

/** What becomes of a published message: see Bus.publish. */
export interface PublishOutcome {
  numbered(message: RoomMessage): void;
  refused(reason: string): void;
}

/** Where a room's seqs stand in the record: its last seq, and the durable reservation above it. */
export interface SeqStart {
  last: number;
  reserved: number;
}

/** A command for the node that holds a connection. */
export type NodeCommand =
  /** A newer connection of the same device entered the room: the older one is closed. */
  | { type: 'replace'; connId: number }
  /** The connection is closed with this reason (the admin API's kick). */
  | { type: 'kick'; connId: number; reason: string };

export type NodeCommandHandler = (command: NodeCommand) => void;

export interface Bus {
  /** This node's id: every message carries its origin's, and commands are addressed by it. */
  readonly nodeId: string;
  /**
   * This node starts taking the room's messages (`handler`, in seq order). Resolves with the
   * room's highest seq so far once the room can number messages; rejects when it cannot (the
   * record or Redis is unavailable). `start` is asked only when the bus does not know the room's
   * seq yet. Messages with seq up to the resolved one are not handed to `handler`.
   */
  subscribe(roomId: string, handler: RoomMessageHandler, start: () => Promise<SeqStart>): Promise<number>;
  /**
   * This node stops taking the room's messages. Returns the room's last seq and durable
   * reservation when the caller keeps them (the local bus forgets the room), else undefined.
   */
  unsubscribe(roomId: string): SeqStart | undefined;
  /** The highest seq of an open room that this node knows of. */
  seq(roomId: string): number;
  /**
   * The publish step's core: gives `message` its room's next seq, calls `outcome.numbered` with
   * it (the caller records it and arms the ack there), and delivers it to every node subscribed
   * to the room, each in seq order. A room that waits for durable seqs holds its messages, in
   * order. `outcome.refused` instead when it cannot be numbered (too many wait already, the room
   * is not subscribed here, Redis is away): then it was neither delivered nor recorded. Exactly
   * one of the two is called; the local bus calls it before publish returns.
   */
  publish(message: RoomMessage, outcome: PublishOutcome): void;
  /**
   * A room's messages with `after` < seq ≤ `upTo`, oldest first, from a window every node shares;
   * undefined when the bus keeps none that reaches back to `after` (the local bus keeps none:
   * each room keeps its own in memory).
   */
  recent(roomId: string, after: number, upTo: number): Promise<RoomMessage[] | undefined>;
  /** Sends a command to the node that holds the connection (to this node: handled at once). */
  command(nodeId: string, command: NodeCommand): void;
  /** Where commands for this node go (one handler). */
  onCommand(handler: NodeCommandHandler): void;
  /** Whether messages can be published now (false while a cluster bus is cut off from Redis). */
  readonly connected: boolean;
  close(): Promise<void>;
}
