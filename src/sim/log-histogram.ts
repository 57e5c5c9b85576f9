/**
 * @module sim/log-histogram
 * A fixed-size histogram with logarithmic buckets (1% relative width) for latency percentiles in
 * constant memory, however long the trace: p50/p90/p99 are within 1% of the exact value; count,
 * mean, min and max are exact.
 */

const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** Smallest distinguished value (ms); smaller values (and 0) share bucket 0. */
const MIN = 1e-3;
/** Buckets up to ~1e9 ms. */
const BUCKETS = Math.ceil(Math.log(1e12) / LOG_GROWTH) + 2;

export interface Percentiles {
  readonly count: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

export class LogHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private n = 0;
  private sum = 0;
  private lo = Number.POSITIVE_INFINITY;
  private hi = Number.NEGATIVE_INFINITY;

  add(v: number): void {
    if (!Number.isFinite(v)) return;
    this.n++;
    this.sum += v;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
    this.counts[bucketOf(v)]!++;
  }

  get count(): number {
    return this.n;
  }

  /** The value at quantile `q` (0..1): the geometric middle of its bucket, clamped to [min, max]. */
  quantile(q: number): number {
    if (this.n === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(this.hi, Math.max(this.lo, bucketValue(b)));
    }
    return this.hi;
  }

  /** The empirical CDF: (upper value of each non-empty bucket, fraction at or below it). */
  cdf(): [number, number][] {
    const out: [number, number][] = [];
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      const c = this.counts[b]!;
      if (c === 0) continue;
      seen += c;
      out.push([Math.min(this.hi, bucketValue(b + 0.5)), seen / this.n]);
    }
    return out;
  }

  summary(): Percentiles {
    const empty = this.n === 0;
    return {
      count: this.n,
      mean: empty ? Number.NaN : this.sum / this.n,
      min: empty ? Number.NaN : this.lo,
      max: empty ? Number.NaN : this.hi,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
    };
  }
}

function bucketOf(v: number): number {
  if (v <= MIN) return 0;
  return Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(v / MIN) / LOG_GROWTH));
}

function bucketValue(b: number): number {
  if (b === 0) return MIN;
  return MIN * GROWTH ** (b - 0.5);
}
