/**
 * What sessions, rooms and the transport report as they work, for the metrics module
 * (src/metrics) to count: this layer says what happened, the edge decides what to do with it.
 * The first five are called on the hot path (per frame, per message, per recipient write): an
 * implementation must only add to numbers there, never allocate.
 */
export interface TrafficSink {
  /**
   * A frame read from a client (the hello and refused frames included), with its payload bytes,
   * is about to be handled; `frameDone` follows once it has been, synchronously. A message it
   * carries is delivered in between, unless it has to wait for its room's seqs.
   */
  frameRead(bytes: number): void;
  frameDone(): void;
  /** A frame written to a client: its payload bytes. */
  bytesSent(bytes: number): void;
  /** A message accepted into a room and numbered (once per message, at its publish). */
  messageReceived(): void;
  /** A message was written to `recipients` members of this process, the last of them just now. */
  messageDelivered(recipients: number): void;
  /** A connection's first room assignment ended: the status, or the code it was refused with. */
  handshakeEnded(outcome: string, seconds: number): void;
  /** An error frame was sent. */
  errorSent(code: string): void;
  /** A connection ended, with the close code it is recorded with. */
  closed(code: number): void;
}
