// Test databases on the MySQL/MariaDB and PostgreSQL test servers (see test/helpers/db.ts):
//   check <mysql|postgres>   exit 0 if the server answers, else 1 with the reason
//   clean <mysql|postgres>   drop every database the tests created (rm_t_*)
import { TEST_DB_PREFIX, adminQuery, dropDatabase, reachable } from '../test/helpers/db.js';

const [command, which] = process.argv.slice(2);
if ((command !== 'check' && command !== 'clean') || (which !== 'mysql' && which !== 'postgres')) {
  console.error('usage: test-db.ts check|clean mysql|postgres');
  process.exit(2);
}
const backend = which;

if (command === 'check') {
  const problem = await reachable(backend);
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
} else {
  const rows =
    backend === 'mysql'
      ? await adminQuery(backend, 'select schema_name as name from information_schema.schemata')
      : await adminQuery(backend, 'select datname as name from pg_database');
  const names = rows.map((r) => String(r.name ?? r.NAME)).filter((n) => n.startsWith(TEST_DB_PREFIX));
  for (const name of names) await dropDatabase(backend, name);
  console.log(`dropped ${names.length} ${backend} test database(s)`);
}
