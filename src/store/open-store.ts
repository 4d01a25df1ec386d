/** DATABASE_URL → the Store for it. */
import type { Store } from './store.js';
import { SqliteStore } from './sqlite-store.js';

export function openStore(databaseUrl: string): Store {
  if (databaseUrl.startsWith('sqlite:')) {
    let path = databaseUrl.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2); // sqlite://path, as some tools write it
    return SqliteStore.open(path);
  }
  throw new Error(`unsupported database URL scheme: ${databaseUrl.split(':')[0]}`);
}
