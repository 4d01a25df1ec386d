/**
 * Making rows old for retention tests: statements run straight on a test server's database (any
 * backend, while the server runs), and timestamps in each backend's form.
 */
import BetterSqlite3 from 'better-sqlite3';
import { query, type TestBackend } from './db.js';

/** Long before any retention period a test sets. */
export const LONG_AGO = '2020-01-01T00:00:00.000Z';

/** An ISO timestamp as a statement on `backend` writes it (MySQL's DATETIME takes no `T…Z`). */
export function stamp(backend: TestBackend, iso: string): string {
  return backend === 'mysql' ? iso.slice(0, 10) + ' ' + iso.slice(11, 23) : iso;
}

function backendOf(databaseUrl: string): TestBackend {
  return databaseUrl.startsWith('sqlite:')
    ? 'sqlite'
    : databaseUrl.startsWith('mysql:')
      ? 'mysql'
      : 'postgres';
}

/** Runs a statement (`?` placeholders) on the database at `databaseUrl`. */
export async function execute(databaseUrl: string, sql: string, ...params: unknown[]): Promise<void> {
  const backend = backendOf(databaseUrl);
  if (backend !== 'sqlite') {
    await query(databaseUrl, backend, sql, params);
    return;
  }
  const db = new BetterSqlite3(databaseUrl.slice('sqlite:'.length));
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

/** Sets the time columns named (`column = ?`) to LONG_AGO on rows matching `where`. */
export async function age(
  databaseUrl: string,
  table: string,
  columns: string[],
  where: string,
  ...params: unknown[]
): Promise<void> {
  const old = stamp(backendOf(databaseUrl), LONG_AGO);
  await execute(
    databaseUrl,
    `update ${table} set ${columns.map((c) => `${c} = ?`).join(', ')} where ${where}`,
    ...columns.map(() => old),
    ...params,
  );
}

/** Inserts `count` messages sent LONG_AGO into room `roomId` (seq 1…count), 500 per statement. */
export async function insertOldMessages(databaseUrl: string, roomId: string, count: number): Promise<void> {
  const old = stamp(backendOf(databaseUrl), LONG_AGO);
  for (let first = 1; first <= count; first += 500) {
    const n = Math.min(500, count - first + 1);
    const params: unknown[] = [];
    for (let i = 0; i < n; i++)
      params.push('old-device', 'old', roomId, `{"old":${first + i}}`, old, first + i);
    await execute(
      databaseUrl,
      'insert into messages (from_device_id, from_identity, room_id, message_content, sent_at, seq) values ' +
        new Array(n).fill('(?, ?, ?, ?, ?, ?)').join(', '),
      ...params,
    );
  }
}
