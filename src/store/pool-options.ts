/** What every pooled backend is told about its connections (from the configuration). */
export interface PoolOptions {
  /** Most open connections. */
  max: number;
  /** Most idle connections kept open; more are closed when released. */
  idle: number;
  /** Connect timeout in milliseconds: a request during an outage fails after this, not later. */
  connectTimeoutMs: number;
}

export const DEFAULT_POOL: PoolOptions = { max: 10, idle: 5, connectTimeoutMs: 3000 };

/** A database URL's parts, decoded. */
export function urlParts(url: string): {
  host: string;
  port: number | undefined;
  user: string | undefined;
  password: string | undefined;
  database: string | undefined;
  params: URLSearchParams;
} {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost',
    port: u.port ? Number(u.port) : undefined,
    user: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: database || undefined,
    params: u.searchParams,
  };
}
