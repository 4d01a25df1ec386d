/** DATABASE_URL → the Store for it. */
import type { Logger } from 'pino';
import type { Store } from './store.js';
import { SqliteStore, type SqliteWriterOptions } from './sqlite-store.js';
import { MysqlStore } from './mysql-store.js';
import { PostgresStore } from './postgres-store.js';
import { DEFAULT_POOL, type PoolOptions } from './pool-options.js';
import { backendOf } from '../config/backend.js';
import { databaseOpenError } from './open-errors.js';

export { backendOf };

export function openStore(
  databaseUrl: string,
  pool: PoolOptions = DEFAULT_POOL,
  log?: Logger,
  sqliteWriter: Partial<SqliteWriterOptions> = {},
): Store {
  switch (backendOf(databaseUrl)) {
    case 'sqlite': {
      let path = databaseUrl.slice('sqlite:'.length);
      if (path.startsWith('//')) path = path.slice(2); // sqlite://path, as some tools write it
      try {
        return SqliteStore.open(path, sqliteWriter);
      } catch (err) {
        throw databaseOpenError(err, path) ?? err;
      }
    }
    case 'mysql':
      return MysqlStore.open(databaseUrl, pool);
    case 'postgres':
      return PostgresStore.open(databaseUrl, pool, log);
    default:
      throw new Error(`unsupported database URL scheme: ${databaseUrl.split(':')[0]}`);
  }
}
