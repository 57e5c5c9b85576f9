/**
 * @module autoscaler/metrics-window
 * A pool's recent metrics in fixed memory: a ring of 1-second buckets that its host (the live
 * gateway or the simulator) records into and the scaling policies read through {@link MetricsView}.
 *
 * ```
 *  time ──►   (k−1)s    ks      (k+1)s              bucket k covers (k·1000, (k+1)·1000] ms
 *            ┌───────┬───────┬───────┬─ … ─┐
 *   ring     │ k−1   │  k    │ k+1   │     │         slot = k mod (⌈span / 1 s⌉ + 1)
 *            └───────┴───────┴───────┴─ … ─┘         a slot whose stored k differs is empty
 *   each bucket: arrivals, completions, output tokens, ∫concurrency dt, ∫queued dt,
 *                ∫engineWaiting dt, ∫kvUsage dt, covered ms, kv-covered ms,
 *                TTFT histogram, TPOT histogram (48 log-scale bins, 1 ms … 600 s)
 * ```
 *
 * Time. Every call takes the host's time in ms. The window keeps the latest time given to any
 * call, recording or query (`at`, `idleMs(nowMs)`), and every query is answered "as of" that
 * time, Q. A recording call with a time earlier than Q is taken as happening at Q, so a late
 * report is never lost. A host calls `at(now)` before handing the window to a policy so that the
 * windows end at the decision time.
 *
 * Windows. A query over `windowMs` covers (Q − W, Q] with W = min(windowMs, spanMs). An event
 * (arrival, first token, completion) at time t falls in bucket ⌈t / 1000⌉ − 1, so an event at
 * exactly Q counts and one at exactly Q − W does not. When Q and W are whole seconds the window
 * is a whole number of buckets and every answer is exact; otherwise the bucket that straddles
 * Q − W contributes pro rata to the part of it inside the window (as if its content were spread
 * evenly over it).
 *
 * Gauges (concurrency, queued, engineWaiting, kvUsage) are time averages of the samples, each
 * held from its time until the next sample (the latest one until Q), like Knative's per-second
 * concurrency buckets averaged over the window (knative/serving
 * `pkg/autoscaler/aggregation/bucketing.go`). A window that reaches before the first sample averages
 * over the part of it after the first sample only (Knative's bucketing does the same); if that part
 * is empty (the first sample is at Q) the answer is the latest sample.
 * Before any sample the gauges are 0 (kvUsage NaN). kvUsage averages only over time whose
 * sample had a finite kvUsage; with none in the window it is NaN.
 *
 * Rates (arrivals, completions, output tokens per second) divide the events in the window by
 * min(W, Q − origin), at least min(W, 1 s), where origin is the first time given to any call:
 * a window that reaches before the window existed counts only the time since, and a first second
 * divides by a whole second (like Knative's division by the number of buckets since the first).
 *
 * Quantiles (TTFT at first token, TPOT at completion) merge the buckets' histograms over the
 * window and interpolate log-linearly inside the bin that holds rank q × count: a single value in
 * bin i reads back as the bin's geometric midpoint, within a factor of 1.32^½ ≈ 1.15 of the truth.
 * Values under 1 ms count in the lowest bin and values over 600 s in the highest.
 *
 * Cost: a query reads at most ⌈W / 1 s⌉ + 1 buckets (× 48 bins for a quantile); a sample that
 * follows a long gap writes at most the ring's length of buckets. Recording allocates nothing
 * after the constructor.
 */
import { assert } from '../core/assert.js';
import type { MetricsView } from './types.js';

/**
 * Width of one bucket, ms (Knative's bucket and scrape granularity, 1 s: knative/serving
 * `pkg/autoscaler/config/config.go`).
 */
export const BUCKET_MS = 1000;
/** Default longest window a {@link MetricsWindow} answers, ms. */
export const DEFAULT_SPAN_MS = 600_000;
/** Latency histogram: bins, and the lower edge of the first and upper edge of the last, ms. */
export const LATENCY_BINS = 48;
export const LATENCY_MIN_MS = 1;
export const LATENCY_MAX_MS = 600_000;
const LOG_MIN = Math.log(LATENCY_MIN_MS);
const LOG_BIN = (Math.log(LATENCY_MAX_MS) - LOG_MIN) / LATENCY_BINS;

