/**
 * @module autoscaler/policies/ray-serve
 * Ray Serve's default autoscaling policy (ray-project/ray `python/ray/serve/autoscaling_policy.py`),
 * with Ray's defaults (`AutoscalingConfig`,
 * https://docs.ray.io/en/latest/serve/api/doc/ray.serve.config.AutoscalingConfig.html, and
 * `python/ray/serve/_private/constants.py`).
 *
 * Every control-loop tick (0.1 s):
 *
 *     total   = ongoing requests, fleet total, averaged over the 30 s look-back
 *     N       = running replicas;  e = total / (target × N)
 *     desired = ceil(N + f × (N × e − N)),  f = upscaling factor if desired > N, else downscaling
 *               (if f leaves a needed scale-down stuck at N, N − 1), then clamped to [min, max]
 *
 * A change is applied only once the same direction has been decided on more than
 * delay / tick consecutive ticks (Ray's decision counter): 30 s up, 600 s down. A scale-down stops
 * at 1 replica; the 1 → 0 step has its own delay (`downscaleToZeroDelayMs`, default the downscale
 * delay), so scale to zero happens only when min is 0. With no running replica and any request
 * waiting, Ray skips the delays and asks for max(ceil(upscaling factor), current target) at once.
 *
 * "Ongoing requests" is `MetricsView.concurrency`: in flight at the replicas plus waiting in
 * the gateway, as Ray counts requests queued at its handles. "Current target" is
 * `ctx.lastDesired`; "running" is `ctx.replicas.ready`.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

export interface RayServeOptions {
  /** Ongoing requests one replica should carry (`target_ongoing_requests`). */
  readonly targetOngoingRequests?: number;
  /** Window the ongoing-request count is averaged over, ms (`look_back_period_s`). */
  readonly lookBackPeriodMs?: number;
  /** How long an upscale decision must persist, ms (`upscale_delay_s`). */
  readonly upscaleDelayMs?: number;
  /** How long a downscale decision must persist, ms (`downscale_delay_s`). */
  readonly downscaleDelayMs?: number;
  /** Delay for the 1 → 0 step, ms; null: `downscaleDelayMs` (`downscale_to_zero_delay_s`). */
  readonly downscaleToZeroDelayMs?: number | null;
  /** Fraction of the gap to the ideal count closed per decision (`smoothing_factor`). */
  readonly smoothingFactor?: number;
  /** Replaces `smoothingFactor` when scaling up; null: use it (`upscaling_factor`). */
  readonly upscalingFactor?: number | null;
  /** Replaces `smoothingFactor` when scaling down; null: use it (`downscaling_factor`). */
  readonly downscalingFactor?: number | null;
  /** Control-loop tick, ms (`CONTROL_LOOP_INTERVAL_S`); the delays are counted in ticks of it. */
  readonly intervalMs?: number;
}

export const RAY_SERVE_DEFAULTS: Readonly<Required<RayServeOptions>> = Object.freeze({
  targetOngoingRequests: 2, // AutoscalingConfig: target_ongoing_requests 2 (1 before Ray 2.32)
  lookBackPeriodMs: 30_000, // AutoscalingConfig: look_back_period_s 30
  upscaleDelayMs: 30_000, // AutoscalingConfig: upscale_delay_s 30
  downscaleDelayMs: 600_000, // AutoscalingConfig: downscale_delay_s 600
  downscaleToZeroDelayMs: null, // AutoscalingConfig: downscale_to_zero_delay_s None → downscale delay
  smoothingFactor: 1, // AutoscalingConfig: smoothing_factor 1.0
  upscalingFactor: null, // AutoscalingConfig: upscaling_factor None → smoothing factor
  downscalingFactor: null, // AutoscalingConfig: downscaling_factor None → smoothing factor
  intervalMs: 100, // _private/constants.py: CONTROL_LOOP_INTERVAL_S = 0.1 s
});

/** The options `scaling.options` may set (each defaults to {@link RAY_SERVE_DEFAULTS}). */
export const RAY_SERVE_OPTIONS = z.strictObject({
  targetOngoingRequests: z.number().positive().optional(),
  lookBackPeriodMs: z.number().positive().optional(),
  upscaleDelayMs: z.number().nonnegative().optional(),
  downscaleDelayMs: z.number().nonnegative().optional(),
  downscaleToZeroDelayMs: z.number().nonnegative().nullable().optional(),
  smoothingFactor: z.number().positive().optional(),
  upscalingFactor: z.number().positive().nullable().optional(),
  downscalingFactor: z.number().positive().nullable().optional(),
  intervalMs: z.number().positive().optional(),
});

