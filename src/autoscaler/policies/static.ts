/**
 * @module autoscaler/policies/static
 * Fixed capacity: always N replicas, whatever the load (our simplest baseline). The
 * "peak-provisioned" baseline is this policy with N chosen by the bench (the replicas the trace's
 * peak needs), so it has no policy of its own. The controller still clamps N to [min, max].
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingDecision, ScalingPolicy } from '../types.js';

export interface StaticOptions {
  /** Replicas to keep, a whole number ≥ 0. */
  readonly replicas: number;
  /** How often the controller asks, ms (default {@link STATIC_DEFAULTS}.intervalMs). */
  readonly intervalMs?: number;
}

export const STATIC_DEFAULTS: Readonly<Required<Omit<StaticOptions, 'replicas'>>> = Object.freeze({
  // Ours, not a peer's: the answer never changes, so the interval only bounds how late the
  // controller notices a changed [min, max]. 10 s is cheap and quick enough.
  intervalMs: 10_000,
});

/** The options `scaling.options` may set; the simulator's `--autoscale static` gives `replicas` itself. */
export const STATIC_OPTIONS = z.strictObject({
  replicas: z
    .number({ error: (i) => (i.input === undefined ? 'static scaling needs a replica count' : undefined) })
    .int()
    .nonnegative(),
  intervalMs: z.number().positive().optional(),
});

/** A policy that always decides `opts.replicas`. */
export function createStatic(opts: StaticOptions): ScalingPolicy {
  const { replicas } = opts;
  const intervalMs = opts.intervalMs ?? STATIC_DEFAULTS.intervalMs;
  assert(
    Number.isInteger(replicas) && replicas >= 0,
    `static: replicas must be a whole number ≥ 0, got ${replicas}`,
  );
  assert(intervalMs > 0, `static: intervalMs must be a positive number of ms, got ${intervalMs}`);
  const decision: ScalingDecision = Object.freeze({ desired: replicas, reason: 'static' });
  return {
    name: 'static',
    intervalMs,
    decide: function decideStatic(): ScalingDecision {
      return decision;
    },
  };
}
