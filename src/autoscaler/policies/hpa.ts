/**
 * @module autoscaler/policies/hpa
 * The Kubernetes Horizontal Pod Autoscaler (kubernetes/kubernetes
 * `pkg/controller/podautoscaler/{replica_calculator,horizontal}.go`; defaults from
 * `pkg/controller/podautoscaler/config/v1alpha1/defaults.go` and `pkg/apis/autoscaling/v2/defaults.go`;
 * https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/), with its defaults, on
 * any one of the pool's metrics. Our default metric for LLM pools: requests waiting in the engines
 * (vLLM `num_requests_waiting`), 5 per replica as in the KEDA trigger of vllm-project/production-stack
 * `tutorials/20-keda-autoscaling.md`.
 *
 * Every sync (15 s), with `ready` the ready replicas and `current` = ready + starting (the
 * Deployment's spec.replicas: what has been asked for and not taken away):
 *
 *     value   = the metric averaged over `windowMs`: a fleet total, or for kvUsage the mean per replica
 *     ratio   = (value / ready) / target           (kvUsage: value / target)
 *     raw     = current                 if |1 − ratio| ≤ tolerance 0.1      (replica_calculator.go)
 *               ceil(ratio × ready)     otherwise
 *     stabilized: each sync records raw; then                                   (horizontal.go)
 *               upFloor  = min(raw and the records of the last scale-up window 0 s)
 *               downCeil = max(raw and the records of the last scale-down window 300 s)
 *               stabilized = current, raised to upFloor, lowered to downCeil
 *               — a scale-down goes only to the HIGHEST recommendation of the last 5 minutes
 *     rate limit, per policy of period p, start = current − added in the last p + removed in it
 *               up:   Pods v → start + v; Percent v → ceil(start × (1 + v/100)); selectPolicy Max
 *                     → the largest;  new = min(stabilized, max(limit, current), maxReplicas)
 *               down: Pods v → start − v; Percent v → floor(start × (1 − v/100)); Max → the smallest;
 *                     new = max(stabilized, min(limit, current), minReplicas)
 *     defaults: up {Pods 4, Percent 100} per 15 s (max(+4, ×2)); down {Percent 100} per 15 s.
 *
 * AverageValue and Utilization. With a fleet total over ready replicas, a Pods metric's
 * ceil(ready × average / target) and an External metric's AverageValue ceil(total / target) are
 * the same count, so one rule serves both; kvUsage, a fraction per replica, is compared with a
 * fractional target as a Utilization is.
 *
 * Simplified, and why: starting replicas are the pending pods that HPA leaves out of the metric
 * for non-CPU metrics, so the formula counts ready replicas only (CPU's "unready pods count as 0
 * on a scale-up" gives the same ceil(total / target) for a total). With no ready replica HPA has no
 * metric and keeps `current`; at current 0 it asks for ceil(total / target) (the alpha
 * HPAScaleToZero rule, replica_calculator.go). A NaN metric (kvUsage never scraped) keeps `current`.
 * Scale events for the rate limits are this policy's own changes from `current` (HPA records its own
 * rescales).
 * As HPA does on its first sync (horizontal.go `recordInitialRecommendation`), the first decision
 * records `current` as a recommendation, so a new HPA does not scale down within 300 s.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { MetricsView, ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

/** The pool metrics an HPA can scale on (MetricsView's names). */
export type HpaMetric =
  | 'concurrency'
  | 'queued'
  | 'engineWaiting'
  | 'kvUsage'
  | 'arrivalRate'
  | 'tokensPerSecond';

/** One rate-limit policy (`behavior.scaleUp|scaleDown.policies[]`). */
export interface HpaScalingPolicy {
  readonly type: 'Pods' | 'Percent';
  readonly value: number;
  readonly periodMs: number;
}

/** `behavior.scaleUp` or `behavior.scaleDown`. */
export interface HpaScalingRules {
  readonly stabilizationWindowMs: number;
  readonly selectPolicy: 'Max' | 'Min' | 'Disabled';
  readonly policies: readonly HpaScalingPolicy[];
}