/** A Ray Serve default policy for one pool; see the module comment. */
export function createRayServe(opts: RayServeOptions = {}): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return new RayServePolicy({ ...RAY_SERVE_DEFAULTS, ...defined });
}

class RayServePolicy implements ScalingPolicy {
  readonly name = 'ray-serve';
  readonly intervalMs: number;
  /** > 0: consecutive upscale decisions; < 0: consecutive downscale decisions (Ray's counter). */
  private counter = 0;
  private readonly upTicks: number;
  private readonly downTicks: number;
  private readonly toZeroTicks: number;
  private readonly upFactor: number;
  private readonly downFactor: number;

  constructor(private readonly o: Readonly<Required<RayServeOptions>>) {
    const positive = (v: number, field: string) =>
      assert(v > 0, `ray-serve: ${field} must be a positive number, got ${v}`);
    const delay = (v: number, field: string) =>
      assert(v >= 0, `ray-serve: ${field} must be a number of ms ≥ 0, got ${v}`);
    positive(o.targetOngoingRequests, 'targetOngoingRequests');
    positive(o.lookBackPeriodMs, 'lookBackPeriodMs');
    positive(o.intervalMs, 'intervalMs');
    positive(o.smoothingFactor, 'smoothingFactor');
    delay(o.upscaleDelayMs, 'upscaleDelayMs');
    delay(o.downscaleDelayMs, 'downscaleDelayMs');
    if (o.downscaleToZeroDelayMs !== null) delay(o.downscaleToZeroDelayMs, 'downscaleToZeroDelayMs');
    this.upFactor = o.upscalingFactor ?? o.smoothingFactor;
    this.downFactor = o.downscalingFactor ?? o.smoothingFactor;
    positive(this.upFactor, 'upscalingFactor');
    positive(this.downFactor, 'downscalingFactor');
    this.intervalMs = o.intervalMs;
    // Ray: int(delay_s / CONTROL_LOOP_INTERVAL_S); the change applies when the count exceeds it.
    this.upTicks = Math.floor(o.upscaleDelayMs / o.intervalMs);
    this.downTicks = Math.floor(o.downscaleDelayMs / o.intervalMs);
    this.toZeroTicks = Math.floor((o.downscaleToZeroDelayMs ?? o.downscaleDelayMs) / o.intervalMs);
  }

  decide(ctx: ScalingContext): ScalingDecision {
    const total = ctx.metrics.concurrency(this.o.lookBackPeriodMs);
    const running = ctx.replicas.ready;
    const target = ctx.lastDesired;
    // Cold-start fast path: it bypasses the delays and leaves the counter as it is, as Ray's does.
    if (running === 0) {
      if (total > 0) return { desired: Math.max(Math.ceil(this.upFactor), target), reason: 'cold-start' };
      return { desired: target, reason: target > 0 ? 'starting' : 'idle' };
    }
    const ideal = running * (total / (this.o.targetOngoingRequests * running));
    const scaled = this.smooth(ideal, running);
    const bounded = Math.max(ctx.minReplicas, Math.min(ctx.maxReplicas, scaled));
    return this.delay(bounded, target);
  }

  /** Ray's `_apply_scaling_factors`: close a fraction of the gap, but never stall a needed scale-down. */
  private smooth(ideal: number, running: number): number {
    const delta = ideal - running;
    const factor = delta > 0 ? this.upFactor : this.downFactor;
    const scaled = Math.ceil(running + factor * delta);
    return Math.ceil(ideal) < running && scaled === running ? scaled - 1 : scaled;
  }

  /** Ray's `_apply_delay_logic`: apply a change only after it has been decided long enough in a row. */
  private delay(desired: number, target: number): ScalingDecision {
    if (desired > target) {
      this.counter = Math.max(this.counter, 0) + 1;
      if (this.counter <= this.upTicks) return { desired: target, reason: 'upscale-wait' };
      this.counter = 0;
      return { desired, reason: 'upscale' };
    }
    if (desired < target) {
      this.counter = Math.min(this.counter, 0) - 1;
      // Below 1 only by the 1 → 0 step, which has a delay of its own.
      const toZero = target === 1;
      if (this.counter >= -(toZero ? this.toZeroTicks : this.downTicks)) {
        return { desired: target, reason: 'downscale-wait' };
      }
      this.counter = 0;
      return toZero
        ? { desired, reason: 'scale-to-zero' }
        : { desired: Math.max(1, desired), reason: 'downscale' };
    }
    this.counter = 0;
    return { desired: target, reason: 'steady' };
  }
}
