/**
 * @module autoscaler/policies/kpa
 * Knative Serving's KPA (knative/serving `pkg/autoscaler/scaling/autoscaler.go` and
 * `pkg/reconciler/autoscaling/kpa/scaler.go`), with Knative's defaults (`config-autoscaler`,
 * `pkg/autoscaler/config/config.go`).
 *
 * Every tick (2 s), with S and P the fleet-total concurrency (`MetricsView.concurrency`: in flight
 * at the replicas plus waiting in the gateway and activator) averaged over the stable (60 s) and
 * panic (10 % of it, 6 s) windows, and T the target concurrency per replica
 * (`pkg/reconciler/autoscaling/resources/target.go`: 100 × 70 % = 70):
 *
 *     ready   = max(1, ready replicas)
 *     maxUp   = ceil(maxScaleUpRate × ready)              (max-scale-up-rate 1000)
 *     maxDown = floor(ready / maxScaleDownRate)           (rate 2: at most halve per tick)
 *     dspc    = ceil(S / T),  dppc = ceil(P / T)          (the fleet total over T, not a mean of means)
 *     stable  = clamp(dspc, maxDown, maxUp),  panic = clamp(dppc, maxDown, maxUp)
 *     panic mode: enter, or extend, when dppc / ready ≥ 2.0 (autoscaler.go); leave on the first tick
 *                 not over it that is more than one stable window after the last tick over it
 *     desired = stable;  in panic: max(stable, panic, the highest desired of this panic)
 *
 * A policy that first sees more than one ready replica starts in panic with that count as its
 * floor, as a restarted Knative autoscaler does (autoscaler.go), so lost history cannot scale down.
 *
 * Scale to zero (`kpa/scaler.go`). Because of the ceil, the decider asks for 0 only when the stable
 * window is idle, and the down-rate lets it reach 0 only from one replica. Then, as Knative's scaler:
 *
 * ```
 *  phase        decider wants > 0                       decider wants 0
 *  zero         → activating (active if one is ready)   0                        reason idle
 *  activating   → active once a replica is ready        1; after 630 s → zero, 0  hold-activating /
 *                                                                                 activation-timeout
 *  active       the count                               1 until active for a stable window,
 *                                                       then → inactive           hold-active
 *  inactive     → active (activating if none ready)     1; after max(grace 30 s, retention 0 s)
 *                                                       → zero, 0                 scale-to-zero-grace /
 *                                                                                 scale-to-zero
 * ```
 *
 * Other reasons: `stable`, `panic`, `scale-from-zero` (the first count > 0 after zero),
 * `scale-to-zero-disabled` (1 instead of 0). Knative keeps the last replica while the activator
 * takes over the path; with defaults it goes 60 s + 30 s = 90 s after the last request ended.
 * The host buffers requests at zero (the activator's job, `pkg/activator/net/throttler.go`) and, as
 * Knative's poke (`MultiScaler.Poke`, `pkg/autoscaler/scaling/multiscaler.go`),
 * should decide at once when a request arrives while the last decision was 0.
 *
 * Bridging our signal to Knative's. Knative's queue-proxy averages each pod's concurrency over
 * every second, so any request in a window makes its average > 0. Our host samples concurrency
 * about once a second, so a request shorter than that may fall between samples; the KPA therefore
 * also counts an arrival inside a window (`MetricsView.idleMs`) as activity: ceil gives at least 1.
 * This is what makes the poke work too (a request that arrived at the decision time has no sampled
 * time yet). The policy reads `ctx.metrics` as of `ctx.nowMs` (a MetricsWindow host calls `at`).
 *
 * Not modelled: `activation-scale`, `scale-down-delay` (default 0), target burst capacity and the
 * activator's placement (host concerns), `min-scale`/`max-scale` (the controller clamps to the
 * pool's [min, max]), and unreachable revisions (a pool always receives traffic, so maxDown applies).
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

export interface KpaOptions {
  /**
   * In-flight requests per replica the KPA aims for: Knative's `target` = per-replica capacity ×
   * target utilization. A pool sets it from its engine's capacity (0.7 × the concurrency one replica
   * sustains); the default is Knative's for `containerConcurrency` 0.
   */
  readonly targetConcurrency: number;
  /** Stable window, ms (`stable-window`; whole seconds, 6 s … 1 h). */
  readonly stableWindowMs: number;
  /** Panic window as a percentage of the stable window (`panic-window-percentage`, 1 … 100). */
  readonly panicWindowPercentage: number;
  /** Panic when dppc / ready reaches this ratio (`panic-threshold-percentage` / 100, 1.1 … 10). */
  readonly panicThreshold: number;
  /** Most replicas per tick, as a multiple of ready (`max-scale-up-rate`, > 1). */
  readonly maxScaleUpRate: number;
  /** Fewest replicas per tick, as ready divided by this (`max-scale-down-rate`, > 1). */
  readonly maxScaleDownRate: number;
  /** `enable-scale-to-zero`; when false the KPA asks for at least 1. */
  readonly enableScaleToZero: boolean;
  /** Time inactive before the last replica goes, ms (`scale-to-zero-grace-period`, > 0). */
  readonly scaleToZeroGracePeriodMs: number;
  /** Least time the last replica stays once inactive, ms (`scale-to-zero-pod-retention-period`). */
  readonly scaleToZeroPodRetentionMs: number;
  /** Activating this long with no ready replica and no demand: back to zero, ms (progress deadline + 30 s). */
  readonly activationTimeoutMs: number;
  /** Decision interval, ms (Knative's tick). */
  readonly intervalMs: number;
}

