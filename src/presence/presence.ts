/**
 * Who is in a room, on every node: its connections, each with its device, identity, protocol
 * level and the node that holds it. LocalPresence keeps it in this process; RedisPresence keeps
 * it in Redis for a cluster, and a mirror of each room this node watches, so that reads are
 * synchronous (room_info, unknown_target, the full-room check, the same-device rule).
 *
 * Presence is per device: a device's first connection in a room is a join, its last one leaving
 * is a leave (a replaced connection is neither).
 */

/** One connection in a room. */
export interface PresenceEntry {
  /** Connection id (the `connections` row): unique across nodes. */
  connId: number;
  /** The node that holds the connection. */
  node: string;
  deviceId: string;
  identity: string;
  level: 1 | 2;
}

/** What a watcher of a room is told, in the order it happened. */
export interface PresenceListener {
  /** A device's first connection entered the room. */
  deviceJoined(entry: PresenceEntry): void;
  /** A device's last connection left the room (`entry` is that connection). */
  deviceLeft(entry: PresenceEntry): void;
}

export interface Presence {
  /**
   * Starts keeping this node's view of the room (members on every node), telling `listener` of
   * each join and leave from then on. Resolves once the view is current.
   */
  watch(roomId: string, listener: PresenceListener): Promise<void>;
  /** Stops keeping the view (this node has no member in the room left). */
  unwatch(roomId: string): void;
  /**
   * Adds a connection to a room this node watches. 'full' (nothing added) when the room has
   * `maxMembers` connections and none of this device (0: no limit). Whether the device was new
   * to the room is told to the watchers, this node's included, before it resolves.
   */
  join(roomId: string, entry: PresenceEntry, maxMembers: number): Promise<'joined' | 'full'>;
  /** Removes a connection (the listeners are told when it was its device's last). */
  leave(roomId: string, connId: number): void;
  /** A watched room's connections, in the order they joined. */
  connections(roomId: string): readonly PresenceEntry[];
  /** Whether a device has a connection in a watched room. */
  hasDevice(roomId: string, deviceId: string): boolean;
  /** Connections in a watched room. */
  count(roomId: string): number;
  close(): Promise<void>;
}
