import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './helpers/cli.js';
import { sqliteOnly } from './helpers/db.js';

describe('the CLI: bad settings are refused by name, --help lists the options', sqliteOnly, () => {
  it('serve --port abc exits non-zero naming --port / PORT', async () => {
    const run = runCli(['serve', '--port', 'abc']);
    const exit = await run.exited;
    assert.notEqual(exit.code, 0);
    assert.equal(exit.signal, null);
    const err = run.stderr.join('');
    assert.match(err, /--port/);
    assert.match(err, /\bPORT\b/);
  });

  it('serve --port 70000 (out of range) exits non-zero naming --port', async () => {
    const run = runCli(['serve', '--port', '70000']);
    const exit = await run.exited;
    assert.notEqual(exit.code, 0);
    assert.match(run.stderr.join(''), /--port/);
  });

  it('serve --help prints the options, including --database-url, and exits 0', async () => {
    const run = runCli(['serve', '--help']);
    const exit = await run.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    const out = run.stdout.join('\n');
    for (const option of [
      '--database-url',
      'DATABASE_URL',
      '--port',
      'PORT',
      '--hello-timeout-ms',
      '--max-frame-bytes',
      '--same-device',
      '--trusted-proxies',
    ]) {
      assert.ok(out.includes(option), `help mentions ${option}:\n${out}`);
    }
  });
});
