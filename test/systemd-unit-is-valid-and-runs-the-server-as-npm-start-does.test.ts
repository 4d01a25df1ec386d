/**
 * deploy/systemd: the unit runs node with the server's flags (src/cli/node-flags.ts, as `npm
 * start` does), waits longer than a stop takes before systemd's SIGKILL, names only real settings
 * in its environment file, and passes `systemd-analyze verify` where that is installed (it needs
 * no running systemd; without it that check is skipped with a notice, under CI too: CI installs
 * no systemd).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SERVER_NODE_FLAGS } from '../src/cli/node-flags.js';
import { loadConfig } from '../src/config/load.js';
import { SETTINGS } from '../src/config/schema.js';
import { PROJECT_ROOT } from './helpers/cli.js';
import { render } from './helpers/nginx.js';
import { removeDir, tempDir } from './helpers/server.js';

const UNIT_PATH = join(PROJECT_ROOT, 'deploy/systemd/room-manager.service');
const ENV_PATH = join(PROJECT_ROOT, 'deploy/systemd/room-manager.env');
const unit = readFileSync(UNIT_PATH, 'utf8');

/** The value of `key=` in the unit (the last one, as systemd reads a repeated single value). */
function setting(key: string): string | undefined {
  const values = unit
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
  return values[values.length - 1];
}

/** A setting's default, or undefined when no setting has that key (yet). */
function defaultOf(key: string): number | undefined {
  const spec = SETTINGS.find((s) => s.key === key);
  return spec ? (spec.schema.parse(undefined) as number) : undefined;
}

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const noAnalyze = analyze.error || analyze.status !== 0 ? 'systemd-analyze is not installed here' : false;

describe('deploy/systemd/room-manager.service', () => {
  it('runs node with the server flags, as npm start does', () => {
    assert.equal(
      setting('ExecStart'),
      `/usr/bin/node ${SERVER_NODE_FLAGS.join(' ')} /opt/room-manager/dist/cli/main.js serve`,
    );
  });

  it('gives a stop longer than the drain and the shutdown timeout together before SIGKILL', () => {
    const stopMs = Number(/^(\d+)s$/.exec(setting('TimeoutStopSec') ?? '')?.[1]) * 1000;
    const needed = (defaultOf('drainMs') ?? 0) + defaultOf('shutdownTimeoutMs')!;
    assert.ok(stopMs > needed, `TimeoutStopSec ${stopMs} ms must exceed ${needed} ms`);
    assert.equal(setting('KillSignal'), 'SIGTERM');
  });

  it('does not restart on exit 2 (bad configuration), and its hardening leaves node able to run', () => {
    assert.equal(setting('Restart'), 'on-failure');
    assert.equal(setting('RestartPreventExitStatus'), '2');
    // V8's JIT needs memory that is writable and then executable.
    assert.equal(setting('MemoryDenyWriteExecute'), undefined);
    // node calls pkey_alloc, outside @system-service: it must fail, not kill (SIGSYS).
    assert.equal(setting('SystemCallErrorNumber'), 'EPERM');
  });

  it('the environment file names only real settings, and they put the server where nginx looks', () => {
    const env: Record<string, string> = {};
    for (const line of readFileSync(ENV_PATH, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    const envs = new Set(SETTINGS.map((s) => s.env));
    assert.deepEqual(
      Object.keys(env).filter((name) => !envs.has(name)),
      [],
    );
    const config = loadConfig({ env });
    assert.deepEqual(config.trustedProxies, ['127.0.0.1']);
    const site = readFileSync(join(PROJECT_ROOT, 'deploy/nginx/room-manager.conf'), 'utf8');
    assert.match(site, new RegExp(`server ${config.host}:${config.port};`));
  });

  it('passes systemd-analyze verify', { skip: noAnalyze }, () => {
    const dir = tempDir('rm-systemd-');
    try {
      // Verify checks that the program exists: point it at this node, wherever it is installed.
      const path = join(dir, 'room-manager.service');
      writeFileSync(path, render(unit, [['ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `]]));
      const result = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
      const complaints = `${result.stdout}${result.stderr}`
        .split('\n')
        .filter((line) => line.includes('room-manager'));
      assert.deepEqual(complaints, []);
      assert.equal(result.status, 0, result.stderr);
    } finally {
      removeDir(dir);
    }
  });
});
