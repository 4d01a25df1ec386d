/**
 * A room-manager cluster under test: N node processes on one Redis and one database, each on its
 * own port and spool folder, measured together as one server (their CPU and memory summed). Every
 * cluster gets a fresh random Redis key prefix, so that it never sees another run's (or a test's)
 * rooms and members; its keys are deleted when it stops.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freshDatabase } from './databases.js';
import {
  openFiles,
  processName,
  ServerProcess,
  type LocalProcess,
  type ServerUnderTest,
  type TargetSpec,
} from './processes.js';

/** A node as the hold scenario reports it, read while the connections are held. */
export interface NodeFigures {
  node: string;
  pid: number;
  /** WebSocket connections the node counts (its `/` status), or null when it did not answer. */
  connections: number | null;
  rssKiB: number;
  /** File descriptors the node has open: what the 20,000 open-file cap of a process bounds. */
  openFiles: number;
}

/** The URL with its password hidden, for reports. */
export function withoutPassword(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/**
 * The target a cluster runs on: the database of `base` with `_cluster` added to its name, so that a
 * single node on `base` can run beside it (the scenario alternates them step by step).
 */
export function clusterTargetSpec(
  base: TargetSpec & { databaseUrl: () => string },
  nodes: number,
): TargetSpec {
  const u = new URL(base.databaseUrl());
  u.pathname = `${u.pathname}_cluster`;
  const url = u.toString();
  return {
    name: 'cluster',
    description: `${nodes} room-manager nodes on one Redis and one ${base.name} database`,
    kind: 'room-manager',
    databaseUrl: () => url,
    prepare: () => freshDatabase(url),
  };
}

export class ClusterProcess implements ServerUnderTest {
  private constructor(
    readonly spec: TargetSpec,
    readonly nodes: ServerProcess[],
    readonly redisUrl: string,
    readonly redisPrefix: string,
    readonly services: LocalProcess[],
  ) {}

  /** Starts `count` nodes of `spec` (its database made fresh once) on the Redis at `redisUrl`. */
  static async start(
    spec: TargetSpec,
    count: number,
    redisUrl: string,
    services: LocalProcess[],
  ): Promise<ClusterProcess> {
    await spec.prepare?.();
    const redisPrefix = `bench-${randomBytes(6).toString('hex')}:`;
    const node = (i: number): TargetSpec => ({
      ...spec,
      name: `${spec.name}-node${i + 1}`,
      prepare: undefined,
    });
    const args = (tmp: string): string[] => [
      '--redis-url',
      redisUrl,
      '--redis-prefix',
      redisPrefix,
      '--spool-dir',
      join(tmp, 'spool'),
    ];
    const nodes: ServerProcess[] = [];
    try {
      // The first node alone applies the migrations; the others then find the schema in place.
      nodes.push(await ServerProcess.start(node(0), args));
      const rest = Array.from({ length: count - 1 }, (_, i) => ServerProcess.start(node(i + 1), args));
      const started = await Promise.allSettled(rest);
      for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
      await deletePrefix(redisUrl, redisPrefix).catch(() => undefined);
      throw err;
    }
    return new ClusterProcess(spec, nodes, redisUrl, redisPrefix, services);
  }

  get url(): string {
    return this.nodes[0]!.url;
  }

  get nodeUrls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  get exitStatus(): string | undefined {
    const dead = this.nodes.find((n) => n.exitStatus !== undefined);
    return dead && `${dead.spec.name} ${dead.exitStatus}`;
  }

  rssKiB(): number {
    return this.nodes.reduce((s, n) => s + n.rssKiB(), 0);
  }

  cpuSeconds(): number {
    return this.nodes.reduce((s, n) => s + n.cpuSeconds(), 0);
  }

  status(): Promise<Record<string, unknown> | undefined> {
    return this.nodes[0]!.status();
  }

  /** Waits until no node has records waiting; returns those still waiting after `maxMs`. */
  async waitIdle(maxMs: number): Promise<number> {
    const pending = await Promise.all(this.nodes.map((n) => n.waitIdle(maxMs)));
    return pending.reduce((s, p) => s + p, 0);
  }

  logTail(): string {
    return this.nodes.map((n) => `--- ${n.spec.name} ---\n${n.logTail()}`).join('\n');
  }

  /** Every node's connections, memory and open files, now. */
  async nodeFigures(): Promise<NodeFigures[]> {
    return Promise.all(
      this.nodes.map(async (n) => {
        const status = await n.status();
        return {
          node: n.spec.name,
          pid: n.pid,
          connections: typeof status?.connections === 'number' ? status.connections : null,
          rssKiB: n.rssKiB(),
          openFiles: openFiles(n.pid),
        };
      }),
    );
  }

  /** Stops every node (SIGTERM, as ServerProcess.stop), then deletes the cluster's Redis keys. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => undefined)));
    await deletePrefix(this.redisUrl, this.redisPrefix);
  }
}

/** A Redis connection that fails at once rather than retrying: the bench only asks and leaves. */
function redisClient(url: string): Redis {
  return new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
}

/**
 * The Redis server's process, when it runs on this machine (its INFO process_id is a redis process
 * here): its CPU is shown beside the nodes'.
 */
export async function localRedisProcess(url: string): Promise<LocalProcess | undefined> {
  const redis = redisClient(url);
  try {
    await redis.connect();
    const pid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1]);
    return pid && processName(pid)?.startsWith('redis') ? { name: 'redis', pid } : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under `prefix` (SCAN + UNLINK: never blocks the Redis for long). */
async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = redisClient(url);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
