/**
 * Cluster mode (--redis-url / REDIS_URL) shares one database between nodes: an embedded SQLite
 * file cannot be shared, so `serve` with SQLite and a Redis URL stops at start, as a settings
 * error (exit 2), with one line that says why. It is refused before Redis is touched: the URL
 * here points at a port where nothing listens. Runs on every backend (no server database needed).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/cluster.js';
import { removeDir, tempDir } from './helpers/server.js';

/** The CLI's exit, stderr and stdout lines; killed if it does not exit (it should at once). */
async function cli(args: string[], env?: NodeJS.ProcessEnv) {
  const run = runCli(args, env);
  const bound = setTimeout(() => run.proc.kill('SIGKILL'), 60_000);
  const exit = await run.exited;
  clearTimeout(bound);
  return { ...exit, stderr: run.stderr.join(''), stdout: run.stdout };
}

/** Says that cluster mode is what needs it, and which databases it takes. */
function assertSaysWhy(line: string): void {
  assert.match(line, /cluster mode/i);
  assert.match(line, /mysql|mariadb/i);
  assert.match(line, /postgres/i);
}

describe('cluster mode needs a shared database: SQLite with --redis-url is refused at start', () => {
  const dir = tempDir();
  after(() => removeDir(dir));

  it('serve --database-url sqlite:… --redis-url … exits 2 with one line naming MySQL/MariaDB or PostgreSQL', async () => {
    const redisUrl = `redis://127.0.0.1:${await freePort()}`;
    const run = await cli([
      'serve',
      '--port',
      '0',
      '--database-url',
      `sqlite:${join(dir, 'flag.db')}`,
      '--redis-url',
      redisUrl,
    ]);
    assert.deepEqual({ code: run.code, signal: run.signal }, { code: 2, signal: null }, run.stderr);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line on stderr:\n${run.stderr}`);
    assertSaysWhy(lines[0]!);
  });

  it('the same from the environment (DATABASE_URL, REDIS_URL)', async () => {
    const run = await cli(['serve', '--port', '0'], {
      DATABASE_URL: `sqlite:${join(dir, 'env.db')}`,
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    });
    assert.deepEqual({ code: run.code, signal: run.signal }, { code: 2, signal: null }, run.stderr);
    assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line on stderr:\n${run.stderr}`);
    assertSaysWhy(run.stderr);
  });
});
