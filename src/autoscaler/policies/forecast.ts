/**
 * @module autoscaler/policies/forecast
 * Predictive scaling: an additive Holt-Winters forecast of the arrival rate, sized one cold start
 * ahead, with a reactive floor under it: forecast at the replica start-up lead time, size to an upper
 * quantile of the forecast error, and let a reactive loop correct above that floor (the shape of
 * Dynamo's planner, whose throughput mode sets a floor that its load mode scales above: ai-dynamo/dynamo
 * `docs/design-docs/planner-design.md`).
 *
 * **Series.** The policy keeps its own step accumulator. At each decision it reads
 * `arrivalRate(now − previous decision)`, turns it into a count, and spreads that count evenly over
 * the steps (default 60 s, aligned to multiples of `stepMs` on the host's clock) that the elapsed
 * time covers; a step whose end has passed becomes one observation, its mean rate in req/s. This
 * rather than reading `arrivalRate(stepMs)` once a boundary has passed, because decisions are not
 * aligned to step boundaries: that read would straddle two steps, count some arrivals twice and miss
 * others whenever a decision is late, skipped, or `intervalMs` does not divide `stepMs`. Summing the
 * intervals counts every arrival once, in the step it fell in (to within one interval). The first
 * step is usually seen only in part; its rate is its count over the part seen.
 *
 * **Model** ({@link HoltWinters}): additive Holt-Winters with season length `seasonSteps` (default a
 * day of steps). Until one full season is observed it runs Holt's level + trend only, and the reason
 * says so (`…-holt`). After the first season it starts over from that season: level = its mean,
 * trend 0, seasonal index = each step minus the mean (one season cannot tell trend from season). Each
 * update is O(1) (the first-season mean is subtracted lazily, so even the switch is O(1)); memory is
 * one `Float64Array` of the season length.
 *
 * **Decision** (every 10 s), with c = replicaRps × utilization (default 0.8):
 *
 *     peak     = max(0, forecast of every step that overlaps [now, now + coldStartMs + intervalMs + stepMs))
 *     forecast = ceil((peak + z × errorStd) / c)          z = 1.64 (≈ the one-sided 95 % normal quantile)
 *     reactive = ceil(arrivalRate(30 s) / c)              so a burst the model did not see is not ignored
 *     raw      = 0 if min = 0 and peak < zeroRps and arrivalRate(30 s) < zeroRps, else max(forecast, reactive)
 *     desired  = max of raw over the last downDelayMs (default 120 s)
 *
 * The horizon: replicas asked now serve from now + coldStartMs, and the next decision's replicas
 * from one interval later, so this decision must cover until now + coldStartMs + intervalMs; one
 * more step because a step's mean hides a rise inside it. `errorStd` is the root mean square of the
 * one-step-ahead errors (exponentially weighted; bias counts as error, so a model that lags a trend
 * gets more headroom). Scaling up is immediate. Scaling down is HPA-style (kubernetes/kubernetes
 * `pkg/controller/podautoscaler/horizontal.go`, `stabilizeRecommendationWithBehaviors`): down only to the
 * highest recommendation of the last `downDelayMs`, which also delays scale-to-zero by that long
 * after both rates fell below `zeroRps`.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

/** Absorbs float noise before `ceil`, so a forecast of 10.000000000000002 req/s does not buy a replica. */
const CEIL_SLACK = 1e-9;

export interface HoltWintersOptions {
  /** Steps in one season (m), a whole number ≥ 2. */
  readonly seasonLength?: number;
  /** Level smoothing α, in (0, 1]. */
  readonly alpha?: number;
  /** Trend smoothing β, in [0, 1]. */
  readonly beta?: number;
  /** Seasonal smoothing γ, in [0, 1]. */
  readonly gamma?: number;
  /** Weight of the newest squared error in {@link HoltWinters.errorStd}, in (0, 1]. */
  readonly errorAlpha?: number;
}

// Ours, not a peer's: the textbook equations (below) come with no smoothing constants for this use.
export const HOLT_WINTERS_DEFAULTS: Readonly<Required<HoltWintersOptions>> = Object.freeze({
  seasonLength: 1440, // ours: a daily season at 1-min steps
  alpha: 0.3, // level follows a change within a few steps
  beta: 0.02, // trend changes slowly; a large β chases noise in per-minute counts
  gamma: 0.25, // each seasonal slot is updated once a season, so it must learn within a few seasons
  errorAlpha: 0.02, // error memory ≈ 50 steps (under an hour at 60 s steps)
});

