/**
 * A wrong --database-url, as a newcomer writes one: `serve` and `migrate` print one line on stderr
 * naming the setting, the URL without its password and the cause, and exit 1 when nothing answered
 * (may pass by itself) or 2 when the database refused (only new settings help). No stack trace.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/cli.js';
import { ADMIN_URL, TEST_DATABASE, adminQuery, sqliteOnly } from './helpers/db.js';

const SETTING = 'Cannot open the database of --database-url / DATABASE_URL';

/** Both commands, each: its exit code and that its stderr is the one expected line. */
async function refusedByBoth(
  url: string,
  expected: { code: number; line: RegExp; secret?: string },
  serveFlags: string[] = [],
) {
  for (const command of ['migrate', 'serve']) {
    const args = command === 'serve' ? ['serve', '--port', '0', ...serveFlags] : ['migrate'];
    const run = runCli([...args, '--database-url', url]);
    const exit = await run.exited;
    const stderr = run.stderr.join('');
    assert.deepEqual(exit, { code: expected.code, signal: null }, `${command}: ${stderr}`);
    assert.equal(stderr.trimEnd().split('\n').length, 1, `${command}: one line on stderr:\n${stderr}`);
    assert.ok(stderr.startsWith(SETTING), `${command}: ${stderr}`);
    assert.match(stderr, expected.line, command);
    assert.doesNotMatch(stderr, /\n\s+at /, `${command}: no stack trace`);
    if (expected.secret)
      assert.ok(!stderr.includes(expected.secret), `${command}: the password is not shown`);
  }
}

/** A local port that accepts connections and never says a word: a database that does not answer. */
async function silentPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as { port: number };
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((res) => server.close(res));
  };
  return { port, close };
}

/** A local port where nothing listens (taken, then freed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as { port: number };
  await new Promise((res) => server.close(res));
  return port;
}

describe('SQLite: a file that cannot be created, an empty path', sqliteOnly, () => {
  it('sqlite:/proc/… (cannot be created) is one line, exit 2', async () => {
    await refusedByBoth('sqlite:/proc/room-manager-test.db', {
      code: 2,
      line: /\(sqlite:\/proc\/room-manager-test\.db\): cannot open or create the SQLite file \/proc\/room-manager-test\.db/,
    });
  });

  it('sqlite:/etc/hostname/x.db (a file where its folder should be) is one line, exit 2', async () => {
    await refusedByBoth('sqlite:/etc/hostname/x.db', {
      code: 2,
      line: /cannot create .*a file is in the way/,
    });
  });
});

describe(
  'MySQL/MariaDB: nothing listening, no such database, wrong password',
  {
    skip: TEST_DATABASE === 'mysql' ? false : 'needs TEST_DATABASE=mysql',
  },
  () => {
    const user = 'rm_t_newcomer';
    const host = new URL(ADMIN_URL.mysql).host;
    before(async () => {
      await adminQuery('mysql', `create user if not exists '${user}'@'%' identified by 'right-password'`);
    });
    after(async () => {
      await adminQuery('mysql', `drop user if exists '${user}'@'%'`);
    });

    it('nothing listening: exit 1, "nothing is listening at HOST:PORT (ECONNREFUSED)"', async () => {
      const port = await closedPort();
      await refusedByBoth(`mysql://root:s3cret-pw@127.0.0.1:${port}/x`, {
        code: 1,
        line: new RegExp(
          `\\(mysql://root:\\*\\*\\*@127\\.0\\.0\\.1:${port}/x\\): nothing is listening at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)$`,
          'm',
        ),
        secret: 's3cret-pw',
      });
    });

    it('no answer: exit 1, "no answer within the connect timeout"', async () => {
      const silent = await silentPort();
      try {
        await refusedByBoth(
          `mysql://root@127.0.0.1:${silent.port}/x`,
          { code: 1, line: /: no answer within the connect timeout \(ETIMEDOUT\)$/m },
          ['--db-timeout-ms', '500'],
        );
      } finally {
        await silent.close();
      }
    });

    it('a database that does not exist: exit 2, names it', async () => {
      await refusedByBoth(`mysql://root@${host}/rm_t_does_not_exist`, {
        code: 2,
        line: /: database "rm_t_does_not_exist" does not exist \(ER_BAD_DB_ERROR\)$/m,
      });
    });

    it('a wrong password: exit 2, access denied for the user, the password not shown', async () => {
      await refusedByBoth(`mysql://${user}:wrong-password@${host}/mysql`, {
        code: 2,
        line: new RegExp(`\\(mysql://${user}:\\*\\*\\*@.*\\): access denied for user '${user}'`),
        secret: 'wrong-password',
      });
    });
  },
);

describe(
  'PostgreSQL: nothing listening, no such database, unknown user',
  {
    skip: TEST_DATABASE === 'postgres' ? false : 'needs TEST_DATABASE=postgres',
  },
  () => {
    const admin = new URL(ADMIN_URL.postgres);

    it('nothing listening: exit 1, "nothing is listening at HOST:PORT (ECONNREFUSED)"', async () => {
      const port = await closedPort();
      await refusedByBoth(`postgres://postgres:s3cret-pw@127.0.0.1:${port}/x`, {
        code: 1,
        line: new RegExp(`: nothing is listening at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)$`, 'm'),
        secret: 's3cret-pw',
      });
    });

    it('no answer: exit 1, "no answer within the connect timeout"', async () => {
      const silent = await silentPort();
      try {
        await refusedByBoth(
          `postgres://root@127.0.0.1:${silent.port}/x`,
          { code: 1, line: /: no answer within the connect timeout$/m },
          ['--db-timeout-ms', '500'],
        );
      } finally {
        await silent.close();
      }
    });

    it('a database that does not exist: exit 2, names it', async () => {
      const url = new URL(admin);
      url.pathname = '/rm_t_does_not_exist';
      await refusedByBoth(url.toString(), {
        code: 2,
        line: /: database "rm_t_does_not_exist" does not exist \(3D000\)$/m,
      });
    });

    it('a user the server does not know: exit 2, the password not shown', async () => {
      // The test server trusts local logins (no password asked), so the refusal here is of the role.
      const url = new URL(admin);
      url.username = 'rm_t_no_such_user';
      url.password = 'wrong-password';
      await refusedByBoth(url.toString(), {
        code: 2,
        line: /: role "rm_t_no_such_user" does not exist \(28000\)$/m,
        secret: 'wrong-password',
      });
    });
  },
);
