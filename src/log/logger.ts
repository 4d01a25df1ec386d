/** Structured logs: JSON lines, or pino-pretty's human-readable lines on a terminal. */
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';

/** Longest a log line waits in the buffer. */
const FLUSH_MS = 200;

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  const options = {
    name: 'room-manager',
    level: config.logLevel,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  // Buffered writes: lines go out 4 KiB at a time (or within FLUSH_MS when it is quiet), so a burst
  // of connections costs a few syscalls instead of one per line. What is left is written
  // synchronously when the process exits.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), FLUSH_MS).unref();
  process.once('exit', () => destination.flushSync());
  return pino(options, destination);
}
