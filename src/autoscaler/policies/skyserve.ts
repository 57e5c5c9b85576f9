/**
 * @module autoscaler/policies/skyserve
 * SkyServe's default request-rate autoscaler (skypilot-org/skypilot `sky/serve/autoscalers.py`
 * `RequestRateAutoscaler` and `sky/serve/constants.py`; Mao et al., arXiv 2411.01438), with its
 * defaults.
 *
 * Every decision (20 s; 5 s while the target is 0):
 *
 *     qps    = requests arrived in the last 60 s / 60
 *     wanted = clamp(ceil(qps / target_qps_per_replica), min, max)
 *
 * and the target moves to `wanted` only after `upscale_delay / 20 s` consecutive decisions above it
 * (300 s → 15) or `downscale_delay / 20 s` consecutive decisions below it (1200 s → 60): two
 * hysteresis counters, each reset by a decision the other way or an equal one. From a target of 0 it
 * moves at once. `target_qps_per_replica` defaults to the pool's `ctx.replicaRps`.
 *
 * The policy is ticked every 5 s and decides only when the interval SkyServe would have slept has
 * passed. Spot placement and the on-demand fallback are the planner's and controller's job.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

export interface SkyServeOptions {
  /** Requests per second one replica should take; null: `ctx.replicaRps` (`target_qps_per_replica`). */
  readonly targetQpsPerReplica?: number | null;
  /** Window the request rate is measured over, ms (`AUTOSCALER_QPS_WINDOW_SIZE_SECONDS`). */
  readonly qpsWindowMs?: number;
  /** Time between decisions while the target is above 0, ms. */
  readonly decisionIntervalMs?: number;
  /** Time between decisions while the target is 0, ms. */
  readonly noReplicaDecisionIntervalMs?: number;
  /** How long the rate must call for more replicas before they are added, ms (`upscale_delay_seconds`). */
  readonly upscaleDelayMs?: number;
  /** How long it must call for fewer before they are removed, ms (`downscale_delay_seconds`). */
  readonly downscaleDelayMs?: number;
}

export const SKYSERVE_DEFAULTS: Readonly<Required<SkyServeOptions>> = Object.freeze({
  targetQpsPerReplica: null, // ours: SkyServe requires it to autoscale; we size by the pool's replicaRps
  qpsWindowMs: 60_000, // autoscalers.py: qps = requests in last 60 s / 60
  decisionIntervalMs: 20_000, // constants.py: decisions every 20 s
  noReplicaDecisionIntervalMs: 5_000, // constants.py: 5 s while the target is 0
  upscaleDelayMs: 300_000, // constants.py: upscale_delay_seconds 300 → 15 decisions
  downscaleDelayMs: 1_200_000, // constants.py: downscale_delay_seconds 1200 → 60 decisions
});

/** The options `scaling.options` may set (each defaults to {@link SKYSERVE_DEFAULTS}). */
export const SKYSERVE_OPTIONS = z.strictObject({
  targetQpsPerReplica: z.number().positive().nullable().optional(),
  qpsWindowMs: z.number().int().positive().optional(),
  decisionIntervalMs: z.number().int().positive().optional(),
  noReplicaDecisionIntervalMs: z.number().int().positive().optional(),
  upscaleDelayMs: z.number().nonnegative().optional(),
  downscaleDelayMs: z.number().nonnegative().optional(),
});

/** A SkyServe default policy for one pool; see the module comment. */
export function createSkyServe(opts: SkyServeOptions = {}): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return new SkyServePolicy({ ...SKYSERVE_DEFAULTS, ...defined });
}

class SkyServePolicy implements ScalingPolicy {
  readonly name = 'skyserve';
  /** The tick: both decision intervals are whole multiples of it. */
  readonly intervalMs: number;
  private upscaleCounter = 0;
  private downscaleCounter = 0;
  private nextDecisionMs = Number.NEGATIVE_INFINITY;
  /** Consecutive decisions needed to move (`scale_up_consecutive_periods`, `…_down_…`). */
  private readonly upPeriods: number;
  private readonly downPeriods: number;

