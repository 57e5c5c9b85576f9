/**
 * @module autoscaler/policies/oracle
 * A reference bound, not a practical policy: it is told the trace's future arrivals and scales just
 * in time for them, so the other policies' cost and cold-start exposure can be read against it.
 *
 * At each decision (every 5 s) at time t it sizes for the busiest sub-window (default 10 s) that
 * starts in [t, t + coldStartMs + intervalMs):
 *
 *     need(s)  = ceil(arrivals(s, s + subWindowMs) / subWindowSeconds / (replicaRps × utilization))
 *     desired  = max over starts s = t, t + g, t + 2g, … < t + coldStartMs + intervalMs of need(s),
 *                g = min(subWindowMs, intervalMs)
 *
 * Starts in [t + coldStartMs, t + coldStartMs + intervalMs) are the ones this decision alone can
 * serve: replicas asked now are ready at t + coldStartMs, and the next decision's one interval later.
 * So a burst that begins at B is asked for exactly at the last decision t with t + coldStartMs ≤ B,
 * or one interval earlier when its rise straddles a sub-window. Starts in [t, t + coldStartMs) keep
 * the replicas that arrivals before then still need (removal is immediate, a replacement is a cold
 * start away); with no arrival in that whole horizon the pool goes to zero (`scale-to-zero`) —
 * replicas are released as soon as the known future no longer needs them.
 *
 * `utilization` defaults to 1: `replicaRps` is already what one replica sustains within the SLO, and
 * a policy that knows the future has no forecast error to pay headroom for. The bound is for
 * rate-sized policies at that `replicaRps`; queueing within a sub-window is not modelled.
 *
 * Requests already waiting in the gateway are not in the future: while `queued` over the last
 * interval is above 0 the oracle keeps at least max(1, ready + starting) (`drain-queue`), else a
 * pool woken by the activator could be sent back to zero with the request still waiting.
 */
import { z } from 'zod';
import { assert } from '../../core/assert.js';
import type { ScalingContext, ScalingDecision, ScalingPolicy } from '../types.js';

const CEIL_SLACK = 1e-9;

export interface OracleOptions {
  /**
   * Arrivals in [fromMs, toMs) of the trace being replayed (the simulator builds it from the
   * trace's arrival times, on the same clock as `ctx.nowMs`).
   */
  readonly arrivals: (fromMs: number, toMs: number) => number;
  /** How often it decides, ms. */
  readonly intervalMs?: number;
  /** Window a rate is measured over, ms. */
  readonly subWindowMs?: number;
  /** Share of `replicaRps` a replica is planned to carry, in (0, 1]. */
  readonly utilization?: number;
}

export const ORACLE_DEFAULTS: Readonly<Required<Omit<OracleOptions, 'arrivals'>>> = Object.freeze({
  intervalMs: 5_000, // ours: finer than any practical policy's tick, so the bound is tight
  subWindowMs: 10_000, // ours: a rate over 10 s; Knative's panic window is 6 s
  utilization: 1, // ours: a bound needs no headroom (see the module comment)
});

/** The options a caller may set (each defaults to {@link ORACLE_DEFAULTS}); the arrivals come from the simulator. */
export const ORACLE_OPTIONS = z.strictObject({
  intervalMs: z.number().positive().optional(),
  subWindowMs: z.number().positive().optional(),
  utilization: z.number().gt(0).max(1).optional(),
});

/** The future-knowing reference policy for one pool; see the module comment. */
export function createOracle(options: OracleOptions): ScalingPolicy {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return new OraclePolicy({ ...ORACLE_DEFAULTS, ...defined } as Required<OracleOptions>);
}

class OraclePolicy implements ScalingPolicy {
  readonly name = 'oracle';
  readonly intervalMs: number;

  constructor(private readonly o: Readonly<Required<OracleOptions>>) {
    assert(typeof o.arrivals === 'function', 'oracle: arrivals must be a function (fromMs, toMs) → count');
    const positive = (v: number, field: string) =>
      assert(v > 0 && Number.isFinite(v), `oracle: ${field} must be a positive number, got ${v}`);
    positive(o.intervalMs, 'intervalMs');
    positive(o.subWindowMs, 'subWindowMs');
    assert(o.utilization > 0 && o.utilization <= 1, `oracle: utilization must be in (0, 1]`);
    this.intervalMs = o.intervalMs;
  }

  decide(ctx: ScalingContext): ScalingDecision {
    assert(ctx.replicaRps > 0, `oracle: replicaRps must be > 0, got ${ctx.replicaRps}`);
    const need = this.busiestNeed(ctx);
    const { ready, starting } = ctx.replicas;
    if (ctx.metrics.queued(this.o.intervalMs) > 0) {
      const keep = Math.max(1, ready + starting);
      if (keep > need) return { desired: keep, reason: 'drain-queue' };
    }
    return { desired: need, reason: need === 0 ? 'scale-to-zero' : 'oracle' };
  }

  /** Replicas for the busiest sub-window starting in [now, now + cold start + interval). */
  private busiestNeed(ctx: ScalingContext): number {
    const { subWindowMs, intervalMs, utilization } = this.o;
    const perReplicaRps = ctx.replicaRps * utilization;
    const gapMs = Math.min(subWindowMs, intervalMs);
    const endMs = ctx.nowMs + ctx.coldStartMs + intervalMs;
    let most = 0;
    for (let s = ctx.nowMs; s < endMs; s += gapMs) {
      most = Math.max(most, this.o.arrivals(s, s + subWindowMs));
    }
    const rps = most / (subWindowMs / 1000);
    return Math.max(0, Math.ceil(rps / perReplicaRps - CEIL_SLACK));
  }
}
