/**
 * docs/protocol.md lists every close code and every error code of src/protocol/codes.ts, and no
 * other; docs/security.md names none that does not exist. A code added to one place and not the
 * other fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { CloseCode, ErrorCode } from '../src/protocol/codes.js';
import { PROJECT_ROOT } from './helpers/cli.js';
import { sqliteOnly } from './helpers/db.js';

const doc = (name: string) => readFileSync(join(PROJECT_ROOT, 'docs', name), 'utf8');

/** The first cells of the table under `## heading` (empty cells, a code's further rows, skipped). */
function firstCells(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `no "## ${heading}" section`);
  const section = markdown.slice(start + 1).split(/\n## /)[0]!;
  return section
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2) // the header and its --- line
    .map((line) => line.split('|')[1]!.trim())
    .filter(Boolean);
}

const sorted = <T>(values: Iterable<T>) => [...values].sort();

it('docs/protocol.md "Close codes" lists exactly the CloseCode values', sqliteOnly, () => {
  const listed = firstCells(doc('protocol.md'), 'Close codes');
  assert.equal(new Set(listed).size, listed.length, `a code listed twice: ${listed.join(', ')}`);
  assert.deepEqual(sorted(listed.map(Number)), sorted(Object.values(CloseCode)));
});

it('docs/protocol.md "Error codes" lists exactly the ErrorCode values', sqliteOnly, () => {
  const listed = firstCells(doc('protocol.md'), 'Error codes').map((cell) => {
    const code = /^`([a-z_]+)`$/.exec(cell)?.[1];
    assert.ok(code, `not a code: ${cell}`);
    return code;
  });
  assert.equal(new Set(listed).size, listed.length, `a code listed twice: ${listed.join(', ')}`);
  assert.deepEqual(sorted(listed), sorted(Object.values(ErrorCode)));
});

it('docs/security.md names only codes that exist', sqliteOnly, () => {
  const text = doc('security.md');
  const closes = new Set<number>(Object.values(CloseCode));
  for (const [, n] of text.matchAll(/close \*\*(\d{4})\*\*/g)) assert.ok(closes.has(Number(n)), `close ${n}`);
  const errors = new Set<string>(Object.values(ErrorCode));
  for (const [, code] of text.matchAll(/error `([a-z_]+)`/g)) assert.ok(errors.has(code!), `error ${code}`);
});
