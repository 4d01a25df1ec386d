/**
 * The spool: records the database has not taken yet, on local disk, in one append-only file of
 * blocks. A block is the record queue's own bytes (record-queue.ts) behind a 16-byte header:
 * magic, record count, payload length, CRC-32 of the payload. Spilling encodes nothing and
 * reading back parses nothing; the writes, the fsync and the reads run on libuv's thread pool,
 * so neither holds the event loop (JSON lines, written and fsynced in the loop, held it 1.6 s
 * for 100,000 records).
 *
 * A block counts once it is fsynced. An append that fails (disk full, folder not writable) is cut
 * off again and leaves the counters as they were; the next append writes at the same offset, over
 * whatever a failed cut left. A block cut short by a crash, or whose header is not ours, ends the
 * file: it is cut when the file is opened. A block whose CRC does not match when read is skipped
 * and reported (it cannot be trusted).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncate,
  ftruncateSync,
  mkdirSync,
  openSync,
  read,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
  writev,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import type { EncodedRecords } from './record-queue.js';
import type { RecordEntry } from './store.js';
import { backendOf } from '../config/backend.js';

const MAGIC = 0x32534d52; // "RMS2", little-endian
const HEADER_BYTES = 16;
const CHUNK = 1 << 20;

const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);
const ftruncateAsync = promisify(ftruncate);
const readAsync = promisify(read);

/**
 * The spool file for a database: one per database, so that two servers sharing a spool folder
 * never replay each other's records into the wrong database. The name is derived from the URL
 * without its credentials (changing a password keeps the file).
 */
export function spoolFileFor(dir: string, databaseUrl: string, port?: number): string {
  // Cluster mode: nodes on one host may share the folder; each node (by its port) its own file.
  return join(dir, `${spoolBaseName(databaseUrl)}${port === undefined ? '' : `-port${port}`}.spool`);
}

/** The JSON-lines spool of versions before 0.2, replayed once at start if one is left. */
export function legacySpoolFileFor(dir: string, databaseUrl: string): string {
  return join(dir, `${spoolBaseName(databaseUrl)}.jsonl`);
}

function spoolBaseName(databaseUrl: string): string {
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
  return `records-${backend}-${hash}`;
}

/**
 * The records of a JSON-lines spool (one JSON record a line; a torn or unreadable line is
 * skipped), or undefined when there is no such file.
 */
export function readLegacySpool(path: string): RecordEntry[] | undefined {
  if (!existsSync(path)) return undefined;
  const entries: RecordEntry[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as RecordEntry);
    } catch {
      // a line cut short by a crash
    }
  }
  return entries;
}

interface Block {
  /** Offset of the header in the file. */
  offset: number;
  payloadBytes: number;
  count: number;
  crc: number;
}

/** Blocks read from the front of the spool. */
export interface SpoolFront {
  /** The records of the blocks that could be read. */
  records: EncodedRecords;
  /** Blocks consumed (commit this many once the records are in the database). */
  blocks: number;
  /** Records of blocks that failed their CRC: they cannot be written. */
  corrupt: number;
}

export class Spool {
  private fd: number | undefined;
  /** Bytes of whole blocks in the file (where the next block is written). */
  private size = 0;
  /** Blocks in the file not yet committed, oldest first. */
  private blocks: Block[] = [];
  private records = 0;
  private appendInFlight = false;

  constructor(readonly path: string) {
    if (existsSync(path)) {
      this.fd = openSync(path, constants.O_RDWR);
      this.scan();
      if (this.blocks.length === 0) this.remove();
    }
  }

  /** Records waiting in the file. */
  get count(): number {
    return this.records;
  }