/** `scaleUp` and `scaleDown` given to {@link createHpa} replace the whole default rules object. */
export interface HpaOptions {
  readonly metric: HpaMetric;
  /** Target per ready replica: a count or rate for totals, a fraction (0..1) for kvUsage. */
  readonly target: number;
  /** Window the metric is averaged over, ms. */
  readonly windowMs: number;
  /** No change while |1 − ratio| is within it. */
  readonly tolerance: number;
  readonly scaleUp: HpaScalingRules;
  readonly scaleDown: HpaScalingRules;
  /** Sync period, ms. */
  readonly intervalMs: number;
}

/** Kubernetes' defaults (v1alpha1/defaults.go and autoscaling/v2/defaults.go unless said). */
export const HPA_DEFAULTS: Readonly<HpaOptions> = Object.freeze({
  metric: 'engineWaiting', // ours: HPA on num_requests_waiting per replica
  target: 5, // production-stack's KEDA trigger: num_requests_waiting threshold 5 (AverageValue)
  // Our choice, not a peer's: one sync period, so each decision sees the load since the last one.
  windowMs: 15_000,
  tolerance: 0.1, // tolerance 0.1
  scaleUp: Object.freeze({
    stabilizationWindowMs: 0, // scale-up stabilizationWindowSeconds 0
    selectPolicy: 'Max', // selectPolicy Max
    policies: Object.freeze([
      Object.freeze({ type: 'Pods', value: 4, periodMs: 15_000 }), // Pods 4 per 15 s
      Object.freeze({ type: 'Percent', value: 100, periodMs: 15_000 }), // Percent 100 per 15 s
    ]),
  }),
  scaleDown: Object.freeze({
    stabilizationWindowMs: 300_000, // --horizontal-pod-autoscaler-downscale-stabilization 300 s
    selectPolicy: 'Max', // selectPolicy Max
    policies: Object.freeze([Object.freeze({ type: 'Percent', value: 100, periodMs: 15_000 })]), // no limit
  }),
  intervalMs: 15_000, // --horizontal-pod-autoscaler-sync-period 15 s
} satisfies HpaOptions);

const hpaRulesSchema = z.strictObject({
  stabilizationWindowMs: z.number().nonnegative(),
  selectPolicy: z.enum(['Max', 'Min', 'Disabled']),
  policies: z.array(
    z.strictObject({
      type: z.enum(['Pods', 'Percent']),
      value: z.number().positive(),
      periodMs: z.number().positive(),
    }),
  ),
});

/**
 * The options `scaling.options` may set (each defaults to {@link HPA_DEFAULTS}); `scaleUp` and
 * `scaleDown` replace the whole default rules object, so all their keys are required.
 */
export const HPA_OPTIONS = z.strictObject({
  metric: z
    .enum(['concurrency', 'queued', 'engineWaiting', 'kvUsage', 'arrivalRate', 'tokensPerSecond'])
    .optional(),
  target: z.number().positive().optional(),
  windowMs: z.number().positive().optional(),
  tolerance: z.number().nonnegative().optional(),
  scaleUp: hpaRulesSchema.optional(),
  scaleDown: hpaRulesSchema.optional(),
  intervalMs: z.number().positive().optional(),
});

/** A Kubernetes HPA for one pool; see the module comment. */
export function createHpa(options: Partial<HpaOptions> = {}): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return new HpaPolicy({ ...HPA_DEFAULTS, ...defined });
}

interface Timed {
  readonly atMs: number;
  readonly value: number;
}

class HpaPolicy implements ScalingPolicy {
  readonly name = 'hpa';
  readonly intervalMs: number;
  /** Unstabilized recommendations, oldest first; kept as long as the longer window needs. */
  private readonly recommendations: Timed[] = [];
  /** This policy's changes (replicas added, replicas removed), oldest first. */
  private readonly upEvents: Timed[] = [];
  private readonly downEvents: Timed[] = [];
  private readonly keepRecommendationsMs: number;
  private readonly keepEventsMs: number;
  private started = false;

