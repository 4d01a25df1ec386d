/**
 * Retention's RoomGuard (store/retention.ts) on a server: a room in memory, or entering it, is
 * never forgotten; a room being forgotten is found by no hello (Directory.beginForget).
 */
import type { RecordWriter } from '../store/record-writer.js';
import type { RoomGuard } from '../store/retention.js';
import type { Directory } from './directory.js';
import type { RoomRegistry } from './room-registry.js';

export function forgetGuard(registry: RoomRegistry, directory: Directory, writer: RecordWriter): RoomGuard {
  return {
    async claim(roomId) {
      if (registry.inUse(roomId)) return false;
      directory.beginForget(roomId);
      try {
        // A hello that found the room before is in the registry by now, and records naming the
        // room (a connection's close) are in the database, where forgetRoom sees them.
        await writer.until(writer.ticket);
      } catch {
        directory.endForget(roomId); // the database is failing: another pass
        return false;
      }
      if (!registry.inUse(roomId)) return true;
      directory.endForget(roomId);
      return false;
    },
    release(roomId) {
      directory.endForget(roomId);
    },
  };
}
