/**
 * Cluster mode: each device's last room in Redis, so that a device that reconnects to another
 * node lands in its last room even while the node it left still has that record queued. The
 * database keeps it for good (devices.last_room_id); Redis for a while.
 */
import type { Logger } from 'pino';
import type { SharedLastRooms } from './directory.js';
import type { RedisLink } from '../cluster/redis-link.js';

/** How long Redis remembers a device's last room; the database has it after that. */
const LAST_ROOM_TTL_S = 7 * 24 * 3600;

export class RedisLastRooms implements SharedLastRooms {
  constructor(
    private readonly link: RedisLink,
    private readonly log: Logger,
  ) {}

  async get(deviceId: string): Promise<string | undefined> {
    return (await this.link.commands.get(this.link.key('device', deviceId))) ?? undefined;
  }

  set(deviceId: string, roomId: string): void {
    this.link.commands
      .set(this.link.key('device', deviceId), roomId, 'EX', LAST_ROOM_TTL_S)
      .catch((err: unknown) =>
        // The database has it too: a node that misses it here reads the record.
        this.log.debug({ err: (err as Error).message, device: deviceId }, 'last room not kept in Redis'),
      );
  }
}