/** Lower edge of latency bin `i` (0..{@link LATENCY_BINS}), ms; bin i is [edge(i), edge(i + 1)). */
export function latencyBinEdgeMs(i: number): number {
  return Math.exp(LOG_MIN + i * LOG_BIN);
}

/** The bin a latency falls in, clamped to the first and last. */
export function latencyBin(ms: number): number {
  if (!(ms > LATENCY_MIN_MS)) return 0;
  return Math.min(LATENCY_BINS - 1, Math.floor((Math.log(ms) - LOG_MIN) / LOG_BIN));
}

/** What the host reads from its pool about once a second. */
export interface PoolSample {
  /** Requests in flight at the pool's replicas (fleet total). */
  readonly inFlight: number;
  /** Requests waiting in the gateway for the pool: its queue and the activator (fleet total). */
  readonly queued: number;
  /** Requests waiting inside the engines' own queues (fleet total). */
  readonly engineWaiting: number;
  /** Mean KV-cache usage across ready replicas, 0..1; NaN when unknown. */
  readonly kvUsage: number;
}

export interface MetricsWindowOptions {
  /** Longest window it answers, ms (default {@link DEFAULT_SPAN_MS}); longer queries are clamped to it. */
  readonly spanMs?: number;
}

/** Per-bucket sums, struct of arrays: field offsets within a slot's {@link FIELDS} entries. */
const F = {
  arrivals: 0,
  completions: 1,
  outputTokens: 2,
  /** ∫ (inFlight + queued) dt, request·ms. */
  concurrency: 3,
  queued: 4,
  engineWaiting: 5,
  /** ∫ kvUsage dt over time with a finite kvUsage. */
  kv: 6,
  /** ms of the bucket covered by samples. */
  covered: 7,
  /** ms of the bucket covered by samples with a finite kvUsage. */
  kvCovered: 8,
} as const;
const FIELDS = 9;
/** Offsets in {@link MetricsWindow.last}; the gauges' order matches F (concurrency, queued, engineWaiting). */
const L = { concurrency: 0, queued: 1, engineWaiting: 2, kv: 3 } as const;
type Field = (typeof F)[keyof typeof F];
type Gauge = typeof F.concurrency | typeof F.queued | typeof F.engineWaiting;

/** A pool's recent metrics; see the module comment. */
export class MetricsWindow implements MetricsView {
  readonly spanMs: number;
  private readonly slots: number;
  /** Bucket number held by each slot (NaN: never written). */
  private readonly bucketOf: Float64Array;
  private readonly sums: Float64Array;
  private readonly ttft: Float64Array;
  private readonly tpot: Float64Array;
  /** Scratch for merging histograms at query time. */
  private readonly merged = new Float64Array(LATENCY_BINS);

  /** Q: the latest time given to any call. */
  private nowMs = Number.NEGATIVE_INFINITY;
  private originMs = Number.NaN;
  private lastArrivalMs = Number.NEGATIVE_INFINITY;
  private firstSampleMs = Number.NaN;
  private lastSampleMs = Number.NaN;
  /** The latest sample, held until the next: concurrency (inFlight + queued), queued, engineWaiting, kvUsage. */
  private readonly last = new Float64Array([0, 0, 0, Number.NaN]);

  constructor(opts: MetricsWindowOptions = {}) {
    const spanMs = opts.spanMs ?? DEFAULT_SPAN_MS;
    assert(
      Number.isFinite(spanMs) && spanMs >= BUCKET_MS,
      `metrics-window: spanMs must be a number of ms ≥ ${BUCKET_MS}, got ${spanMs}`,
    );
    this.spanMs = spanMs;
    // A window of ⌈span⌉ seconds that does not start on a bucket edge touches one bucket more.
    this.slots = Math.ceil(spanMs / BUCKET_MS) + 1;
    this.bucketOf = new Float64Array(this.slots).fill(Number.NaN);
    this.sums = new Float64Array(this.slots * FIELDS);
    this.ttft = new Float64Array(this.slots * LATENCY_BINS);
    this.tpot = new Float64Array(this.slots * LATENCY_BINS);
  }

