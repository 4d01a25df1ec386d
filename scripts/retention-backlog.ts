/**
 * Fills a database with a backlog of old messages for measuring retention (docs/operations.md):
 * `rows` messages sent 2020-01-01 in room ZZBACKLG, in one bulk INSERT … SELECT, not through a
 * server. The database must be migrated first (`room-manager migrate`).
 *
 *   npx tsx scripts/retention-backlog.ts --database-url sqlite:/tmp/r.db --rows 1000000
 */
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';

const { values } = parseArgs({
  options: { 'database-url': { type: 'string' }, rows: { type: 'string', default: '1000000' } },
});
const url = values['database-url'];
if (!url) throw new Error('--database-url is required');
const rows = Number(values.rows);
const columns = 'from_device_id, from_identity, room_id, message_content, sent_at, seq';
const started = Date.now();

if (url.startsWith('sqlite:')) {
  const db = new BetterSqlite3(url.slice('sqlite:'.length));
  db.pragma('busy_timeout = 5000');
  db.prepare(
    `with recursive n(i) as (select 1 union all select i + 1 from n where i < ?)
     insert into messages (${columns})
     select 'old-device', 'old', 'ZZBACKLG', '{"old":' || i || ',"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}', '2020-01-01T00:00:00.000Z', i from n`,
  ).run(rows);
  db.close();
} else if (url.startsWith('postgres')) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(
    `insert into messages (${columns})
     select 'old-device', 'old', 'ZZBACKLG', '{"old":' || i || ',"p":"' || repeat('x', 80) || '"}', '2020-01-01T00:00:00.000Z', i
     from generate_series(1, $1::bigint) as i`,
    [rows],
  );
  await client.query('analyze messages');
  await client.end();
} else {
  const conn = await mysql.createConnection({ uri: url });
  await conn.query('set session max_recursive_iterations = 100000000').catch(() => undefined);
  await conn.query('set session cte_max_recursion_depth = 100000000').catch(() => undefined);
  await conn.query(
    `insert into messages (${columns})
     with recursive n(i) as (select 1 union all select i + 1 from n where i < ?)
     select 'old-device', 'old', 'ZZBACKLG', concat('{"old":', i, ',"p":"', repeat('x', 80), '"}'), '2020-01-01 00:00:00.000', i from n`,
    [rows],
  );
  await conn.end();
}
console.log(`${rows} old messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);
