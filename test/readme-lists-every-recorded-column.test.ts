/**
 * The README's "What is recorded" names every column of every table the migrations create, and
 * no column they do not.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openStore } from '../src/store/open-store.js';
import { PROJECT_ROOT } from './helpers/cli.js';
import { sqliteOnly } from './helpers/db.js';

it('README "What is recorded" lists exactly the columns of the migrated tables', sqliteOnly, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rm-columns-'));
  try {
    const path = join(dir, 'record.db');
    const store = openStore(`sqlite:${path}`);
    await store.migrate();
    await store.close();
    const db = new BetterSqlite3(path, { readonly: true });
    const columnsOf = (table: string) =>
      (db.prepare(`pragma table_info(${table})`).all() as { name: string }[]).map((c) => c.name).sort();

    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## What is recorded\n'), readme.indexOf('\n## HTTP'));
    const ticked = (text: string) => [...text.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
    const tables = (
      db.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]
    )
      .map((t) => t.name)
      .filter((t) => !t.startsWith('sqlite_') && !t.startsWith('schema_migrations'));
    assert.ok(tables.length >= 6, `tables: ${tables.join(', ')}`);
    for (const table of tables) {
      const row = section.split('\n').find((line) => line.startsWith(`| \`${table}\``));
      if (row) {
        assert.deepEqual(
          [...new Set(ticked(row.split('|')[2]!))].sort(),
          columnsOf(table),
          `README row of ${table}`,
        );
      } else {
        // A table beside the record (writer_lease): its paragraph names every column.
        const paragraph = section.split('\n\n').find((p) => p.includes(`\`${table}\` (`));
        assert.ok(paragraph, `README "What is recorded" says nothing of ${table}`);
        for (const column of columnsOf(table))
          assert.ok(ticked(paragraph).includes(column), `${table}.${column}`);
      }
    }
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
