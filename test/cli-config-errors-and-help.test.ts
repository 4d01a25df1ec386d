import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, serveCli } from './helpers/cli.js';
import { sqliteOnly } from './helpers/db.js';
import { openClient, nextAfterGreeting, tryHello } from './helpers/hostile.js';

/** The CLI's exit and stderr, stdout as lines. */
async function cli(args: string[], env?: NodeJS.ProcessEnv) {
  const run = runCli(args, env);
  const exit = await run.exited;
  return { ...exit, stderr: run.stderr.join(''), stdout: run.stdout };
}

/** The one line a refusal prints: exit 2, stderr a single line matching `line`, nothing on stdout. */
async function refusedInOneLine(args: string[], line: RegExp): Promise<void> {
  const run = await cli(args);
  assert.deepEqual({ code: run.code, signal: run.signal }, { code: 2, signal: null }, run.stderr);
  assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line on stderr:\n${run.stderr}`);
  assert.match(run.stderr, line);
  assert.deepEqual(run.stdout, [], 'no help text below it');
}

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

  it('serve --port abc says what a port is, not "NaN"', async () => {
    await refusedInOneLine(
      ['serve', '--port', 'abc'],
      /^Invalid setting --port \/ PORT \(got "abc"\): expected a whole number from 0 to 65535$/m,
    );
  });

  it('every number setting refuses a fraction or an empty value, from a flag or its variable', async () => {
    await refusedInOneLine(
      ['serve', '--max-frame-bytes', '1.5'],
      /--max-frame-bytes \/ MAX_FRAME_BYTES \(got "1.5"\): expected a whole number from 1024 to 16777216/,
    );
    await refusedInOneLine(['serve', '--port='], /--port \/ PORT \(got ""\): expected a whole number/);
    const run = await cli(['migrate', '--database-url', 'sqlite::memory:'], { DB_POOL_MAX: 'ten' });
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--db-pool-max \/ DB_POOL_MAX \(got "ten"\): expected a whole number from 1 to 1000/,
    );
  });

  it('an unknown option is one line naming the nearest option, not the help', async () => {
    await refusedInOneLine(
      ['serve', '--prot', '9000'],
      /^Unknown option --prot for room-manager serve\. Did you mean --port\? \(room-manager serve --help lists every option\)$/m,
    );
    await refusedInOneLine(['serve', '--databse-url', 'sqlite::memory:'], /Did you mean --database-url\?/);
    await refusedInOneLine(
      ['migrate', '--log-levle', 'info'],
      /room-manager migrate\. Did you mean --log-level\?/,
    );
    // Nothing near: no guess.
    await refusedInOneLine(
      ['serve', '--frobnicate'],
      /^Unknown option --frobnicate for room-manager serve\. \(/m,
    );
  });

  it('an unknown command is one line naming the nearest command', async () => {
    await refusedInOneLine(['sevre'], /^Unknown command sevre for room-manager\. Did you mean serve\?/m);
    await refusedInOneLine(['migrat'], /Did you mean migrate\?/);
    await refusedInOneLine(['--port', '80'], /takes a command first.*room-manager serve --port/);
  });

  it('an option without its value, or a stray argument, is one line', async () => {
    await refusedInOneLine(['serve', '--port'], /^Option --port needs a value/m);
    await refusedInOneLine(['serve', '--port', '--host', '::1'], /^Option --port needs a value/m);
    await refusedInOneLine(['serve', 'now'], /^Unexpected argument "now" for room-manager serve/m);
  });

  it('migrate refuses the options of serve, saying they do not apply to it', async () => {
    await refusedInOneLine(
      ['migrate', '--port', '5'],
      /^Option --port does not apply to room-manager migrate \(room-manager migrate --help lists every option\)$/m,
    );
    await refusedInOneLine(
      ['migrate', '--limit-loopback'],
      /--limit-loopback does not apply to room-manager migrate/,
    );
    // Its own settings are taken.
    const ok = await cli(['migrate', '--database-url', 'sqlite::memory:', '--log-level', 'warn']);
    assert.deepEqual({ code: ok.code, signal: ok.signal }, { code: 0, signal: null }, ok.stderr);
  });

  it('--database-url sqlite: (no file) is refused, sqlite::memory: is taken', async () => {
    await refusedInOneLine(
      ['migrate', '--database-url', 'sqlite:'],
      /^Invalid setting --database-url \/ DATABASE_URL \(got "sqlite:"\): names no file.*sqlite::memory:/m,
    );
    await refusedInOneLine(['serve', '--database-url', 'sqlite://'], /names no file/);
    const run = await cli(['migrate', '--database-url', 'sqlite::memory:']);
    assert.equal(run.code, 0, run.stderr);
  });

  it('--version and -v work after a command too, like --help', async () => {
    for (const args of [
      ['--version'],
      ['-v'],
      ['serve', '--version'],
      ['migrate', '-v'],
      ['serve', '--port', '1', '-v'],
    ]) {
      const run = await cli(args);
      assert.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stdout.join('\n'), /^\d+\.\d+\.\d+/, args.join(' '));
    }
  });

  it('a boolean setting is a switch: --help shows --x / --no-x, and --x true is explained', async () => {
    const help = await cli(['serve', '--help']);
    assert.match(help.stdout.join('\n'), /--limit-loopback \/ --no-limit-loopback\s+LIMIT_LOOPBACK/);
    await refusedInOneLine(
      ['serve', '--limit-loopback', 'true'],
      /^--limit-loopback is a switch: write --limit-loopback or --no-limit-loopback, without a value/m,
    );
    await refusedInOneLine(['serve', '--no-limit-loopback=1'], /--limit-loopback is a switch/);
  });

  it('--limit-loopback limits loopback clients; --no-limit-loopback overrides LIMIT_LOOPBACK=1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rm-switch-'));
    try {
      // One connection per IP: a second loopback client is refused only when loopback is limited.
      const limited = await serveCli([
        '--database-url',
        `sqlite:${join(dir, 'a.db')}`,
        '--max-connections-per-ip',
        '1',
        '--limit-loopback',
      ]);
      const url = `ws://127.0.0.1:${limited.port}`;
      const first = await openClient(url);
      const second = await openClient(url);
      assert.equal((await nextAfterGreeting(second))?.code, 'too_many_connections');
      await first.close();
      limited.proc.kill('SIGTERM');
      assert.equal((await limited.exited).code, 0);

      const exempt = await serveCli(
        [
          '--database-url',
          `sqlite:${join(dir, 'b.db')}`,
          '--max-connections-per-ip',
          '1',
          '--no-limit-loopback',
        ],
        { LIMIT_LOOPBACK: '1' },
      );
      const url2 = `ws://127.0.0.1:${exempt.port}`;
      const a = await tryHello(url2, { device_id: 'switch-a', identity: 'a' });
      const b = await tryHello(url2, { device_id: 'switch-b', identity: 'b' });
      assert.equal(a.reply?.type, 'room');
      assert.equal(b.reply?.type, 'room');
      await a.client.close();
      await b.client.close();
      exempt.proc.kill('SIGTERM');
      assert.equal((await exempt.exited).code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a port another process holds, and prune with no database, are one line each, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rm-busy-'));
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const db = `sqlite:${join(dir, 'a.db')}`;
      for (const args of [
        ['--host', '127.0.0.1', '--port', port],
        ['--host', '127.0.0.1', '--port', '0', '--metrics-port', port],
      ]) {
        const run = await cli(['serve', '--database-url', db, '--spool-dir', join(dir, 'spool'), ...args]);
        assert.equal(run.code, 1, run.stderr);
        assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
        assert.match(
          run.stderr,
          new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${port}: .*\\(EADDRINUSE\\)$`, 'm'),
        );
      }
      const prune = await cli([
        'prune',
        '--database-url',
        'mysql://root@127.0.0.1:1/x',
        '--retain-messages',
        '1d',
      ]);
      assert.equal(prune.code, 1, prune.stderr);
      assert.equal(prune.stderr.trimEnd().split('\n').length, 1, prune.stderr);
      assert.match(prune.stderr, /^Cannot open the database of --database-url .*nothing is listening/m);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
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
