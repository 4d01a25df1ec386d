/**
 * A Redis for tests that talk to one directly (the bus and presence contracts): TEST_REDIS_URL
 * (default redis://127.0.0.1:6379), shared with other test runs, so each test gets a key prefix
 * of its own and deletes only its own keys, never FLUSHALL. A Redis that does not answer skips
 * the test with a notice, or fails it with CI=true (as the database servers in db.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestRedis {
  url: string;
  /** `rmt:<random>:`: this test's keys and channels. */
  prefix: string;
}

/**
 * A fresh prefix on the test Redis after a PING, its keys deleted when the test ends; undefined
 * (the test skipped) when Redis does not answer, unless CI=true, where the test fails.
 */
export async function redisForTests(t: TestContext): Promise<TestRedis | undefined> {
  const problem = await pingRedis(TEST_REDIS_URL);
  if (problem !== undefined) {
    const why = `Redis at ${TEST_REDIS_URL} does not answer (${problem})`;
    if (process.env.CI === 'true') assert.fail(`${why}; with CI=true this fails (set TEST_REDIS_URL)`);
    t.skip(`${why}; set TEST_REDIS_URL, or CI=true to fail instead`);
    return undefined;
  }
  const prefix = `rmt:${randomBytes(6).toString('hex')}:`;
  // After hooks run in the order registered, and the test's own (closing its nodes, which may
  // still write) come later: registered from inside the first one, the deletion runs after them.
  t.after(() => {
    t.after(() => deleteKeys(TEST_REDIS_URL, prefix));
  });
  return { url: TEST_REDIS_URL, prefix };
}

/** Why Redis at `url` does not answer PING within a few seconds, or undefined when it does. */
export async function pingRedis(url: string): Promise<string | undefined> {
  const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null, connectTimeout: 3000 });
  // The socket's own error (ECONNREFUSED…) says more than the rejection ("Connection is closed").
  let cause: string | undefined;
  redis.on('error', (err: Error) => (cause ??= err.message));
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    return cause ?? ((err as Error).message || String(err));
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key that starts with `prefix` (as Redis losing a cluster's data, for one prefix). */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  if (!prefix) throw new Error('deleteKeys needs a prefix: it never empties the whole Redis');
  const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
  redis.on('error', () => undefined);
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** `prefix` as a literal in a SCAN MATCH pattern. */
function globEscape(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
