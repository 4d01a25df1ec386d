/** Room codes: 8 characters of A-Z0-9 from the cryptographic RNG, without modulo bias. */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** 252 = 7 × 36: bytes at or above it are discarded so every character is equally likely. */
const LIMIT = 252;

export function randomRoomId(): string {
  let id = '';
  while (id.length < 8) {
    for (const byte of randomBytes(12)) {
      if (byte < LIMIT) id += ALPHABET[byte % 36];
      if (id.length === 8) break;
    }
  }
  return id;
}
