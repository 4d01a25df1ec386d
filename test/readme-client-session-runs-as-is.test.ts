/**
 * The README's "A client session" is a file a newcomer pastes and runs: run as is (its port made
 * the test server's), it prints what the README says it prints, room codes aside.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from './helpers/cli.js';
import { sqliteOnly } from './helpers/db.js';
import { useServer } from './helpers/server.js';

const srv = useServer();

/** The first fenced block of `lang` after `heading` in the README. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`\n## ${heading}\n`));
  const match = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  assert.ok(match, `README: no ${lang} block under "${heading}"`);
  return match[1]!;
}

it("the README's client session runs as a file and prints what the README shows", sqliteOnly, async () => {
  const script = readmeBlock('A client session', 'js');
  const shown = readmeBlock('A client session', 'text');
  assert.ok(script.includes("'ws://localhost:8765'"), 'the script connects to the default port');
  // In the project, so that it finds the `ws` package as a reader's clone does.
  mkdirSync(join(PROJECT_ROOT, '.tmp'), { recursive: true });
  const dir = mkdtempSync(join(PROJECT_ROOT, '.tmp', 'readme-client-'));
  try {
    const file = join(dir, 'client.mjs');
    writeFileSync(file, script.replace("'ws://localhost:8765'", `'${srv.url}'`));
    const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: dir });
    const codes = (text: string) =>
      text.trim().replace(/"room_id":"[A-Z0-9]{8}"|room [A-Z0-9]{8}/g, '<room>');
    assert.equal(codes(stdout), codes(shown));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
