/**
 * The spool: records the database could not take yet, on local disk, as JSON lines in one
 * append-only file. The RecordWriter appends to it when its in-memory queue is full (and at a
 * shutdown during an outage), reads it back from the front in order, and deletes it once every
 * line is committed. A spool left by an earlier process is replayed before the server listens.
 *
 * Lines are appended and fsynced in whole batches; a line cut short by a crash (the file does not
 * end in a newline) is dropped when the file is opened.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { RecordEntry } from './store.js';
import { backendOf } from './backend.js';

const CHUNK = 1 << 20;

/**
 * The spool file for a database: one per database, so that two servers sharing a spool folder
 * never replay each other's records into the wrong database. The name is derived from the URL
 * without its credentials (changing a password keeps the file).
 */
export function spoolFileFor(dir: string, databaseUrl: string): string {
  const backend = backendOf(databaseUrl) ?? 'db';
  let key: string;
  if (backend === 'sqlite') {
    let path = databaseUrl.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    key = path === ':memory:' || path === '' ? ':memory:' : resolve(path);
  } else {
    const u = new URL(databaseUrl);
    key = `${backend}://${u.hostname}:${u.port}${u.pathname}`;
  }
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return join(dir, `records-${backend}-${hash}.jsonl`);
}

export interface SpoolBatch {
  entries: RecordEntry[];
  /** Lines consumed (a corrupt line counts, but yields no entry). */
  lines: number;
  bytes: number;
}

export class Spool {
  private fd: number | undefined;
  /** Bytes in the file. */
  private size = 0;
  /** Bytes at the front already committed. */
  private readOffset = 0;
  /** Lines in the file not yet committed. */
  private lines = 0;
  /** Lines that could not be parsed (skipped). */
  corrupt = 0;

  constructor(readonly path: string) {
    if (existsSync(path)) {
      this.fd = openSync(path, 'a+');
      this.size = fstatSync(this.fd).size;
      this.scan();
      if (this.size === 0) this.remove();
    }
  }

  /** Records waiting in the file. */
  get count(): number {
    return this.lines;
  }

  /** Bytes waiting in the file. */
  get unreadBytes(): number {
    return this.size - this.readOffset;
  }

  /** Appends the entries as lines and syncs them to disk; returns the bytes written. */
  append(entries: readonly RecordEntry[]): number {
    if (entries.length === 0) return 0;
    if (this.fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'a+');
      this.size = fstatSync(this.fd).size;
    }
    let text = '';
    for (const e of entries) text += JSON.stringify(e) + '\n';
    const buf = Buffer.from(text, 'utf8');
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done);
    fdatasyncSync(this.fd);
    this.size += buf.length;
    this.lines += entries.length;
    return buf.length;
  }

  /** Up to `max` records from the front (not consumed until `commit`). */
  read(max: number): SpoolBatch {
    const batch: SpoolBatch = { entries: [], lines: 0, bytes: 0 };
    if (this.fd === undefined) return batch;
    let pos = this.readOffset;
    let carry: Buffer = Buffer.alloc(0);
    while (batch.lines < max && pos < this.size) {
      const len = Math.min(CHUNK, this.size - pos);
      const chunk = Buffer.allocUnsafe(len);
      const got = readSync(this.fd, chunk, 0, len, pos);
      if (got <= 0) break;
      pos += got;
      const data = carry.length ? Buffer.concat([carry, chunk.subarray(0, got)]) : chunk.subarray(0, got);
      let start = 0;
      while (batch.lines < max) {
        const nl = data.indexOf(10, start);
        if (nl < 0) break;
        batch.lines++;
        batch.bytes += nl - start + 1;
        if (nl > start) {
          try {
            batch.entries.push(JSON.parse(data.toString('utf8', start, nl)) as RecordEntry);
          } catch {
            this.corrupt++;
          }
        }
        start = nl + 1;
      }
      carry = data.subarray(start);
    }
    return batch;
  }

  /** The front `lines`/`bytes` are in the database; the file goes once all of it is. */
  commit(lines: number, bytes: number): void {
    this.readOffset += bytes;
    this.lines -= lines;
    if (this.readOffset >= this.size) this.remove();
  }

  /**
   * Drops the committed front so that a later process does not write it again (harmless, as
   * every write is idempotent, but wasted), then closes the file.
   */
  close(): void {
    if (this.fd === undefined) return;
    if (this.readOffset > 0 && this.readOffset < this.size) {
      const tmp = `${this.path}.tmp`;
      const out = openSync(tmp, 'w');
      const buf = Buffer.allocUnsafe(CHUNK);
      let pos = this.readOffset;
      while (pos < this.size) {
        const got = readSync(this.fd, buf, 0, Math.min(CHUNK, this.size - pos), pos);
        if (got <= 0) break;
        let done = 0;
        while (done < got) done += writeSync(out, buf, done, got - done);
        pos += got;
      }
      fdatasyncSync(out);
      closeSync(out);
      renameSync(tmp, this.path);
    }
    closeSync(this.fd);
    this.fd = undefined;
  }

  /** Counts the lines of an existing file and cuts a torn last line. */
  private scan(): void {
    const fd = this.fd!;
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    let lastNl = -1;
    while (pos < this.size) {
      const got = readSync(fd, buf, 0, Math.min(CHUNK, this.size - pos), pos);
      if (got <= 0) break;
      for (let i = buf.indexOf(10, 0); i >= 0 && i < got; i = buf.indexOf(10, i + 1)) {
        this.lines++;
        lastNl = pos + i;
      }
      pos += got;
    }
    if (lastNl + 1 < this.size) {
      ftruncateSync(fd, lastNl + 1);
      this.size = lastNl + 1;
    }
  }

  private remove(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
    this.size = 0;
    this.readOffset = 0;
    this.lines = 0;
  }
}
