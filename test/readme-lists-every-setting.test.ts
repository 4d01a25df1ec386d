import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { SETTINGS } from '../src/config/schema.js';
import { sqliteOnly } from './helpers/db.js';

it('README documents every configuration setting with its flag, variable and default', sqliteOnly, () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const s of SETTINGS) {
    const cells = readme
      .split('\n')
      .map((line) => line.split('|').map((cell) => cell.trim()))
      .find((row) => row[1] === `\`--${s.flag}\``);
    assert.ok(cells, `README has no row for --${s.flag}`);
    assert.equal(cells[2], `\`${s.env}\``, `README row for --${s.flag} names ${s.env}`);
    assert.equal(
      cells[3],
      `\`${s.shownDefault}\``,
      `README row for --${s.flag} shows default ${s.shownDefault}`,
    );
  }
});
