/**
 * Every error code and WebSocket close code the server uses, in one place.
 *
 * Error frames look like `{"type":"error","message":<text>,"code":<ErrorCode>}`. The `message`
 * texts of the original Go server are kept byte for byte (Level 1 clients match on them); the
 * `code` is ours and is what new clients should match on.
 *
 * Close codes: 1000/1001/1009/1011 are the RFC 6455 meanings, 1012 the IANA registry's; 4000–4999
 * are ours, one per reason the server ends a connection. docs/protocol.md lists the same table.
 */

export const ErrorCode = {
  /** Hello was not JSON, not an object, or a field had the wrong type. */
  InvalidIdentity: 'invalid_identity',
  /** Hello without a non-empty `identity`. */
  MissingIdentity: 'missing_identity',
  /** Hello without a non-empty `device_id`. */
  MissingDeviceId: 'missing_device_id',
  /** Hello names a room that does not exist (or is not a well-formed room code). */
  RoomNotFound: 'room_not_found',
  /** A frame after the hello that is not a JSON object. The connection stays open. */
  InvalidJson: 'invalid_json',
  /** A frame larger than the configured maximum. */
  PayloadTooLarge: 'payload_too_large',
  /** No hello within the configured time. */
  HelloTimeout: 'hello_timeout',
  /** Messages faster than the per-connection rate limit (the frame is refused), or a flood before assignment. */
  RateLimited: 'rate_limited',
  /** Too many open connections from this IP address. */
  TooManyConnections: 'too_many_connections',
  /** Too many hellos / join_rooms naming rooms that do not exist, from this IP, this minute. */
  TooManyFailedJoins: 'too_many_failed_joins',
  /** The room has the most members it may have. */
  RoomFull: 'room_full',
  /** Authentication failed (missing, invalid or mismatched token, or a room the token does not allow). */
  Unauthorized: 'unauthorized',
  /** The connection's token expired; the connection is closed. */
  TokenExpired: 'token_expired',
  /**
   * HTTP only, never a frame: an upgrade whose Origin is not in --allowed-origins is answered
   * 403 with `{"error":"origin_not_allowed"}` before a WebSocket exists.
   */
  OriginNotAllowed: 'origin_not_allowed',
  /** Level 2: the hello asked for a protocol level this server does not speak. */
  UnsupportedProtocol: 'unsupported_protocol',
  /** Level 2: a `send` to a device that has no connection in the room. Nothing is recorded. */
  UnknownTarget: 'unknown_target',
  /** Level 2: a room message, query or history request while in no room (after leave_room). */
  NotInRoom: 'not_in_room',
  /** Level 2: a control message (send, join_room, history, …) with a missing or wrong field. */
  InvalidMessage: 'invalid_message',
  /** Something this request needs (the database) is not available right now. */
  Unavailable: 'unavailable',
  /** The server failed unexpectedly while handling this request. */
  Internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The original server's error texts, kept exactly. */
export const ErrorText = {
  InvalidIdentity: 'Invalid JSON format for identity',
  MissingIdentity: 'Missing identity field',
  MissingDeviceId: 'Missing device_id field',
  InvalidJson: 'Invalid JSON format',
  roomNotFound: (roomId: string) => `Room ${roomId} does not exist`,
} as const;

export const CloseCode = {
  /** RFC 6455: normal closure. */
  Normal: 1000,
  /**
   * RFC 6455: going away. Sent by clients (a browser leaving the page) and recorded as their
   * disconnect; the server itself stops with ServiceRestart.
   */
  GoingAway: 1001,
  /** RFC 6455: a text frame that is not valid UTF-8 (sent by the ws library itself). */
  InvalidPayload: 1007,
  /** RFC 6455: message too big — a frame beyond the hard cap (4 × the frame limit). */
  MessageTooBig: 1009,
  /** RFC 6455: internal error. */
  InternalError: 1011,
  /**
   * IANA "Service Restart": the server is stopping (SIGTERM drains its clients in batches over
   * --drain-ms). Retryable: reconnect with backoff, to this address or another node; Level 2
   * resumes with its last seq. Every message acked before it is in the record.
   */
  ServiceRestart: 1012,
  /** The hello was not valid JSON / not an object / had a field of the wrong type. */
  InvalidHello: 4000,
  /** The hello had no `identity`. */
  MissingIdentity: 4001,
  /** The hello had no `device_id`. */
  MissingDeviceId: 4002,
  /** Authentication failed, or the connection's token expired. */
  Unauthorized: 4003,
  /** The hello named a room that does not exist. */
  RoomNotFound: 4004,
  /** An operator closed the connection (a node-addressed kick); the reason says why. Terminal. */
  Kicked: 4006,
  /** No hello within the hello timeout. */
  HelloTimeout: 4008,
  /** This connection was replaced by a newer connection of the same device in the same room. */
  Replaced: 4009,
  /**
   * The client did not read what the server sent until its outgoing buffer passed the bound: the
   * socket is cut without a close frame (it would wait behind the unread data); recorded and
   * logged with this code.
   */
  SlowConsumer: 4010,
  /** No pong to the server's previous ping: the peer is gone; the socket is cut, recorded with this code. */
  DeadPeer: 4011,
  /** The hello frame was larger than the frame limit. */
  PayloadTooLarge: 4013,
  /** The hello named a room that has the most members it may have. */
  RoomFull: 4015,
  /** Rate limits exceeded: a message flood, too many connections or failed joins from one IP. */
  RateLimited: 4029,
  /** The database (in cluster mode also Redis) is unavailable and the hello needed it. */
  Unavailable: 4503,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