  constructor(private readonly o: Readonly<HpaOptions>) {
    assert(o.target > 0, `hpa: target must be a positive number, got ${o.target}`);
    assert(o.windowMs > 0, `hpa: windowMs must be a positive number of ms, got ${o.windowMs}`);
    assert(o.tolerance >= 0, `hpa: tolerance must be ≥ 0, got ${o.tolerance}`);
    assert(o.intervalMs > 0, `hpa: intervalMs must be a positive number of ms, got ${o.intervalMs}`);
    checkRules(o.scaleUp, 'scaleUp');
    checkRules(o.scaleDown, 'scaleDown');
    this.intervalMs = o.intervalMs;
    this.keepRecommendationsMs = Math.max(o.scaleUp.stabilizationWindowMs, o.scaleDown.stabilizationWindowMs);
    const periods = [...o.scaleUp.policies, ...o.scaleDown.policies].map((p) => p.periodMs);
    this.keepEventsMs = Math.max(0, ...periods);
  }

  decide(ctx: ScalingContext): ScalingDecision {
    const now = ctx.nowMs;
    const ready = ctx.replicas.ready;
    const current = ready + ctx.replicas.starting;
    if (!this.started) {
      this.started = true;
      this.recommendations.push({ atMs: now, value: current });
    }
    const { raw, reason } = this.recommend(ctx.metrics, ready, current);
    const stabilized = this.stabilize(raw, current, now);
    const limited = this.limitRate(stabilized, current, now, ctx.minReplicas, ctx.maxReplicas);
    if (limited > current) this.upEvents.push({ atMs: now, value: limited - current });
    if (limited < current) this.downEvents.push({ atMs: now, value: current - limited });
    prune(this.upEvents, now - this.keepEventsMs);
    prune(this.downEvents, now - this.keepEventsMs);
    return { desired: limited, reason: explain(reason, raw, stabilized, limited) };
  }

  /** The replica count the metric asks for (replica_calculator.go), before stabilization and rate limits. */
  private recommend(m: MetricsView, ready: number, current: number): { raw: number; reason: string } {
    const value = readMetric(m, this.o.metric, this.o.windowMs);
    if (Number.isNaN(value)) return { raw: current, reason: 'no-metric' };
    const perReplica = this.o.metric === 'kvUsage';
    if (ready === 0) {
      // No ready replica: no metric to average. From zero, the alpha scale-to-zero rule ceil(ratio).
      if (current > 0 || perReplica) return { raw: current, reason: 'no-ready-replica' };
      return { raw: Math.ceil(value / this.o.target), reason: 'scale-from-zero' };
    }
    const ratio = (perReplica ? value : value / ready) / this.o.target;
    if (Math.abs(1 - ratio) <= this.o.tolerance) return { raw: current, reason: 'within-tolerance' };
    // For a total, ceil(ratio × ready) is ceil(total / target); computed so, it has no rounding error.
    const raw = perReplica ? Math.ceil(ratio * ready) : Math.ceil(value / this.o.target);
    return { raw, reason: raw > current ? 'scale-up' : raw < current ? 'scale-down' : 'steady' };
  }

  /** horizontal.go `stabilizeRecommendationWithBehaviors`; records `raw` afterwards. */
  private stabilize(raw: number, current: number, now: number): number {
    const upCutoff = now - this.o.scaleUp.stabilizationWindowMs;
    const downCutoff = now - this.o.scaleDown.stabilizationWindowMs;
    let upFloor = raw;
    let downCeil = raw;
    for (const r of this.recommendations) {
      if (r.atMs > upCutoff) upFloor = Math.min(upFloor, r.value);
      if (r.atMs > downCutoff) downCeil = Math.max(downCeil, r.value);
    }
    let stabilized = current;
    if (stabilized < upFloor) stabilized = upFloor;
    if (stabilized > downCeil) stabilized = downCeil;
    this.recommendations.push({ atMs: now, value: raw });
    prune(this.recommendations, now - this.keepRecommendationsMs);
    return stabilized;
  }

