/**
 * @module autoscaler/policies/slo
 * Feedback on the SLO itself: scale on how close the pool's TTFT and TPOT percentiles are to their
 * targets, in the manner of Dynamo's load-based planner (ai-dynamo/dynamo
 * `docs/design-docs/planner-design.md`: act on SLA estimates, scale down below 80 % of the SLA, one
 * change at a time, none while one is pending), but measured rather than regressed, and
 * multiplicative upward.
 *
 * Each decision (every 5 s), over the last `windowMs` (default 30 s), with q = `ctx.slo.quantile`:
 *
 *     r    = max(ttftQuantile(q) / slo.ttftMs, tpotQuantile(q) / slo.tpotMs)   (a NaN term is left out)
 *     N    = ready + starting
 *     util = concurrency / (ready × concurrencyPerReplica)
 *
 * and the first rule that applies decides:
 *
 * 1. `scale-to-zero`: min is 0, no arrival for `idleMs` (120 s) and nothing in flight over the window
 *    (time-averaged concurrency 0) → 0.
 * 2. `from-zero`: N = 0 and traffic → 1. (The controller's activator wake does the same at once.)
 * 3. `hold-starting`: a replica is starting → max(lastDesired, N). The window still measures the old
 *    fleet, so acting on it again would add on top of a change under way (the caveat in Dynamo's
 *    `planner-design.md`: an interval shorter than a worker's start "may observe an in-progress
 *    transition"; vllm-project/aibrix PR #2671 adds a pending-replica guard for the same reason).
 * 4. `no-signal`: both percentiles NaN (no first token and no completion in the window) while
 *    requests wait in the gateway → N. No evidence either way; a pool that cannot produce one first
 *    token in 30 s shows its TTFTs as soon as it does, and rule 5 then acts on them.
 * 5. `slo-up`: r > 1 − upMargin (default 0.2, i.e. at 80 % of the SLO) →
 *    max(N + 1, ceil(N × min(maxUpFactor, r / (1 − upMargin)))). At r = 0.8·target the pool grows by
 *    one; each 20 % further above scales the fleet proportionally, at most ×2 per decision (the
 *    up-rate limit of HPA and AIBrix: kubernetes/kubernetes `pkg/apis/autoscaling/v2/defaults.go`,
 *    vllm-project/aibrix `pkg/controller/podautoscaler/context/context.go`).
 * 6. `slo-down` / `down-delay`: r < downThreshold (0.5) and util < downUtilization (0.5), both
 *    continuously for `downDelayMs` (120 s) → N − 1, never below 1 (only rule 1 goes to zero). The
 *    delay restarts after each step down, so the next step is judged on a window that measures the
 *    smaller fleet. Both tests are needed: a short, lightly loaded window can show excellent
 *    latencies on a pool that one replica fewer would overload.
 * 7. `stable` → N.
 *
 * A request's TTFT includes its wait in the gateway, so after a scale from zero the first TTFTs
 * carry the cold start and rule 5 adds one step; rule 3 keeps that to one step per cold start.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

const CEIL_SLACK = 1e-9;

export interface SloOptions {
  /** How often it decides, ms. */
  readonly intervalMs?: number;
  /** Window the percentiles, concurrency and queue are read over, ms. */
  readonly windowMs?: number;
  /** Scale up once r exceeds 1 − upMargin, in [0, 1). */
  readonly upMargin?: number;
  /** Most the fleet may grow by in one decision (a factor > 1). */
  readonly maxUpFactor?: number;
  /** Scale down only while r is below this, in [0, 1 − upMargin]. */
  readonly downThreshold?: number;
  /** In-flight requests one replica is meant to carry (for the utilisation test). */
  readonly concurrencyPerReplica?: number;
  /** Scale down only while utilisation is below this, in (0, 1]. */
  readonly downUtilization?: number;
  /** How long both scale-down conditions must hold, ms. */
  readonly downDelayMs?: number;
  /** Time without arrivals after which a pool with min 0 goes to zero, ms. */
  readonly idleMs?: number;
}

export const SLO_DEFAULTS: Readonly<Required<SloOptions>> = Object.freeze({
  intervalMs: 5_000, // Dynamo planner-design.md: load_adjustment_interval 5 s
  windowMs: 30_000, // ours; Ray Serve's look_back_period_s is 30 s (AutoscalingConfig)
  upMargin: 0.2, // Dynamo planner-design.md: 80 % sensitivity, used here as the point to start adding
  maxUpFactor: 2, // HPA's Percent 100 per 15 s (autoscaling/v2 defaults.go), AIBrix max-scale-up-rate 2
  downThreshold: 0.5, // ours: half the SLO, well below the 0.8 up trigger so the two never flap
  concurrencyPerReplica: 32, // ours: a batch an LLM replica carries comfortably; set it per engine
  downUtilization: 0.5, // ours: removing one of N ≥ 2 replicas then leaves them ≤ 100 % busy
  downDelayMs: 120_000, // ours; shorter than HPA's 300 s stabilization, the latency test already guards
  idleMs: 120_000, // ours; Knative removes the last pod 60 s window + 30 s grace after the last request
});