  // ── recording (host-facing) ────────────────────────────────────────────────

  /** A request for the pool arrived (or reached the gateway). */
  arrival(nowMs: number): void {
    const t = this.advance(nowMs);
    this.lastArrivalMs = t;
    this.sums[this.slotFor(eventBucket(t)) * FIELDS + F.arrivals]! += 1;
  }

  /** A request's first token came, `ttftMs` after its arrival. */
  firstToken(nowMs: number, ttftMs: number): void {
    assert(ttftMs >= 0, `metrics-window: ttftMs must be a number of ms ≥ 0, got ${ttftMs}`);
    const t = this.advance(nowMs);
    this.ttft[this.slotFor(eventBucket(t)) * LATENCY_BINS + latencyBin(ttftMs)]! += 1;
  }

  /** A request completed with `outputTokens` tokens at a mean time per output token of `tpotMs`. */
  completed(nowMs: number, tpotMs: number, outputTokens: number): void {
    assert(outputTokens >= 0, `metrics-window: outputTokens must be ≥ 0, got ${outputTokens}`);
    const t = this.advance(nowMs);
    const slot = this.slotFor(eventBucket(t));
    this.sums[slot * FIELDS + F.completions]! += 1;
    this.sums[slot * FIELDS + F.outputTokens]! += outputTokens;
    // A one-token reply has no inter-token time; it counts as a completion but not for TPOT.
    if (Number.isFinite(tpotMs)) this.tpot[slot * LATENCY_BINS + latencyBin(tpotMs)]! += 1;
  }

  /** The pool's state now; it holds until the next sample (about one a second). */
  sample(nowMs: number, s: PoolSample): void {
    assert(
      s.inFlight >= 0 && s.queued >= 0 && s.engineWaiting >= 0,
      `metrics-window: sample counts must be ≥ 0, got ${s.inFlight}/${s.queued}/${s.engineWaiting}`,
    );
    const t = this.advance(nowMs);
    if (Number.isNaN(this.lastSampleMs)) this.firstSampleMs = t;
    else this.commit(this.lastSampleMs, t);
    this.lastSampleMs = t;
    const last = this.last;
    last[L.concurrency] = s.inFlight + s.queued;
    last[L.queued] = s.queued;
    last[L.engineWaiting] = s.engineWaiting;
    last[L.kv] = s.kvUsage;
  }

  /**
   * Sets the query time Q to `nowMs` (it never moves back) and returns the window, so a host can
   * write `metrics: window.at(now)` when it builds a {@link ScalingContext}.
   */
  at(nowMs: number): this {
    this.advance(nowMs);
    return this;
  }

  // ── queries (MetricsView) ──────────────────────────────────────────────────

  arrivalRate(windowMs: number): number {
    return this.rate(F.arrivals, windowMs);
  }

  completionRate(windowMs: number): number {
    return this.rate(F.completions, windowMs);
  }

  tokensPerSecond(windowMs: number): number {
    return this.rate(F.outputTokens, windowMs);
  }

  concurrency(windowMs: number): number {
    return this.gauge(F.concurrency, windowMs);
  }

  queued(windowMs: number): number {
    return this.gauge(F.queued, windowMs);
  }

  engineWaiting(windowMs: number): number {
    return this.gauge(F.engineWaiting, windowMs);
  }

  kvUsage(windowMs: number): number {
    const lo = this.windowStart(windowMs);
    if (Number.isNaN(this.lastSampleMs)) return Number.NaN;
    let sum = 0;
    let covered = 0;
    this.forCommitted(lo, (slot, w) => {
      sum += w * this.sums[slot * FIELDS + F.kv]!;
      covered += w * this.sums[slot * FIELDS + F.kvCovered]!;
    });
    const latest = this.last[L.kv]!;
    const open = this.nowMs - Math.max(lo, this.lastSampleMs);
    if (Number.isFinite(latest) && open > 0) {
      sum += latest * open;
      covered += open;
    }
    if (covered > 0) return sum / covered;
    // An empty window after the first sample: the latest sample is the current state.
    return this.coverage(lo) > 0 ? Number.NaN : latest;
  }