/**
 * Additive Holt-Winters, fitted online (Hyndman & Athanasopoulos, *Forecasting: Principles and
 * Practice*, 3rd ed., §8.3, https://otexts.com/fpp3/holt-winters.html; Winters, Management Science
 * 6(3), 1960), in error-correction form, which is the same recursion and keeps a constant series
 * exact in floating point:
 *
 *     e   = y − (ℓ + b + s[t−m])
 *     ℓ'  = ℓ + b + α e
 *     b'  = b + β (ℓ' − ℓ − b)
 *     s[t] = s[t−m] + γ (y − ℓ − b − s[t−m])
 *     ŷ(t+h) = ℓ + h b + s[t+h−m(k+1)],  k = floor((h−1)/m)
 *
 * Before `seasonLength` observations it is Holt's method (s ≡ 0, started from ℓ = y₀, b = 0); then it
 * restarts from the first season (see the module comment). Seasonal slots live in a ring indexed by
 * observation number mod m.
 */
export class HoltWinters {
  private readonly o: Readonly<Required<HoltWintersOptions>>;
  /** Raw values during the first season; seasonal indices after it (see {@link seasonalAt}). */
  private readonly ring: Float64Array;
  private n = 0;
  private levelV = Number.NaN;
  private trendV = 0;
  private firstSeasonSum = 0;
  /** Mean of the first season: still to be subtracted from slots not rewritten since. */
  private firstSeasonMean = 0;
  private errors = 0;
  private meanSquaredError = 0;

  constructor(options: HoltWintersOptions = {}) {
    const o = { ...HOLT_WINTERS_DEFAULTS, ...defined(options) };
    assert(
      Number.isInteger(o.seasonLength) && o.seasonLength >= 2,
      `holt-winters: seasonLength must be a whole number ≥ 2, got ${o.seasonLength}`,
    );
    assert(o.alpha > 0 && o.alpha <= 1, `holt-winters: alpha must be in (0, 1], got ${o.alpha}`);
    assert(o.beta >= 0 && o.beta <= 1, `holt-winters: beta must be in [0, 1], got ${o.beta}`);
    assert(o.gamma >= 0 && o.gamma <= 1, `holt-winters: gamma must be in [0, 1], got ${o.gamma}`);
    assert(
      o.errorAlpha > 0 && o.errorAlpha <= 1,
      `holt-winters: errorAlpha must be in (0, 1], got ${o.errorAlpha}`,
    );
    this.o = o;
    this.ring = new Float64Array(o.seasonLength);
  }

  /** Observations so far. */
  get observations(): number {
    return this.n;
  }

  /** True once a full season has been observed (the seasonal model is in use; before: Holt). */
  get seasonal(): boolean {
    return this.n >= this.o.seasonLength;
  }

  /** Current level ℓ (NaN before the first observation). */
  get level(): number {
    return this.levelV;
  }

  /** Current trend b, per step. */
  get trend(): number {
    return this.trendV;
  }

  /**
   * Root mean square of the one-step-ahead errors: the plain mean of the squares over the first
   * 1/errorAlpha errors, exponentially weighted after (NaN before the first error).
   */
  get errorStd(): number {
    return this.errors === 0 ? Number.NaN : Math.sqrt(this.meanSquaredError);
  }

  /** Folds in the next observation. O(1). */
  update(y: number): void {
    assert(Number.isFinite(y), `holt-winters: observation must be finite, got ${y}`);
    const m = this.o.seasonLength;
    if (this.n > 0) this.recordError(y - this.forecast(1));
    if (this.n < m) {
      this.updateFirstSeason(y);
    } else {
      const { alpha, beta, gamma } = this.o;
      const slot = this.n % m;
      const s = this.seasonalAt(slot);
      const base = this.levelV + this.trendV;
      const level = base + alpha * (y - s - base);
      this.trendV += beta * (level - this.levelV - this.trendV);
      this.ring[slot] = s + gamma * (y - base - s);
      this.levelV = level;
    }
    this.n++;
  }

  /** Forecast `h` ≥ 1 steps after the last observation (NaN before the first). */
  forecast(h: number): number {
    assert(Number.isInteger(h) && h >= 1, `holt-winters: horizon must be a whole number ≥ 1, got ${h}`);
    if (this.n === 0) return Number.NaN;
    const trended = this.levelV + h * this.trendV;
    if (!this.seasonal) return trended;
    // The ring holds the newest estimate of each slot, i.e. s[t+h−m(k+1)].
    return trended + this.seasonalAt((this.n - 1 + h) % this.o.seasonLength);
  }

  private updateFirstSeason(y: number): void {
    const m = this.o.seasonLength;
    this.ring[this.n] = y;
    this.firstSeasonSum += y;
    if (this.n === 0) {
      this.levelV = y;
    } else if (this.n < m - 1) {
      const { alpha, beta } = this.o;
      const base = this.levelV + this.trendV;
      const level = base + alpha * (y - base);
      this.trendV += beta * (level - this.levelV - this.trendV);
      this.levelV = level;
    } else {
      // Season complete: restart from it. Slots keep raw values; seasonalAt subtracts the mean
      // until each is rewritten, so this switch costs O(1), not O(m).
      this.firstSeasonMean = this.firstSeasonSum / m;
      this.levelV = this.firstSeasonMean;
      this.trendV = 0;
    }
  }

