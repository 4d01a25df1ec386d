/**
 * Runs the real CLI (`src/cli/main.ts` through tsx) as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../src/config/schema.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

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
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
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
