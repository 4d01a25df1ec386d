/**
 * What sessions, rooms and the transport report as they work, for the metrics module
 * (src/metrics) to count: this layer says what happened, the edge decides what to do with it.
 * The first four are called on the hot path (per frame, per message, per recipient write): an
 * implementation must only add to numbers there, never allocate.
 */
export interface TrafficSink {
  /** A frame read from a client (the hello and refused frames included): its payload bytes. */
  bytesReceived(bytes: number): void;
  /** A frame written to a client: its payload bytes. */
  bytesSent(bytes: number): void;
  /** A message accepted into a room and numbered (once per message, at its publish). */
  messageReceived(): void;
  /**
   * A message written to `recipients` members of this process, the last of them just now;
   * `acceptedAt` is the performance.now() of its acceptance.
   */
  messageDelivered(recipients: number, acceptedAt: number): void;
  /** A connection's first room assignment ended: the status, or the code it was refused with. */
  handshakeEnded(outcome: string, seconds: number): void;
  /** An error frame was sent. */
  errorSent(code: string): void;
  /** A connection ended, with the close code it is recorded with. */
  closed(code: number): void;
}
