/**
 * The bench's MariaDB and PostgreSQL targets (and the cluster's Redis): whether their servers answer, and a fresh, empty
 * database for each server process the bench starts (dropped and created again), so that every
 * run starts from the same state as SQLite's new temporary file.
 */
import { connect } from 'node:net';
import mysql from 'mysql2/promise';
import pg from 'pg';

/** Resolves true when something accepts TCP connections at the URL's host and port. */
export function reachable(url: string, timeoutMs = 1000): Promise<boolean> {
  const u = new URL(url);
  const defaultPort = u.protocol.startsWith('mysql') ? 3306 : u.protocol.startsWith('redis') ? 6379 : 5432;
  const port = Number(u.port || defaultPort);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** Drops and creates the database named in `url` (its path). */
export async function freshDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`bench database name must be [A-Za-z0-9_]+: "${name}"`);
  if (u.protocol.startsWith('mysql')) {
    u.pathname = '/';
    const conn = await mysql.createConnection(u.toString());
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    } finally {
      await conn.end();
    }
    return;
  }
  u.pathname = '/postgres';
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}