  /** Seasonal index of `slot`; slots not yet rewritten since the first season still hold raw values. */
  private seasonalAt(slot: number): number {
    const raw = this.ring[slot]!;
    return slot < this.n - this.o.seasonLength ? raw : raw - this.firstSeasonMean;
  }

  private recordError(e: number): void {
    this.errors++;
    const w = Math.max(this.o.errorAlpha, 1 / this.errors);
    this.meanSquaredError += w * (e * e - this.meanSquaredError);
  }
}

export interface ForecastOptions {
  /** How often it decides, ms. */
  readonly intervalMs?: number;
  /** Width of one step of the series, ms (a whole number > 0). */
  readonly stepMs?: number;
  /** Steps in one season; null: one day of steps. */
  readonly seasonSteps?: number | null;
  /** Smoothing constants of the model (see {@link HOLT_WINTERS_DEFAULTS}). */
  readonly alpha?: number;
  readonly beta?: number;
  readonly gamma?: number;
  readonly errorAlpha?: number;
  /** Headroom in standard deviations of the one-step forecast error. */
  readonly z?: number;
  /** Share of `replicaRps` a replica is planned to carry, in (0, 1]. */
  readonly utilization?: number;
  /** Window of the reactive floor's arrival rate, ms. */
  readonly shortWindowMs?: number;
  /** How long a lower recommendation must persist before it is followed, ms. */
  readonly downDelayMs?: number;
  /** Below this rate (req/s), forecast and short-window rate both count as no traffic. */
  readonly zeroRps?: number;
}

export const FORECAST_DEFAULTS: Readonly<Required<ForecastOptions>> = Object.freeze({
  intervalMs: 10_000, // ours: a step is 60 s, so deciding more often only serves the reactive floor
  stepMs: 60_000, // ours: 1-min steps
  seasonSteps: null, // ours: daily season (1440 at 1-min steps)
  alpha: HOLT_WINTERS_DEFAULTS.alpha,
  beta: HOLT_WINTERS_DEFAULTS.beta,
  gamma: HOLT_WINTERS_DEFAULTS.gamma,
  errorAlpha: HOLT_WINTERS_DEFAULTS.errorAlpha,
  z: 1.64, // ours: size to an upper quantile of the forecast error, one-sided 95 %
  utilization: 0.8, // ours; Knative plans 70 % of capacity, but replicaRps is already "within SLO"
  shortWindowMs: 30_000, // ours; Ray Serve's look_back_period_s is 30 s (AutoscalingConfig)
  downDelayMs: 120_000, // ours; HPA keeps the highest of the last 300 s, shortened: the forecast already looks ahead
  zeroRps: 0.01, // ours: under one request per 100 s
});

/** The options `scaling.options` may set (each defaults to {@link FORECAST_DEFAULTS}). */
export const FORECAST_OPTIONS = z.strictObject({
  intervalMs: z.number().positive().optional(),
  stepMs: z.number().int().positive().optional(),
  seasonSteps: z.number().int().min(2).nullable().optional(),
  alpha: z.number().gt(0).max(1).optional(),
  beta: z.number().min(0).max(1).optional(),
  gamma: z.number().min(0).max(1).optional(),
  errorAlpha: z.number().gt(0).max(1).optional(),
  z: z.number().nonnegative().optional(),
  utilization: z.number().gt(0).max(1).optional(),
  shortWindowMs: z.number().positive().optional(),
  downDelayMs: z.number().nonnegative().optional(),
  zeroRps: z.number().nonnegative().optional(),
});

/** A Holt-Winters predictive policy for one pool; see the module comment. */
export function createForecast(options: ForecastOptions = {}): ScalingPolicy {
  return new ForecastPolicy({ ...FORECAST_DEFAULTS, ...defined(options) });
}

class ForecastPolicy implements ScalingPolicy {
  readonly name = 'forecast';
  readonly intervalMs: number;
  private readonly model: HoltWinters;
  /** Time up to which arrivals are in the series; NaN before the first decision. */
  private seenToMs = Number.NaN;
  /** Arrivals and covered time of the step in progress. */
  private stepCount = 0;
  private stepCoveredMs = 0;
  /** Raw recommendations of the last downDelayMs, oldest first (at most downDelayMs / interval + 1). */
  private readonly recent: { atMs: number; raw: number }[] = [];