  ttftQuantile(q: number, windowMs: number): number {
    return this.quantile(this.ttft, q, windowMs);
  }

  tpotQuantile(q: number, windowMs: number): number {
    return this.quantile(this.tpot, q, windowMs);
  }

  /**
   * Milliseconds from the last arrival to Q (+Infinity: none yet). With `nowMs` it first sets Q
   * as {@link MetricsWindow.at} does.
   */
  idleMs(nowMs?: number): number {
    if (nowMs !== undefined) this.advance(nowMs);
    return this.lastArrivalMs === Number.NEGATIVE_INFINITY ? Infinity : this.nowMs - this.lastArrivalMs;
  }

  // ── internals ──────────────────────────────────────────────────────────────

  /** Moves Q forward to `nowMs` and returns the time the call is recorded at (≥ Q before). */
  private advance(nowMs: number): number {
    assert(Number.isFinite(nowMs), `metrics-window: time must be a finite number of ms, got ${nowMs}`);
    if (Number.isNaN(this.originMs)) this.originMs = nowMs;
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    return this.nowMs;
  }

  /** The slot of bucket `k`, emptied first if it holds an older bucket. */
  private slotFor(k: number): number {
    const slot = mod(k, this.slots);
    const held = this.bucketOf[slot]!;
    if (held !== k) {
      assert(!(held > k), `metrics-window: bucket ${k} is older than the ring`);
      this.bucketOf[slot] = k;
      this.sums.fill(0, slot * FIELDS, (slot + 1) * FIELDS);
      this.ttft.fill(0, slot * LATENCY_BINS, (slot + 1) * LATENCY_BINS);
      this.tpot.fill(0, slot * LATENCY_BINS, (slot + 1) * LATENCY_BINS);
    }
    return slot;
  }

  /** The slot holding bucket `k`, or −1 when the ring no longer (or never) held it. */
  private slotOf(k: number): number {
    const slot = mod(k, this.slots);
    return this.bucketOf[slot] === k ? slot : -1;
  }

  /** Adds the latest sample, held over (a, b], to the buckets it spans (only the ring's length of it). */
  private commit(a: number, b: number): void {
    if (b <= a) return;
    const kEnd = eventBucket(b);
    const from = Math.max(a, (kEnd - this.slots + 1) * BUCKET_MS);
    const last = this.last;
    const kvUsage = last[L.kv]!;
    const kv = Number.isFinite(kvUsage);
    for (let k = Math.floor(from / BUCKET_MS); k <= kEnd; k++) {
      const ms = Math.min(b, (k + 1) * BUCKET_MS) - Math.max(from, k * BUCKET_MS);
      if (ms <= 0) continue;
      const base = this.slotFor(k) * FIELDS;
      const sums = this.sums;
      sums[base + F.concurrency]! += last[L.concurrency]! * ms;
      sums[base + F.queued]! += last[L.queued]! * ms;
      sums[base + F.engineWaiting]! += last[L.engineWaiting]! * ms;
      sums[base + F.covered]! += ms;
      if (kv) {
        sums[base + F.kv]! += kvUsage * ms;
        sums[base + F.kvCovered]! += ms;
      }
    }
  }

  /** Q − W, with W clamped to the span. */
  private windowStart(windowMs: number): number {
    assert(windowMs > 0, `metrics-window: windowMs must be a positive number of ms, got ${windowMs}`);
    return this.nowMs - Math.min(windowMs, this.spanMs);
  }

  /** Events of `field` in (lo, Q], the bucket straddling lo pro rata. */
  private forEvents(lo: number, visit: (slot: number, weight: number) => void): void {
    const q = this.nowMs;
    for (let k = Math.floor(lo / BUCKET_MS); k <= eventBucket(q); k++) {
      const slot = this.slotOf(k);
      if (slot < 0) continue;
      // Events in bucket k lie in (k s, min((k+1) s, Q)]; the part of that span after lo counts.
      const start = k * BUCKET_MS;
      const end = Math.min(start + BUCKET_MS, q);
      const weight = (end - Math.max(start, lo)) / (end - start);
      if (weight > 0) visit(slot, weight);
    }
  }

