/**
 * Most a SQLite writer batch sleeps in total (--writer-slice-ms pauses), ms. A quarter-load batch
 * (~1,000 rows, ~7 ms of work) is paced all through; a large one, which means the writer is
 * behind, is written mostly unpaced and loses at most this much time. Kept here, below both the
 * setting's description (schema.ts) and the store's Pacer that applies it.
 */
export const PAUSE_BUDGET_MS = 25;
