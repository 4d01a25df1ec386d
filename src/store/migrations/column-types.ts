import type { Dialect } from '../store.js';

export interface ColumnTypes {
  /** Millisecond timestamps: ISO text on SQLite, DATETIME(3) (UTC) / TIMESTAMPTZ(3) elsewhere. */
  timestamp: string;
  /** Holds the largest accepted frame (MySQL TEXT stops at 64 KiB; LONGTEXT holds 4 GiB). */
  content: string;
  bigint: 'bigint' | 'integer';
  /**
   * Names and codes (device_id, identity, room_id), compared and sorted byte for byte on every
   * backend as SQLite does: PostgreSQL columns get the "C" collation; MySQL tables are created
   * utf8mb4 with a binary collation (tableOptions; 0001 picks the server's NO PAD one).
   */
  varchar(n: number): string;
  /** Appended to CREATE TABLE. */
  tableOptions: string;
}

export function types(dialect: Dialect): ColumnTypes {
  switch (dialect) {
    case 'sqlite':
      return {
        timestamp: 'text',
        content: 'text',
        bigint: 'integer',
        varchar: (n) => `varchar(${n})`,
        tableOptions: '',
      };
    case 'mysql':
      return {
        timestamp: 'datetime(3)',
        content: 'longtext',
        bigint: 'bigint',
        varchar: (n) => `varchar(${n})`,
        tableOptions: 'engine=InnoDB default character set utf8mb4 collate utf8mb4_bin',
      };
    case 'postgres':
      return {
        timestamp: 'timestamptz(3)',
        content: 'text',
        bigint: 'bigint',
        varchar: (n) => `varchar(${n}) collate "C"`,
        tableOptions: '',
      };
  }
}