  constructor(private readonly o: Readonly<Required<SkyServeOptions>>) {
    const wholeMs = (v: number, field: string) =>
      assert(Number.isInteger(v) && v > 0, `skyserve: ${field} must be a whole number of ms > 0, got ${v}`);
    wholeMs(o.qpsWindowMs, 'qpsWindowMs');
    wholeMs(o.decisionIntervalMs, 'decisionIntervalMs');
    wholeMs(o.noReplicaDecisionIntervalMs, 'noReplicaDecisionIntervalMs');
    assert(o.upscaleDelayMs >= 0, `skyserve: upscaleDelayMs must be ≥ 0, got ${o.upscaleDelayMs}`);
    assert(o.downscaleDelayMs >= 0, `skyserve: downscaleDelayMs must be ≥ 0, got ${o.downscaleDelayMs}`);
    assert(
      o.targetQpsPerReplica === null || o.targetQpsPerReplica > 0,
      `skyserve: targetQpsPerReplica must be a positive number or null, got ${o.targetQpsPerReplica}`,
    );
    this.intervalMs = gcd(o.decisionIntervalMs, o.noReplicaDecisionIntervalMs);
    // SkyServe: int(delay / AUTOSCALER_DEFAULT_DECISION_INTERVAL_SECONDS); moves when count ≥ it.
    this.upPeriods = Math.floor(o.upscaleDelayMs / o.decisionIntervalMs);
    this.downPeriods = Math.floor(o.downscaleDelayMs / o.decisionIntervalMs);
  }

  decide(ctx: ScalingContext): ScalingDecision {
    const current = ctx.lastDesired;
    // Half a tick of slack, so a live timer that fires a little early still counts as on time.
    if (ctx.nowMs < this.nextDecisionMs - this.intervalMs / 2) {
      return { desired: current, reason: 'between-decisions' };
    }
    const decision = this.hysteresis(this.wanted(ctx), current);
    this.nextDecisionMs =
      ctx.nowMs + (decision.desired === 0 ? this.o.noReplicaDecisionIntervalMs : this.o.decisionIntervalMs);
    return decision;
  }

  /** SkyServe's `_cal_target_num_replicas_based_on_qps`. */
  private wanted(ctx: ScalingContext): number {
    const perReplica = this.o.targetQpsPerReplica ?? ctx.replicaRps;
    assert(perReplica > 0, `skyserve: target QPS per replica must be > 0, got ${perReplica}`);
    const qps = ctx.metrics.arrivalRate(this.o.qpsWindowMs);
    return Math.max(ctx.minReplicas, Math.min(ctx.maxReplicas, Math.ceil(qps / perReplica)));
  }

  /** SkyServe's `_set_target_num_replica_with_hysteresis`. */
  private hysteresis(wanted: number, current: number): ScalingDecision {
    if (current === 0) {
      // "Faster scale up when there is no replica."
      return { desired: wanted, reason: wanted > 0 ? 'scale-from-zero' : 'idle' };
    }
    if (wanted > current) {
      this.upscaleCounter += 1;
      this.downscaleCounter = 0;
      if (this.upscaleCounter < this.upPeriods) return { desired: current, reason: 'upscale-wait' };
      this.upscaleCounter = 0;
      return { desired: wanted, reason: 'upscale' };
    }
    if (wanted < current) {
      this.downscaleCounter += 1;
      this.upscaleCounter = 0;
      if (this.downscaleCounter < this.downPeriods) return { desired: current, reason: 'downscale-wait' };
      this.downscaleCounter = 0;
      return { desired: wanted, reason: wanted === 0 ? 'scale-to-zero' : 'downscale' };
    }
    this.upscaleCounter = 0;
    this.downscaleCounter = 0;
    return { desired: current, reason: 'steady' };
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