  constructor(private readonly o: Readonly<Required<ForecastOptions>>) {
    const positive = (v: number, field: string) =>
      assert(v > 0 && Number.isFinite(v), `forecast: ${field} must be a positive number, got ${v}`);
    positive(o.intervalMs, 'intervalMs');
    positive(o.shortWindowMs, 'shortWindowMs');
    assert(Number.isInteger(o.stepMs) && o.stepMs > 0, `forecast: stepMs must be a whole number > 0`);
    assert(o.z >= 0, `forecast: z must be ≥ 0, got ${o.z}`);
    assert(o.utilization > 0 && o.utilization <= 1, `forecast: utilization must be in (0, 1]`);
    assert(o.downDelayMs >= 0, `forecast: downDelayMs must be ≥ 0, got ${o.downDelayMs}`);
    assert(o.zeroRps >= 0, `forecast: zeroRps must be ≥ 0, got ${o.zeroRps}`);
    this.intervalMs = o.intervalMs;
    const seasonLength = o.seasonSteps ?? Math.round(86_400_000 / o.stepMs);
    const { alpha, beta, gamma, errorAlpha } = o;
    this.model = new HoltWinters({ seasonLength, alpha, beta, gamma, errorAlpha });
  }

  decide(ctx: ScalingContext): ScalingDecision {
    assert(ctx.replicaRps > 0, `forecast: replicaRps must be > 0, got ${ctx.replicaRps}`);
    this.accumulate(ctx);
    const perReplicaRps = ctx.replicaRps * this.o.utilization;
    const shortRps = ctx.metrics.arrivalRate(this.o.shortWindowMs);
    const peakRps = this.peakForecast(ctx);
    const errorStd = this.model.errorStd;
    const headroomRps = Number.isNaN(errorStd) ? 0 : this.o.z * errorStd;
    const byForecast = replicasFor(peakRps + headroomRps, perReplicaRps);
    const byRate = replicasFor(shortRps, perReplicaRps);
    const idle = ctx.minReplicas === 0 && peakRps < this.o.zeroRps && shortRps < this.o.zeroRps;
    const raw = idle ? 0 : Math.max(byForecast, byRate);
    const desired = this.holdDown(ctx.nowMs, raw);
    const suffix = this.model.seasonal ? '' : '-holt';
    if (desired > raw) return { desired, reason: `down-delay${suffix}` };
    if (idle) return { desired, reason: 'scale-to-zero' };
    return { desired, reason: (byForecast >= byRate ? 'forecast' : 'reactive') + suffix };
  }

  /** Adds the arrivals since the last decision to the steps they fell in; closes finished steps. */
  private accumulate(ctx: ScalingContext): void {
    const now = ctx.nowMs;
    if (Number.isNaN(this.seenToMs)) {
      this.seenToMs = now;
      return;
    }
    const elapsedMs = now - this.seenToMs;
    if (elapsedMs <= 0) return;
    const rps = ctx.metrics.arrivalRate(elapsedMs);
    const step = this.o.stepMs;
    let from = this.seenToMs;
    while (from < now) {
      const stepEnd = (Math.floor(from / step) + 1) * step;
      const to = Math.min(stepEnd, now);
      this.stepCount += (rps * (to - from)) / 1000;
      this.stepCoveredMs += to - from;
      if (to === stepEnd) {
        this.model.update(this.stepCount / (this.stepCoveredMs / 1000));
        this.stepCount = 0;
        this.stepCoveredMs = 0;
      }
      from = to;
    }
    this.seenToMs = now;
  }

  /** Highest forecast rate over the steps that overlap [now, now + cold start + interval + step). */
  private peakForecast(ctx: ScalingContext): number {
    if (this.model.observations === 0) return 0;
    const step = this.o.stepMs;
    const current = Math.floor(ctx.nowMs / step); // forecast h = 1 (every earlier step is closed)
    const endMs = ctx.nowMs + ctx.coldStartMs + this.o.intervalMs + step;
    const last = Math.ceil(endMs / step) - 1;
    let peak = 0;
    for (let h = 1; h <= last - current + 1; h++) peak = Math.max(peak, this.model.forecast(h));
    return peak;
  }

  /** Highest raw recommendation within the last downDelayMs, this one included. */
  private holdDown(nowMs: number, raw: number): number {
    const recent = this.recent;
    while (recent.length > 0 && recent[0]!.atMs <= nowMs - this.o.downDelayMs) recent.shift();
    recent.push({ atMs: nowMs, raw });
    let high = 0;
    for (const r of recent) high = Math.max(high, r.raw);
    return high;
  }
}

/** Replicas that carry `rps` at `perReplicaRps` each. */
function replicasFor(rps: number, perReplicaRps: number): number {
  return Math.max(0, Math.ceil(rps / perReplicaRps - CEIL_SLACK));
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