  /** horizontal.go `convertDesiredReplicasWithBehaviorRate`. */
  private limitRate(desired: number, current: number, now: number, min: number, max: number): number {
    if (desired > current) {
      const limit = Math.max(this.periodLimit(this.o.scaleUp, current, now, 'up'), current);
      return Math.min(desired, limit, max);
    }
    if (desired < current) {
      const limit = Math.min(this.periodLimit(this.o.scaleDown, current, now, 'down'), current);
      return Math.max(desired, limit, min);
    }
    return desired;
  }

  /** `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`. */
  private periodLimit(rules: HpaScalingRules, current: number, now: number, dir: 'up' | 'down'): number {
    if (rules.selectPolicy === 'Disabled') return current;
    // Max picks the biggest change: the largest limit up, the smallest down.
    const biggest = rules.selectPolicy === 'Max';
    const pick = (a: number, b: number) => ((dir === 'up') === biggest ? Math.max(a, b) : Math.min(a, b));
    let result = Number.NaN;
    for (const p of rules.policies) {
      const cutoff = now - p.periodMs;
      const start = current - changedSince(this.upEvents, cutoff) + changedSince(this.downEvents, cutoff);
      const proposed =
        dir === 'up'
          ? p.type === 'Pods'
            ? start + p.value
            : Math.ceil(start * (1 + p.value / 100))
          : p.type === 'Pods'
            ? start - p.value
            : Math.floor(start * (1 - p.value / 100));
      result = Number.isNaN(result) ? proposed : pick(result, proposed);
    }
    return Number.isNaN(result) ? current : result;
  }
}

function readMetric(m: MetricsView, metric: HpaMetric, windowMs: number): number {
  switch (metric) {
    case 'concurrency':
      return m.concurrency(windowMs);
    case 'queued':
      return m.queued(windowMs);
    case 'engineWaiting':
      return m.engineWaiting(windowMs);
    case 'kvUsage':
      return m.kvUsage(windowMs);
    case 'arrivalRate':
      return m.arrivalRate(windowMs);
    case 'tokensPerSecond':
      return m.tokensPerSecond(windowMs);
  }
}

/** Replicas changed by events strictly after `cutoff` (Go's `After`). */
function changedSince(events: readonly Timed[], cutoff: number): number {
  let n = 0;
  for (const e of events) if (e.atMs > cutoff) n += e.value;
  return n;
}

/** Drops entries at or before `cutoff`: no window can see them again. */
function prune(list: Timed[], cutoff: number): void {
  let drop = 0;
  while (drop < list.length && list[drop]!.atMs <= cutoff) drop++;
  if (drop > 0) list.splice(0, drop);
}

/** The reason names the step that set the count. */
function explain(reason: string, raw: number, stabilized: number, limited: number): string {
  if (limited !== stabilized) return 'rate-limited';
  return stabilized !== raw ? 'stabilized' : reason;
}

function checkRules(r: HpaScalingRules, path: string): void {
  assert(
    r.stabilizationWindowMs >= 0,
    `hpa: ${path}.stabilizationWindowMs must be a number of ms ≥ 0, got ${r.stabilizationWindowMs}`,
  );
  assert(
    r.selectPolicy === 'Max' || r.selectPolicy === 'Min' || r.selectPolicy === 'Disabled',
    `hpa: ${path}.selectPolicy must be Max, Min or Disabled, got ${r.selectPolicy}`,
  );
  r.policies.forEach((p, i) => {
    assert(
      p.type === 'Pods' || p.type === 'Percent',
      `hpa: ${path}.policies[${i}].type must be Pods or Percent`,
    );
    assert(p.value > 0, `hpa: ${path}.policies[${i}].value must be > 0, got ${p.value}`);
    assert(p.periodMs > 0, `hpa: ${path}.policies[${i}].periodMs must be > 0, got ${p.periodMs}`);
  });
}
