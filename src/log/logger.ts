/** Structured logs: JSON lines, or pino-pretty's human-readable lines on a terminal. */
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  return pino({
    name: 'room-manager',
    level: config.logLevel,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  });
}
