/**
 * Why a database could not be opened, in plain words: the drivers' errors (mysql2, pg,
 * better-sqlite3, the file system) turned into a DatabaseOpenError that the CLI prints as one
 * line. Errors that are not about reaching or entering the database are left as they are.
 */

/**
 * `unreachable`: nothing answered (nothing listening, no answer in time, unknown host, the server
 * full or starting up): may pass by itself, so a supervisor may retry.
 * `refused`: the database answered no (login, missing database, no permission) or the SQLite file
 * cannot be opened: only a change of settings or of the database helps.
 */
export type DatabaseOpenProblem = 'unreachable' | 'refused';

export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError';
  constructor(
    readonly problem: DatabaseOpenProblem,
    /** The cause in plain words, ending with the driver's code in parentheses. */
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface DriverError {
  code?: unknown;
  message?: unknown;
  sqlMessage?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  path?: unknown;
  syscall?: unknown;
  /** An AggregateError's: one per address tried (IPv6 and IPv4 of a name). */
  errors?: unknown;
}

const NETWORK_UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);
const MYSQL_REFUSED = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_HOST_NOT_PRIVILEGED',
  'ER_HOST_IS_BLOCKED',
  'ER_TABLEACCESS_DENIED_ERROR',
  'ER_SPECIFIC_ACCESS_DENIED_ERROR',
]);
/** PostgreSQL SQLSTATEs: 28000 invalid authorization (no such role, pg_hba), 28P01 bad password, 42501 no privilege. */
const POSTGRES_REFUSED = new Set(['28000', '28P01', '42501']);
/** 53300 too many connections, 57P03 starting up or shutting down. */
const POSTGRES_UNREACHABLE = new Set(['53300', '57P03']);
const SQLITE_REFUSED = new Set([
  'SQLITE_CANTOPEN',
  'SQLITE_NOTADB',
  'SQLITE_READONLY',
  'SQLITE_PERM',
  'SQLITE_CORRUPT',
]);
const FILE_REFUSED = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOSPC']);

/** The error as a DatabaseOpenError when it says why the database cannot be opened; else undefined. */
export function databaseOpenError(err: unknown, sqlitePath?: string): DatabaseOpenError | undefined {
  if (err instanceof DatabaseOpenError) return err;
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as DriverError;
  const code = typeof e.code === 'string' ? e.code : '';
  const text = firstLine(typeof e.sqlMessage === 'string' ? e.sqlMessage : String(e.message ?? ''));
  const at = addressOf(e);
  const make = (problem: DatabaseOpenProblem, words: string) =>
    new DatabaseOpenError(problem, code ? `${words} (${code})` : words, { cause: err });

  if (code === 'ECONNREFUSED') return make('unreachable', `nothing is listening at ${at || 'that address'}`);
  if (code === 'ENOENT' && e.syscall === 'connect') {
    return make('unreachable', `no socket at ${typeof e.address === 'string' ? e.address : 'that path'}`);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    const host = typeof e.hostname === 'string' ? `"${e.hostname}"` : 'of the URL';
    return make('unreachable', `the host name ${host} is not found`);
  }
  if (code === 'ETIMEDOUT' || /connection timeout|timeout exceeded when trying to connect/i.test(text)) {
    return make('unreachable', 'no answer within the connect timeout');
  }
  if (NETWORK_UNREACHABLE.has(code))
    return make('unreachable', `cannot reach ${at || 'the server'}: ${text}`);

  if (code === 'ER_BAD_DB_ERROR') {
    const name = /'(.*)'/.exec(text)?.[1];
    return make('refused', name ? `database "${name}" does not exist` : lowerFirst(text));
  }
  if (code === 'ER_CON_COUNT_ERROR') return make('unreachable', 'the server has too many connections');
  if (MYSQL_REFUSED.has(code)) return make('refused', lowerFirst(text));

  if (code === '3D000' || POSTGRES_REFUSED.has(code)) return make('refused', lowerFirst(text));
  if (POSTGRES_UNREACHABLE.has(code)) return make('unreachable', lowerFirst(text));

  if (SQLITE_REFUSED.has(code)) {
    const file = sqlitePath ? ` ${sqlitePath}` : '';
    return make('refused', `cannot open or create the SQLite file${file}: ${text}`);
  }
  if (FILE_REFUSED.has(code)) {
    const path = typeof e.path === 'string' ? e.path : sqlitePath;
    return make('refused', `cannot create ${path ? `"${path}"` : 'the SQLite file'}: ${fileWords(code)}`);
  }
  return undefined;
}

/** host:port of a network error ([v6]:port), from the first address tried when there were several. */
function addressOf(e: DriverError): string {
  const tried = Array.isArray(e.errors) ? (e.errors as DriverError[]) : [];
  const source = typeof e.address === 'string' ? e : tried.find((x) => typeof x?.address === 'string');
  if (!source || typeof source.address !== 'string') return '';
  const host = source.address.includes(':') ? `[${source.address}]` : source.address;
  return typeof source.port === 'number' ? `${host}:${source.port}` : host;
}

function fileWords(code: string): string {
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'ENOTDIR' || code === 'EEXIST') return 'a file is in the way of its folder';
  return 'no space left on the device';
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}