/** Knative's defaults (`config-autoscaler` keys, `pkg/autoscaler/config/config.go`, unless said). */
export const KPA_DEFAULTS: Readonly<KpaOptions> = Object.freeze({
  targetConcurrency: 70, // container-concurrency-target-default 100 × target-percentage 70 %
  stableWindowMs: 60_000, // stable-window 60 s
  panicWindowPercentage: 10, // panic-window-percentage 10 → 6 s
  panicThreshold: 2, // panic-threshold-percentage 200
  maxScaleUpRate: 1000, // max-scale-up-rate 1000
  maxScaleDownRate: 2, // max-scale-down-rate 2
  enableScaleToZero: true, // enable-scale-to-zero true
  scaleToZeroGracePeriodMs: 30_000, // scale-to-zero-grace-period 30 s
  scaleToZeroPodRetentionMs: 0, // scale-to-zero-pod-retention-period 0 s
  activationTimeoutMs: 630_000, // kpa/scaler.go: progress-deadline 600 s (pkg/deployment/config.go) + 30 s
  intervalMs: 2000, // tickInterval 2 s (pkg/autoscaler/scaling/multiscaler.go)
});

/** The options `scaling.options` may set (each defaults to {@link KPA_DEFAULTS}), with Knative's bounds. */
export const KPA_OPTIONS = z.strictObject({
  targetConcurrency: z.number().min(0.01).optional(),
  stableWindowMs: z
    .number()
    .min(6000)
    .max(3_600_000)
    .multipleOf(1000, { error: 'must be whole seconds' })
    .optional(),
  panicWindowPercentage: z.number().min(1).max(100).optional(),
  panicThreshold: z.number().min(1.1).max(10).optional(),
  maxScaleUpRate: z.number().gt(1).optional(),
  maxScaleDownRate: z.number().gt(1).optional(),
  enableScaleToZero: z.boolean().optional(),
  scaleToZeroGracePeriodMs: z.number().positive().optional(),
  scaleToZeroPodRetentionMs: z.number().nonnegative().optional(),
  activationTimeoutMs: z.number().positive().optional(),
  intervalMs: z.number().positive().optional(),
});

/** A Knative KPA for one pool; see the module comment. */
export function createKpa(options: Partial<KpaOptions> = {}): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return new KpaPolicy({ ...KPA_DEFAULTS, ...defined });
}

/** The scale-to-zero states of Knative's PodAutoscaler (`pkg/reconciler/autoscaling/kpa/scaler.go`). */
type Phase = 'zero' | 'activating' | 'active' | 'inactive';

class KpaPolicy implements ScalingPolicy {
  readonly name = 'kpa';
  readonly intervalMs: number;
  private readonly panicWindowMs: number;
  private started = false;
  /** When the last tick over the panic threshold was; NaN: not in panic. */
  private panicTimeMs = Number.NaN;
  /** The highest desired count of the current panic (Knative's maxPanicPods). */
  private maxPanicPods = 0;
  private phase: Phase = 'zero';
  private phaseSinceMs = 0;

  constructor(private readonly o: Readonly<KpaOptions>) {
    const check = (ok: boolean, field: string, valid: string, v: unknown) =>
      assert(ok, `kpa: ${field} must be ${valid}, got ${v}`);
    check(o.targetConcurrency >= 0.01, 'targetConcurrency', 'a number ≥ 0.01', o.targetConcurrency);
    check(
      o.stableWindowMs >= 6000 && o.stableWindowMs <= 3_600_000 && o.stableWindowMs % 1000 === 0,
      'stableWindowMs',
      'whole seconds within [6 000, 3 600 000] ms',
      o.stableWindowMs,
    );
    check(
      o.panicWindowPercentage >= 1 && o.panicWindowPercentage <= 100,
      'panicWindowPercentage',
      'within [1, 100]',
      o.panicWindowPercentage,
    );
    check(
      o.panicThreshold >= 1.1 && o.panicThreshold <= 10,
      'panicThreshold',
      'within [1.1, 10]',
      o.panicThreshold,
    );
    check(o.maxScaleUpRate > 1, 'maxScaleUpRate', 'a number > 1', o.maxScaleUpRate);
    check(o.maxScaleDownRate > 1, 'maxScaleDownRate', 'a number > 1', o.maxScaleDownRate);
    check(
      o.scaleToZeroGracePeriodMs > 0,
      'scaleToZeroGracePeriodMs',
      'a number of ms > 0',
      o.scaleToZeroGracePeriodMs,
    );
    check(
      o.scaleToZeroPodRetentionMs >= 0,
      'scaleToZeroPodRetentionMs',
      'a number of ms ≥ 0',
      o.scaleToZeroPodRetentionMs,
    );
    check(o.activationTimeoutMs > 0, 'activationTimeoutMs', 'a number of ms > 0', o.activationTimeoutMs);
    check(o.intervalMs > 0, 'intervalMs', 'a number of ms > 0', o.intervalMs);
    this.intervalMs = o.intervalMs;
    // As knative/serving `pkg/reconciler/autoscaling/resources/metric.go`: stable × percentage / 100,
    // in whole seconds, at least 1 s.
    this.panicWindowMs = Math.max(
      1000,
      Math.round((o.stableWindowMs * o.panicWindowPercentage) / 100 / 1000) * 1000,
    );
  }