/** The options `scaling.options` may set (each defaults to {@link SLO_DEFAULTS}). */
export const SLO_OPTIONS = z
  .strictObject({
    intervalMs: z.number().positive().optional(),
    windowMs: z.number().positive().optional(),
    upMargin: z.number().min(0).lt(1).optional(),
    maxUpFactor: z.number().gt(1).optional(),
    downThreshold: z.number().min(0).max(1).optional(),
    concurrencyPerReplica: z.number().positive().optional(),
    downUtilization: z.number().gt(0).max(1).optional(),
    downDelayMs: z.number().nonnegative().optional(),
    idleMs: z.number().nonnegative().optional(),
  })
  .refine(
    (o) => (o.downThreshold ?? SLO_DEFAULTS.downThreshold) <= 1 - (o.upMargin ?? SLO_DEFAULTS.upMargin),
    { error: 'must be ≤ 1 − upMargin', path: ['downThreshold'] },
  );

/** An SLO-feedback policy for one pool; see the module comment. */
export function createSlo(options: SloOptions = {}): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return new SloPolicy({ ...SLO_DEFAULTS, ...defined });
}

class SloPolicy implements ScalingPolicy {
  readonly name = 'slo';
  readonly intervalMs: number;
  /** Since when both scale-down conditions have held; NaN: they do not now. */
  private lowSinceMs = Number.NaN;

  constructor(private readonly o: Readonly<Required<SloOptions>>) {
    const positive = (v: number, field: string) =>
      assert(v > 0 && Number.isFinite(v), `slo: ${field} must be a positive number, got ${v}`);
    positive(o.intervalMs, 'intervalMs');
    positive(o.windowMs, 'windowMs');
    positive(o.concurrencyPerReplica, 'concurrencyPerReplica');
    assert(o.upMargin >= 0 && o.upMargin < 1, `slo: upMargin must be in [0, 1), got ${o.upMargin}`);
    assert(o.maxUpFactor > 1, `slo: maxUpFactor must be > 1, got ${o.maxUpFactor}`);
    assert(
      o.downThreshold >= 0 && o.downThreshold <= 1 - o.upMargin,
      `slo: downThreshold must be in [0, 1 − upMargin], got ${o.downThreshold}`,
    );
    assert(o.downUtilization > 0 && o.downUtilization <= 1, `slo: downUtilization must be in (0, 1]`);
    assert(o.downDelayMs >= 0, `slo: downDelayMs must be ≥ 0, got ${o.downDelayMs}`);
    assert(o.idleMs >= 0, `slo: idleMs must be ≥ 0, got ${o.idleMs}`);
    this.intervalMs = o.intervalMs;
  }

  decide(ctx: ScalingContext): ScalingDecision {
    const { metrics, replicas, nowMs } = ctx;
    const w = this.o.windowMs;
    const n = replicas.ready + replicas.starting;
    const inFlight = metrics.concurrency(w);
    const idle = metrics.idleMs() >= this.o.idleMs && inFlight === 0;
    if (idle && ctx.minReplicas === 0) return this.settle(0, 'scale-to-zero');
    if (n === 0) return this.settle(idle ? 0 : 1, idle ? 'idle' : 'from-zero');
    if (replicas.starting > 0) return this.settle(Math.max(ctx.lastDesired, n), 'hold-starting');

    const r = this.sloRatio(ctx);
    if (Number.isNaN(r) && metrics.queued(w) > 0) return this.settle(n, 'no-signal');
    const upAt = 1 - this.o.upMargin;
    if (r > upAt) {
      const factor = Math.min(this.o.maxUpFactor, r / upAt);
      return this.settle(Math.max(n + 1, Math.ceil(n * factor - CEIL_SLACK)), 'slo-up');
    }
    const util = inFlight / (replicas.ready * this.o.concurrencyPerReplica);
    const low = !(r >= this.o.downThreshold) && util < this.o.downUtilization && n > 1;
    if (!low) return this.settle(n, 'stable');
    if (Number.isNaN(this.lowSinceMs)) this.lowSinceMs = nowMs;
    if (nowMs - this.lowSinceMs < this.o.downDelayMs) return { desired: n, reason: 'down-delay' };
    this.lowSinceMs = nowMs; // the next step down waits a full delay on the smaller fleet
    return { desired: n - 1, reason: 'slo-down' };
  }

  /** max(TTFT / target, TPOT / target) at the SLO's quantile; NaN when neither has a sample. */
  private sloRatio(ctx: ScalingContext): number {
    const { slo, metrics } = ctx;
    const w = this.o.windowMs;
    const ttft = metrics.ttftQuantile(slo.quantile, w) / slo.ttftMs;
    const tpot = metrics.tpotQuantile(slo.quantile, w) / slo.tpotMs;
    if (Number.isNaN(ttft)) return tpot;
    if (Number.isNaN(tpot)) return ttft;
    return Math.max(ttft, tpot);
  }

  /** A decision that is not a step down: the scale-down clock starts over. */
  private settle(desired: number, reason: string): ScalingDecision {
    this.lowSinceMs = Number.NaN;
    return { desired, reason };
  }
}
