/** The SQLite writer thread's pacing (--writer-slice-ms). */
import { PAUSE_BUDGET_MS } from '../config/writer-pacing.js';

/**
 * Spreads a batch's work over time: after each `sliceMs` of it the thread sleeps as long, until
 * the batch has slept PAUSE_BUDGET_MS. Why: another thread's long run of CPU slows the event loop
 * on these 2 shared vCPUs even when the scheduler is told to favour the event loop (nice 19,
 * SCHED_IDLE), so it shows in the relay's p99; short runs do not. Measured with relay 500×2 at
 * 18,000 msg/s (the ceiling's p99 2.1-2.5 ms), a thread spinning 6 ms per 50-ms batch: p99
 * 3.3-5.2 ms with the 6 ms in one go, 2.2-3.7 ms as six 1-ms runs with 1-ms sleeps between.
 *
 * The sleeps fall inside the batch's transaction. Readers do not mind (WAL); a room the main
 * thread inserts meanwhile finds the write lock taken and goes to this thread, behind the batch.
 */
export class Pacer {
  private sliceEnd = 0;
  private slept = 0;
  /** Something to Atomics.wait on: nobody notifies it, so each wait lasts its timeout. */
  private readonly cell = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly sliceMs: number) {}

  /** A batch begins. */
  start(): void {
    this.sliceEnd = performance.now() + this.sliceMs;
    this.slept = 0;
  }

  /** Between two records: sleeps if this slice of work is over and the budget allows. */
  readonly pace = (): void => {
    if (performance.now() < this.sliceEnd || this.slept >= PAUSE_BUDGET_MS) return;
    Atomics.wait(this.cell, 0, 0, this.sliceMs);
    this.slept += this.sliceMs;
    this.sliceEnd = performance.now() + this.sliceMs;
  };
}
