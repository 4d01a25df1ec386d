/** Embedding room-manager: build a Config and run a RoomServer. */
export { RoomServer, type RoomServerOptions } from './server.js';
export { loadConfig, ConfigError } from './config/load.js';
export { SETTINGS, type Config } from './config/schema.js';
export { CloseCode, ErrorCode, ErrorText } from './protocol/codes.js';
export type { Bus, RoomMessage } from './bus/bus.js';
export type { Store, RecordEntry } from './store/store.js';
export { VERSION } from './version.js';
