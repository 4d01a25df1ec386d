/**
 * Record timestamps: ISO 8601 UTC with milliseconds. At tens of thousands of messages a second
 * most messages share their millisecond, so the string is made once per millisecond.
 */
import type { Timestamp } from './store.js';

let lastMs = -1;
let lastIso = '';

export function isoNow(): Timestamp {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
