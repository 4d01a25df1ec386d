import type { Dialect } from '../store.js';

export interface ColumnTypes {
  /** Millisecond timestamps: ISO text on SQLite, DATETIME(3) / TIMESTAMPTZ(3) elsewhere. */
  timestamp: string;
  /** Holds the largest accepted frame (MySQL TEXT stops at 64 KiB). */
  content: string;
  bigint: 'bigint' | 'integer';
}

export function types(dialect: Dialect): ColumnTypes {
  switch (dialect) {
    case 'sqlite':
      return { timestamp: 'text', content: 'text', bigint: 'integer' };
    case 'mysql':
      return { timestamp: 'datetime(3)', content: 'longtext', bigint: 'bigint' };
    case 'postgres':
      return { timestamp: 'timestamptz(3)', content: 'text', bigint: 'bigint' };
  }
}
