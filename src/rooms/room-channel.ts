/**
 * The one publish step: every message that enters a room (a client's, later the admin API's)
 * goes through publish(). The bus gives it the room's next seq and delivers it; here it is
 * recorded, counted, and acked once the record is durable. Nothing else numbers, records or
 * publishes a room message.
 */
import type { Bus, RoomMessage } from '../bus/bus.js';
import type { RecordWriter } from '../store/record-writer.js';
import type { TrafficSink } from './traffic.js';

/** Why a message was refused while nothing can be recorded. */
export const RECORD_UNAVAILABLE = 'the record cannot be written now (database and spool unavailable)';

export class RoomChannel {
  constructor(
    private readonly bus: Bus,
    private readonly writer: RecordWriter,
    private readonly traffic: TrafficSink,
  ) {}

  /**
   * Publishes `message` (its seq 0): `acked(seq)` once its record is durable, or `refused(reason)`
   * when it was not taken (neither delivered nor recorded). Refused at once while the record
   * cannot keep it (the database and the spool both refuse).
   */
  publish(
    message: RoomMessage,
    acked: ((seq: number) => void) | undefined,
    refused: (reason: string) => void,
  ): void {
    const { writer } = this;
    if (writer.stuck) return refused(RECORD_UNAVAILABLE);
    this.bus.publish(message, {
      numbered: (m) => {
        // The record's content is the text's UTF-8, which is `payload` byte for byte.
        writer.appendMessage(m.roomId, m.seq, m.fromDeviceId, m.fromIdentity, m.to, m.payload, m.sentAt);
        this.traffic.messageReceived();
        if (acked) {
          const seq = m.seq;
          writer.whenDurable(writer.ticket, () => acked(seq));
        }
      },
      refused,
    });
  }
}
