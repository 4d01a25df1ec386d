/**
 * Plain HTTP on the WebSocket port: health and readiness for load balancers and orchestrators.
 *   GET /healthz → 200 while the process is up.
 *   GET /readyz  → 200 when the database answers (within the ping timeout) and records are
 *                  being written (`records.writes` ok); 503 otherwise: a write unanswered for
 *                  10 s (slow), writes failing (records go to the spool), stuck (neither the
 *                  database nor the spool takes them),
 *                  behind (reading from clients paused for the database to catch up), or
 *                  stopping (`status: draining` while clients are closed in batches, then
 *                  `stopping`). Both say `database: up | down` and how many records wait to be
 *                  written (`pending`, of which `spooled` are in the spool file). In cluster
 *                  mode also `redis: up | down`: not ready while the node is cut off from Redis.
 *   GET /metrics → Prometheus text (src/metrics), unless --metrics-port serves it apart: then
 *                  404 here, and that port serves /metrics alone (createMetricsHandler).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface HealthSource {
  /** Resolves when the database answers; rejects otherwise. */
  pingDatabase(): Promise<void>;
  /** Records not yet in the database, how many of them are in the spool file, and how writes go. */
  records(): RecordsHealth;
  /** While a stop closes clients in batches: `draining`; after: `stopping`. */
  stopping(): false | 'draining' | 'stopping';
  status(): Record<string, unknown>;
  /** Cluster mode: whether this node reaches Redis; absent on a single node. */
  redis?(): 'up' | 'down';
  /** Serves /metrics; absent when --metrics-port serves it apart (then 404 here). */
  metrics?: MetricsSource;
}

export interface RecordsHealth {
  pending: number;
  spooled: number;
  behind: boolean;
  writes: 'ok' | 'slow' | 'behind' | 'failing' | 'stuck';
  /** The last database or spool error while writes are not ok. */
  problem?: string;
}

/** What serves /metrics: ServerMetrics. */
export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

export function createHttpHandler(health: HealthSource) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
    switch (path) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz':
        if (health.stopping())
          return json(res, 503, {
            status: health.stopping(),
            database: 'unknown',
            records: health.records(),
          });
        health.pingDatabase().then(
          () => {
            // A database that answers a ping may still refuse or stall writes (a full disk, a
            // held lock): ready only while records are being written.
            const records = health.records();
            const redis = health.redis?.();
            const ready = records.writes === 'ok' && redis !== 'down';
            json(res, ready ? 200 : 503, {
              status: ready ? 'ready' : 'not_ready',
              database: 'up',
              ...(redis && { redis }),
              records,
            });
          },
          (err: unknown) =>
            json(res, 503, {
              status: 'not_ready',
              database: 'down',
              // The driver's message (e.g. "connect ECONNREFUSED 127.0.0.1:3306"), never the URL.
              error: (err as Error)?.message ?? String(err),
              ...(health.redis && { redis: health.redis() }),
              records: health.records(),
            }),
        );
        return;
      case '/metrics':
        if (!health.metrics) return json(res, 404, { error: 'not found' });
        return serveMetrics(res, health.metrics);
      case '/':
        return json(res, 200, {
          ...health.status(),
          hint: 'connect with a WebSocket client to this address',
        });
      default:
        return json(res, 404, { error: 'not found' });
    }
  };
}

/** The handler of --metrics-port: /metrics, and nothing else. */
export function createMetricsHandler(metrics: MetricsSource) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return json(res, 404, { error: 'not found' });
    serveMetrics(res, metrics);
  };
}

function serveMetrics(res: ServerResponse, metrics: MetricsSource): void {
  metrics.text().then(
    (text) => {
      res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
    (err: unknown) => json(res, 500, { error: (err as Error)?.message ?? String(err) }),
  );
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
