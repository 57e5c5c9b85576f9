/**
 * @module autoscaler/policies/dynamo-load
 * NVIDIA Dynamo Planner's load-based mode for aggregated engines (ai-dynamo/dynamo
 * `docs/design-docs/planner-design.md`; https://docs.nvidia.com/dynamo/), with its defaults.
 *
 * Every 5 s, with N ready replicas:
 *
 *     +1   if TTFT > SLA_ttft  or  TPOT > SLA_tpot
 *     −1   if TTFT < SLA_ttft × 0.8  and  TPOT < SLA_tpot × 0.8
 *     else no change;  never below 1 replica (Dynamo's min endpoint)
 *
 * One change at a time: while a previous change is in progress (a replica still starting) it holds,
 * as Dynamo's pending-desired guard does. With `throughputFloor`, Dynamo's throughput mode sets a
 * floor the load mode scales above: every 180 s, floor = ceil(requests/s over the last 180 s /
 * ctx.replicaRps) (its constant predictor; Dynamo's default predictor is ARIMA).
 *
 * Where we differ from Dynamo, because a policy sees only the pool's metrics: Dynamo estimates each
 * engine's next TTFT and ITL from a regression on forward-pass metrics and asks that *all* engines
 * agree; we read the pool's observed TTFT and TPOT at the SLO quantile over the last interval. Its
 * `load_min_observations` (5 forward passes) becomes 5 requests completed in that window; a pool with
 * no traffic at all counts as under the SLA.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

export interface DynamoLoadOptions {
  /** Time between load decisions, ms (`load_adjustment_interval`). */
  readonly intervalMs?: number;
  /** Scale down only below SLA × this, 0..1 (`load_scaling_down_sensitivity` / 100). */
  readonly sensitivity?: number;
  /** Requests completed in the window needed to decide (`load_min_observations`). */
  readonly minObservations?: number;
  /** Window the latencies are read over, ms; null: `intervalMs`. */
  readonly windowMs?: number | null;
  /** Latency quantile compared with the SLO; null: `ctx.slo.quantile`. */
  readonly quantile?: number | null;
  /** Fewest replicas it will ask for (Dynamo's `min_endpoint`). */
  readonly minEndpoint?: number;
  /** Keep at least ceil(arrival rate / replicaRps) replicas (Dynamo's throughput mode as a floor). */
  readonly throughputFloor?: boolean;
  /** How often the floor is recomputed, over a window as long, ms (`throughput_adjustment_interval`). */
  readonly throughputIntervalMs?: number;
}

export const DYNAMO_LOAD_DEFAULTS: Readonly<Required<DynamoLoadOptions>> = Object.freeze({
  intervalMs: 5_000, // planner-design.md: load_adjustment_interval 5 s
  sensitivity: 0.8, // planner-design.md: sensitivity 80 %
  minObservations: 5, // planner-design.md: load_min_observations 5
  windowMs: null, // ours: the observations since the last decision
  quantile: null, // ours: the pool's SLO quantile
  minEndpoint: 1, // Dynamo's minimum endpoint count 1 (no scale to zero)
  throughputFloor: false, // planner-design.md: throughput mode is a separate mode; off unless asked for
  throughputIntervalMs: 180_000, // planner-design.md: throughput_adjustment_interval 180 s
});

/** The options `scaling.options` may set (each defaults to {@link DYNAMO_LOAD_DEFAULTS}). */
export const DYNAMO_LOAD_OPTIONS = z.strictObject({
  intervalMs: z.number().positive().optional(),
  sensitivity: z.number().gt(0).max(1).optional(),
  minObservations: z.number().int().nonnegative().optional(),
  windowMs: z.number().positive().nullable().optional(),
  quantile: z.number().gt(0).lt(1).nullable().optional(),
  minEndpoint: z.number().int().nonnegative().optional(),
  throughputFloor: z.boolean().optional(),
  throughputIntervalMs: z.number().positive().optional(),
});

/** A Dynamo load-based policy for one pool; see the module comment. */
export function createDynamoLoad(opts: DynamoLoadOptions = {}): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return new DynamoLoadPolicy({ ...DYNAMO_LOAD_DEFAULTS, ...defined });
}

