/**
 * Runs the real CLI as a child process: the build (`dist/cli/main.js`, what `npm start` runs)
 * when it is newer than every source file, as after `npm ci` (whose prepare step builds);
 * otherwise `src/cli/main.ts` through tsx, so that a change not yet built is what is tested.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../src/config/schema.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Newest modification time of the files below `dir`, ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The build starts far faster than tsx loading the sources, and the suite starts many CLIs. */
function cliEntry(): string[] {
  try {
    const built = statSync(join(PROJECT_ROOT, 'dist/cli/main.js')).mtimeMs;
    if (built >= newestMtime(join(PROJECT_ROOT, 'src'))) return ['dist/cli/main.js'];
  } catch {
    // not built
  }
  return ['--import', 'tsx', 'src/cli/main.ts'];
}
const CLI_ENTRY = cliEntry();

export interface CliRun {
  proc: ChildProcess;
  /** Every stdout line so far. */
  stdout: string[];
  /** Every stderr chunk so far. */
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout, line by line. */
  lines: Interface;
}

/** Environment without any room-manager setting, so that only the given flags count. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const s of SETTINGS) delete env[s.env];
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/** `env`: settings' variables to set, on top of an environment without any. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const proc = spawn(process.execPath, [...CLI_ENTRY, ...args], {
    cwd: PROJECT_ROOT,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (line) => stdout.push(line));
  proc.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    proc.once('close', (code, signal) => res({ code, signal }));
  });
  return { proc, stdout, stderr, exited, lines };
}

/**
 * Starts `serve` with JSON logs and resolves with the port from the `listening` log line; if it
 * exits first, the error quotes its last log lines (a fatal one is on stdout) and stderr.
 */
export async function serveCli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliRun & { port: number }> {
  const run = runCli(['serve', '--port', '0', '--log-format', 'json', ...args], env);
  const port = await new Promise<number>((res, rej) => {
    const onLine = (line: string) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (entry.msg === 'listening' && typeof entry.port === 'number') {
        run.lines.off('line', onLine);
        res(entry.port);
      }
    };
    run.lines.on('line', onLine);
    void run.exited.then(({ code, signal }) =>
      rej(
        new Error(
          `CLI exited (${code ?? signal}) before listening; log: ${run.stdout.slice(-4).join('\n')}; stderr: ${run.stderr.join('').slice(-2000)}`,
        ),
      ),
    );
  });
  return { ...run, port };
}