  decide(ctx: ScalingContext): ScalingDecision {
    const now = ctx.nowMs;
    const readyPods = ctx.replicas.ready;
    if (!this.started) this.start(ctx);
    if (this.phase === 'activating' && readyPods >= 1) this.enter('active', now);

    const ready = Math.max(1, readyPods);
    const maxUp = Math.ceil(this.o.maxScaleUpRate * ready);
    const maxDown = Math.floor(ready / this.o.maxScaleDownRate);
    const idleMs = ctx.metrics.idleMs();
    const dspc = this.podsFor(ctx.metrics.concurrency(this.o.stableWindowMs), idleMs < this.o.stableWindowMs);
    const dppc = this.podsFor(ctx.metrics.concurrency(this.panicWindowMs), idleMs < this.panicWindowMs);
    const stable = clamp(dspc, maxDown, maxUp);
    const panic = clamp(dppc, maxDown, maxUp);

    const over = dppc / ready >= this.o.panicThreshold;
    if (over) {
      this.panicTimeMs = now; // enter, or extend
    } else if (this.panicking() && this.panicTimeMs + this.o.stableWindowMs < now) {
      this.panicTimeMs = Number.NaN; // the surge has made its way into the stable window
      this.maxPanicPods = 0;
    }
    if (this.panicking()) {
      // Panic only scales up: never below the highest count of this panic.
      this.maxPanicPods = Math.max(this.maxPanicPods, stable, panic);
      return this.wanted(this.maxPanicPods, readyPods, now, 'panic');
    }
    if (stable > 0) return this.wanted(stable, readyPods, now, 'stable');
    return this.toZero(now);
  }

  /** A fresh autoscaler with more than one ready replica starts in panic at that count (autoscaler.go). */
  private start(ctx: ScalingContext): void {
    this.started = true;
    const { ready, starting } = ctx.replicas;
    if (ready > 1) {
      this.panicTimeMs = ctx.nowMs;
      this.maxPanicPods = ready;
    }
    if (ready >= 1) this.enter('active', ctx.nowMs);
    else if (starting > 0) this.enter('activating', ctx.nowMs);
  }

  /** ceil(value / target), and at least 1 when a request arrived inside the window (see the module comment). */
  private podsFor(concurrency: number, arrivedInWindow: boolean): number {
    const pods = Math.ceil(concurrency / this.o.targetConcurrency);
    return pods === 0 && arrivedInWindow ? 1 : pods;
  }

  private panicking(): boolean {
    return !Number.isNaN(this.panicTimeMs);
  }

  /** A positive count: leaves zero or inactivity behind (Knative marks the PA active again). */
  private wanted(desired: number, readyPods: number, now: number, reason: string): ScalingDecision {
    const from = this.phase;
    if (from === 'zero' || from === 'inactive') this.enter(readyPods >= 1 ? 'active' : 'activating', now);
    return { desired, reason: from === 'zero' ? 'scale-from-zero' : reason };
  }

  /** The decider wants 0: Knative's scaler decides when that may happen (kpa/scaler.go). */
  private toZero(now: number): ScalingDecision {
    if (!this.o.enableScaleToZero) return { desired: 1, reason: 'scale-to-zero-disabled' };
    const inPhase = now - this.phaseSinceMs;
    switch (this.phase) {
      case 'zero':
        return { desired: 0, reason: 'idle' };
      case 'activating':
        if (inPhase < this.o.activationTimeoutMs) return { desired: 1, reason: 'hold-activating' };
        this.enter('zero', now);
        return { desired: 0, reason: 'activation-timeout' };
      case 'active':
        if (inPhase < this.o.stableWindowMs) return { desired: 1, reason: 'hold-active' };
        this.enter('inactive', now); // the activator takes over the path; the grace period starts
        return { desired: 1, reason: 'scale-to-zero-grace' };
      case 'inactive':
        if (inPhase < Math.max(this.o.scaleToZeroGracePeriodMs, this.o.scaleToZeroPodRetentionMs)) {
          return { desired: 1, reason: 'scale-to-zero-grace' };
        }
        this.enter('zero', now);
        return { desired: 0, reason: 'scale-to-zero' };
    }
  }

  private enter(phase: Phase, now: number): void {
    this.phase = phase;
    this.phaseSinceMs = now;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}