class DynamoLoadPolicy implements ScalingPolicy {
  readonly name = 'dynamo-load';
  readonly intervalMs: number;
  private readonly windowMs: number;
  private floor = 0;
  private nextFloorMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: Readonly<Required<DynamoLoadOptions>>) {
    assert(o.intervalMs > 0, `dynamo-load: intervalMs must be a positive number of ms, got ${o.intervalMs}`);
    assert(
      o.sensitivity > 0 && o.sensitivity <= 1,
      `dynamo-load: sensitivity must be within (0, 1], got ${o.sensitivity}`,
    );
    assert(
      Number.isInteger(o.minObservations) && o.minObservations >= 0,
      `dynamo-load: minObservations must be a whole number ≥ 0, got ${o.minObservations}`,
    );
    assert(
      o.windowMs === null || o.windowMs > 0,
      `dynamo-load: windowMs must be a positive number of ms or null, got ${o.windowMs}`,
    );
    assert(
      o.quantile === null || (o.quantile > 0 && o.quantile < 1),
      `dynamo-load: quantile must be within (0, 1) or null, got ${o.quantile}`,
    );
    assert(
      Number.isInteger(o.minEndpoint) && o.minEndpoint >= 0,
      `dynamo-load: minEndpoint must be a whole number ≥ 0, got ${o.minEndpoint}`,
    );
    assert(
      o.throughputIntervalMs > 0,
      `dynamo-load: throughputIntervalMs must be a positive number of ms, got ${o.throughputIntervalMs}`,
    );
    this.intervalMs = o.intervalMs;
    this.windowMs = o.windowMs ?? o.intervalMs;
  }

  decide(ctx: ScalingContext): ScalingDecision {
    // The throughput floor runs on its own cadence, pending change or not, as Dynamo's does.
    if (this.o.throughputFloor) this.updateFloor(ctx);
    // Dynamo holds while its asked-for count differs from the ready count. Here a removal takes
    // effect at once (draining replicas are not ready), so that leaves replicas still starting.
    if (ctx.replicas.starting > 0) return { desired: ctx.lastDesired, reason: 'scaling-in-progress' };
    const { ready } = ctx.replicas;
    const load = this.load(ctx);
    if (load === 'insufficient-data') return { desired: ctx.lastDesired, reason: load };
    const proposed = load === 'over' ? ready + 1 : load === 'under' ? ready - 1 : ctx.lastDesired;
    const floored = Math.max(proposed, this.o.minEndpoint, this.floor);
    const desired = Math.max(ctx.minReplicas, Math.min(ctx.maxReplicas, floored));
    if (floored > proposed) {
      return { desired, reason: floored === this.floor ? 'throughput-floor' : 'min-endpoint' };
    }
    return { desired, reason: load === 'over' ? 'scale-up' : load === 'under' ? 'scale-down' : 'no-change' };
  }

  /** Where the pool's latencies stand against its SLO. */
  private load(ctx: ScalingContext): 'over' | 'under' | 'within' | 'insufficient-data' {
    const m = ctx.metrics;
    const w = this.windowMs;
    const completed = Math.round((m.completionRate(w) * w) / 1000);
    if (completed < this.o.minObservations) {
      const idle = m.arrivalRate(w) === 0 && m.concurrency(w) === 0;
      return idle ? 'under' : 'insufficient-data';
    }
    const q = this.o.quantile ?? ctx.slo.quantile;
    const ttft = m.ttftQuantile(q, w);
    const tpot = m.tpotQuantile(q, w);
    // NaN (no sample) compares false both ways: it neither raises nor lowers.
    if (ttft > ctx.slo.ttftMs || tpot > ctx.slo.tpotMs) return 'over';
    const s = this.o.sensitivity;
    if (ttft < ctx.slo.ttftMs * s && tpot < ctx.slo.tpotMs * s) return 'under';
    return 'within';
  }

  private updateFloor(ctx: ScalingContext): void {
    if (ctx.nowMs < this.nextFloorMs - this.intervalMs / 2) return;
    assert(ctx.replicaRps > 0, `dynamo-load: replicaRps must be > 0, got ${ctx.replicaRps}`);
    const rate = ctx.metrics.arrivalRate(this.o.throughputIntervalMs);
    this.floor = Math.ceil(rate / ctx.replicaRps);
    this.nextFloorMs = ctx.nowMs + this.o.throughputIntervalMs;
  }
}
