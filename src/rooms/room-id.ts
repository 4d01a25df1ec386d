/** Room codes: 8 characters of A-Z0-9 from the cryptographic RNG, without modulo bias. */
import { randomFillSync } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** 252 = 7 × 36: bytes at or above it are discarded so every character is equally likely. */
const LIMIT = 252;

/**
 * Random bytes fetched 4 KiB at a time, as crypto.randomUUID() caches its entropy: a call of
 * randomBytes per room code cost ~15 µs of a full handshake (the bench's join profile).
 */
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomByte(): number {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++]!;
}

export function randomRoomId(): string {
  let id = '';
  while (id.length < 8) {
    const byte = randomByte();
    if (byte < LIMIT) id += ALPHABET[byte % 36];
  }
  return id;
}
