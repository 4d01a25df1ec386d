/**
 * Plain HTTP on the WebSocket port: health and readiness for load balancers and orchestrators.
 *   GET /healthz → 200 while the process is up.
 *   GET /readyz  → 200 when the database answers (within the ping timeout), 503 otherwise (or
 *                  while shutting down); both say `database: up | down` and how many records
 *                  wait to be written (`pending`, of which `spooled` are in the spool file; `behind` while
 *                  reading from clients is paused for the database to catch up).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface HealthSource {
  /** Resolves when the database answers; rejects otherwise. */
  pingDatabase(): Promise<void>;
  /** Records not yet in the database, and how many of them are in the spool file. */
  records(): { pending: number; spooled: number; behind: boolean };
  stopping(): boolean;
  status(): Record<string, unknown>;
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
          return json(res, 503, { status: 'stopping', database: 'unknown', records: health.records() });
        health.pingDatabase().then(
          () => json(res, 200, { status: 'ready', database: 'up', records: health.records() }),
          (err: unknown) =>
            json(res, 503, {
              status: 'not_ready',
              database: 'down',
              // The driver's message (e.g. "connect ECONNREFUSED 127.0.0.1:3306"), never the URL.
              error: (err as Error)?.message ?? String(err),
              records: health.records(),
            }),
        );
        return;
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

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
