/**
 * Runs a real nginx (Debian's, installed by .ci/run; nothing is installed here) as a child
 * process with everything it writes (pid, logs, temp files) in a temp dir, in front of a test
 * server, with a site file from deploy/ rendered for the test by replacing known tokens in it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { waitFor } from './wait.js';

/** The nginx binary: Debian's /usr/sbin/nginx, or `nginx` on PATH; undefined without one. */
export function findNginx(): string | undefined {
  const dirs = ['/usr/sbin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const path = join(dir, 'nginx');
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * For describe(): skip (with the reason) where nginx is missing, except with CI=true, where the
 * test runs and fails for want of it (.ci/run installs it).
 */
export function nginxSkip(): string | false {
  if (findNginx() || process.env.CI === 'true') return false;
  return 'nginx is not installed here (apt-get install nginx-light); with CI=true this fails instead';
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * `text` with each `from` replaced by its `to` (every occurrence). A token that is not in the
 * text is an error: the file changed, and the test would otherwise run with the file's own
 * ports or paths.
 */
export function render(text: string, replacements: ReadonlyArray<readonly [string, string]>): string {
  let out = text;
  for (const [from, to] of replacements) {
    if (!out.includes(from)) throw new Error(`render: ${JSON.stringify(from)} is not in the file any more`);
    out = out.split(from).join(to);
  }
  return out;
}

export class Nginx {
  private exited = false;
  private readonly stderr: string[] = [];
  private readonly exit: Promise<number | null>;

  private constructor(
    readonly dir: string,
    private readonly proc: ChildProcess,
  ) {
    proc.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString('utf8')));
    this.exit = new Promise((resolve) =>
      proc.once('exit', (code) => {
        this.exited = true;
        resolve(code);
      }),
    );
  }

  /**
   * Starts nginx with `site` (the rendered site file, included in http {}) in `dir`, and resolves
   * once it accepts connections on `port`.
   */
  static async start(dir: string, site: string, port: number): Promise<Nginx> {
    const binary = findNginx();
    if (!binary) throw new Error('nginx is not installed (CI=true: .ci/run installs nginx-light)');
    // Workers run as nobody when the test runs as root: they must reach the temp paths.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'room-manager.conf'), site);
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      [
        'worker_processes 1;',
        `pid ${join(dir, 'nginx.pid')};`,
        `error_log ${join(dir, 'error.log')} info;`,
        'events { worker_connections 256; }',
        'http {',
        `  access_log ${join(dir, 'access.log')};`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
          (kind) => `  ${kind}_temp_path ${join(dir, `${kind}_temp`)};`,
        ),
        `  include ${join(dir, 'room-manager.conf')};`,
        '}',
        '',
      ].join('\n'),
    );
    const proc = spawn(
      binary,
      ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const nginx = new Nginx(dir, proc);
    await waitFor(`nginx to listen on ${port}`, async () => {
      if (nginx.exited) throw new Error(`nginx exited at start: ${nginx.log()}`);
      return accepts(port);
    });
    return nginx;
  }

  /** What nginx said on stderr and in its error log. */
  log(): string {
    let errorLog = '';
    try {
      errorLog = readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      // not written yet
    }
    return `${this.stderr.join('')}${errorLog}`.trim().split('\n').slice(-20).join('\n');
  }

  /** The access log's lines so far. */
  accessLog(name = 'room-manager.access.log'): string[] {
    return readFileSync(join(this.dir, name), 'utf8').split('\n').filter(Boolean);
  }

  /**
   * Stops nginx (fast shutdown: the master stops its workers, then exits) and makes sure that
   * no process of it is left: a worker still there is killed and reported.
   */
  async stop(): Promise<void> {
    if (this.exited) return;
    const workers = childrenOf(this.proc.pid!);
    this.proc.kill('SIGTERM');
    await this.exit;
    const left = await waitFor(
      'the nginx workers to exit',
      () => {
        const alive = workers.filter(isAlive);
        return alive.length === 0 ? [] : undefined;
      },
      500,
      10,
    ).catch(() => workers.filter(isAlive));
    for (const pid of left) process.kill(pid, 'SIGKILL');
    if (left.length > 0) throw new Error(`nginx workers ${left.join(', ')} outlived their master`);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The pids whose parent is `pid` (Linux /proc; none elsewhere). */
function childrenOf(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const name of entries) {
    try {
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
