/**
 * A small log-bucketed latency histogram: constant memory, ~1 % relative precision, mergeable
 * across worker processes (the counts travel over IPC as a sparse list of [bucket, count]).
 */

/** Smallest value distinguished (ms); anything below lands in bucket 0. */
const MIN_MS = 0.001;
/** Ratio between consecutive bucket bounds: 2 % wide buckets, so ±1 % around the midpoint. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** 1 µs … ~100 s. */
const BUCKETS = Math.ceil(Math.log(100_000 / MIN_MS) / LOG_GROWTH) + 1;

/** The serialisable form sent between processes. */
export interface HistogramData {
  count: number;
  sum: number;
  max: number;
  /** Non-empty buckets only: [index, count]. */
  buckets: [number, number][];
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  max = 0;

  record(ms: number): void {
    const v = ms > MIN_MS ? ms : MIN_MS;
    let i = Math.floor(Math.log(v / MIN_MS) / LOG_GROWTH);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  toData(): HistogramData {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) buckets.push([i, this.counts[i]!]);
    return { count: this.count, sum: this.sum, max: this.max, buckets };
  }

  merge(data: HistogramData): void {
    for (const [i, c] of data.buckets) this.counts[i]! += c;
    this.count += data.count;
    this.sum += data.sum;
    if (data.max > this.max) this.max = data.max;
  }

  /** The value at quantile q (0..1): the geometric midpoint of its bucket, capped at the max. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(MIN_MS * Math.pow(GROWTH, i + 0.5), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      mean: this.count ? round(this.sum / this.count) : 0,
      p50: round(this.quantile(0.5)),
      p90: round(this.quantile(0.9)),
      p99: round(this.quantile(0.99)),
      p999: round(this.quantile(0.999)),
      max: round(this.max),
    };
  }

  static fromData(...parts: HistogramData[]): Histogram {
    const h = new Histogram();
    for (const p of parts) h.merge(p);
    return h;
  }
}

/** Three significant decimals are plenty for milliseconds. */
export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