  /** Committed sample time in (lo, last sample], the bucket straddling lo pro rata. */
  private forCommitted(lo: number, visit: (slot: number, weight: number) => void): void {
    const first = this.firstSampleMs;
    const last = this.lastSampleMs;
    if (!(last > lo)) return;
    for (let k = Math.floor(Math.max(lo, first) / BUCKET_MS); k <= eventBucket(last); k++) {
      const slot = this.slotOf(k);
      if (slot < 0) continue;
      // After the first sample, time is covered without a gap; bucket k's share is this span.
      const start = Math.max(k * BUCKET_MS, first);
      const end = Math.min((k + 1) * BUCKET_MS, last);
      if (end <= start) continue;
      const weight = Math.min(1, (end - Math.max(start, lo)) / (end - start));
      if (weight > 0) visit(slot, weight);
    }
  }

  /** Length of (lo, Q] after the first sample. */
  private coverage(lo: number): number {
    return Number.isNaN(this.firstSampleMs) ? 0 : Math.max(0, this.nowMs - Math.max(lo, this.firstSampleMs));
  }

  private rate(field: Field, windowMs: number): number {
    const lo = this.windowStart(windowMs);
    if (Number.isNaN(this.originMs)) return 0;
    let count = 0;
    this.forEvents(lo, (slot, w) => {
      count += w * this.sums[slot * FIELDS + field]!;
    });
    const w = this.nowMs - lo;
    const seconds = Math.max(Math.min(w, this.nowMs - this.originMs), Math.min(w, BUCKET_MS)) / 1000;
    return count / seconds;
  }

  private gauge(field: Gauge, windowMs: number): number {
    const lo = this.windowStart(windowMs);
    if (Number.isNaN(this.lastSampleMs)) return 0;
    const covered = this.coverage(lo);
    const current = this.last[field - F.concurrency]!;
    if (covered === 0) return current;
    let sum = 0;
    this.forCommitted(lo, (slot, w) => {
      sum += w * this.sums[slot * FIELDS + field]!;
    });
    sum += current * Math.max(0, this.nowMs - Math.max(lo, this.lastSampleMs));
    return sum / covered;
  }

  private quantile(hist: Float64Array, q: number, windowMs: number): number {
    assert(q >= 0 && q <= 1, `metrics-window: quantile must be within [0, 1], got ${q}`);
    const lo = this.windowStart(windowMs);
    if (Number.isNaN(this.originMs)) return Number.NaN;
    const merged = this.merged.fill(0);
    let total = 0;
    this.forEvents(lo, (slot, w) => {
      const base = slot * LATENCY_BINS;
      for (let i = 0; i < LATENCY_BINS; i++) merged[i]! += w * hist[base + i]!;
    });
    for (let i = 0; i < LATENCY_BINS; i++) total += merged[i]!;
    if (total === 0) return Number.NaN;
    return binQuantile(merged, q * total);
  }
}

/** The value of rank `rank` (0..total) in a merged histogram, log-linear inside its bin. */
function binQuantile(merged: Float64Array, rank: number): number {
  let below = 0;
  let lastNonEmpty = 0;
  for (let i = 0; i < LATENCY_BINS; i++) {
    const n = merged[i]!;
    if (n <= 0) continue;
    lastNonEmpty = i;
    if (below + n >= rank) return Math.exp(LOG_MIN + (i + (rank - below) / n) * LOG_BIN);
    below += n;
  }
  return latencyBinEdgeMs(lastNonEmpty + 1);
}

/** The bucket an event at `t` ms falls in: bucket k covers (k·1000, (k+1)·1000]. */
function eventBucket(t: number): number {
  return Math.ceil(t / BUCKET_MS) - 1;
}

function mod(k: number, n: number): number {
  return ((k % n) + n) % n;
}