  /**
   * Appends one block per batch (empty ones skipped) and fsyncs them; resolves once they are on
   * disk, rejects (leaving the spool as it was) if any part of that failed. One at a time.
   */
  async append(batches: readonly EncodedRecords[]): Promise<void> {
    if (this.appendInFlight) throw new Error('spool append already in flight');
    const buffers: Buffer[] = [];
    const added: Block[] = [];
    let offset = this.size;
    for (const batch of batches) {
      if (batch.count === 0) continue;
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      let payloadBytes = 0;
      let crc = 0;
      const parts: Buffer[] = [];
      for (const part of batch.parts) {
        const bytes = Buffer.from(part.buffer, part.start, part.end - part.start);
        crc = crc32(bytes, crc);
        payloadBytes += bytes.length;
        parts.push(bytes);
      }
      header.writeUInt32LE(MAGIC, 0);
      header.writeUInt32LE(batch.count, 4);
      header.writeUInt32LE(payloadBytes, 8);
      header.writeUInt32LE(crc, 12);
      buffers.push(header, ...parts);
      added.push({ offset, payloadBytes, count: batch.count, crc });
      offset += HEADER_BYTES + payloadBytes;
    }
    if (added.length === 0) return;
    this.appendInFlight = true;
    try {
      if (this.fd === undefined) {
        mkdirSync(dirname(this.path), { recursive: true });
        this.fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o600);
        this.size = 0;
      }
      const fd = this.fd;
      try {
        await writeAllAt(fd, buffers, this.size);
        await fdatasyncAsync(fd);
      } catch (err) {
        // Leave the file as the counters say; if even that fails, the next append overwrites it.
        await ftruncateAsync(fd, this.size).catch(() => undefined);
        throw err;
      }
      this.size = offset;
      for (const b of added) {
        this.blocks.push(b);
        this.records += b.count;
      }
    } finally {
      this.appendInFlight = false;
    }
  }

  /** Reads blocks from the front, up to `maxRecords` records (at least one block); undefined if none. */
  async readFront(maxRecords: number): Promise<SpoolFront | undefined> {
    const fd = this.fd;
    if (fd === undefined || this.blocks.length === 0) return undefined;
    const front: SpoolFront = { records: { count: 0, parts: [] }, blocks: 0, corrupt: 0 };
    for (const block of this.blocks) {
      if (front.blocks > 0 && front.records.count + block.count > maxRecords) break;
      const buffer = new SharedArrayBuffer(block.payloadBytes);
      const bytes = Buffer.from(buffer);
      let got = 0;
      while (got < bytes.length) {
        const { bytesRead } = await readAsync(
          fd,
          bytes,
          got,
          bytes.length - got,
          block.offset + HEADER_BYTES + got,
        );
        if (bytesRead <= 0) break;
        got += bytesRead;
      }
      front.blocks++;
      if (got !== bytes.length || crc32(bytes) !== block.crc) {
        front.corrupt += block.count;
        continue;
      }
      front.records.parts.push({ buffer, start: 0, end: bytes.length });
      front.records.count += block.count;
    }
    return front;
  }

  /** The front `blocks` are in the database; the file goes once all of it is (and no append runs). */
  commit(blocks: number): void {
    for (const b of this.blocks.splice(0, blocks)) this.records -= b.count;
    if (this.blocks.length === 0 && !this.appendInFlight) this.remove();
  }

  /**
   * Drops the committed front so that a later process does not write it again (harmless, as
   * every write is idempotent, but wasted), then closes the file. For shutdown.
   */
  close(): void {
    if (this.fd === undefined) return;
    const first = this.blocks[0];
    if (!first) return this.remove();
    if (first.offset > 0) {
      try {
        this.dropFront(first.offset);
      } catch {
        // No room for the copy (a full disk): the file stays whole, its committed front written
        // again at the next start, which inserts nothing twice.
      }
    }
    closeSync(this.fd);
    this.fd = undefined;
  }

  /** Replaces the file by its bytes from `offset` on (copied, fsynced, renamed over it). */
  private dropFront(offset: number): void {
    const tmp = `${this.path}.tmp`;
    const out = openSync(tmp, 'w', 0o600);
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      let pos = offset;
      while (pos < this.size) {
        const got = readSync(this.fd!, buf, 0, Math.min(CHUNK, this.size - pos), pos);
        if (got <= 0) break;
        let done = 0;
        while (done < got) done += writeSync(out, buf, done, got - done);
        pos += got;
      }
      fdatasyncSync(out);
    } catch (err) {
      closeSync(out);
      unlinkSync(tmp);
      throw err;
    }
    closeSync(out);
    renameSync(tmp, this.path);
  }

  /** Reads the block headers of an existing file and cuts a torn or foreign tail. */
  private scan(): void {
    const fd = this.fd!;
    const fileSize = fstatSync(fd).size;
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    let pos = 0;
    while (pos + HEADER_BYTES <= fileSize) {
      if (readSync(fd, header, 0, HEADER_BYTES, pos) !== HEADER_BYTES) break;
      if (header.readUInt32LE(0) !== MAGIC) break;
      const count = header.readUInt32LE(4);
      const payloadBytes = header.readUInt32LE(8);
      if (pos + HEADER_BYTES + payloadBytes > fileSize) break;
      this.blocks.push({ offset: pos, payloadBytes, count, crc: header.readUInt32LE(12) });
      this.records += count;
      pos += HEADER_BYTES + payloadBytes;
    }
    if (pos < fileSize) ftruncateSync(fd, pos);
    this.size = pos;
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
    this.blocks = [];
    this.records = 0;
  }
}

/** Writes every byte of `buffers` at `position`, however many calls that takes. */
async function writeAllAt(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let pos = position;
  while (rest.length > 0) {
    const { bytesWritten } = await writevAsync(fd, rest, pos);
    if (bytesWritten <= 0) throw new Error('spool write wrote nothing');
    pos += bytesWritten;
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      next.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    rest = next;
  }
}
