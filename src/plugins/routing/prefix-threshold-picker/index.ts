/**
 * @module plugins/routing/prefix-threshold-picker
 * Prefix affinity with a load threshold: SGLang's cache-aware router (sgl-router), which AIBrix's
 * prefix-cache policy resembles. With its published defaults:
 *   1. If the pool is imbalanced — max load − min load > `balanceAbsThreshold` (32) and
 *      max load > `balanceRelThreshold` (1.5) × min load — go to the least-loaded endpoint.
 *   2. Else, if the best prefix match covers more than `cacheThreshold` (0.5) of the prompt, go to
 *      the endpoint holding it.
 *   3. Else go to the endpoint with the most free cache (the smallest cached-prefix tree).
 * Load is requests in flight from this gateway, as sgl-router counts them.
 */
import { z } from 'zod';
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker, RoutingContext, RoutingRequest } from '../../../framework/routing.js';
import { numberIn, pluginFactory } from '../params.js';

export const PREFIX_THRESHOLD_PICKER = 'prefix-threshold-picker';

/** The picker's parameters, with sgl-router's defaults (sgl-project/sglang router docs). */
export const PREFIX_THRESHOLD_PARAMS = z.strictObject({
  cacheThreshold: numberIn(0, 1).default(0.5),
  balanceAbsThreshold: numberIn(0).default(32),
  balanceRelThreshold: numberIn(1).default(1.5),
});

export type PrefixThresholdParams = Readonly<z.output<typeof PREFIX_THRESHOLD_PARAMS>>;

/** sgl-router defaults. */
export const SGLANG_DEFAULTS: PrefixThresholdParams = Object.freeze(PREFIX_THRESHOLD_PARAMS.parse({}));

export class PrefixThresholdPicker implements Picker {
  readonly type = PREFIX_THRESHOLD_PICKER;
  constructor(
    readonly name: string,
    private readonly p: PrefixThresholdParams,
  ) {}

  pick(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    _s: Float64Array,
    ctx: RoutingContext,
  ): number {
    let minLoad = Number.POSITIVE_INFINITY;
    let maxLoad = Number.NEGATIVE_INFINITY;
    let leastLoaded = 0;
    let best = 0;
    let bestMatch = -1;
    let emptiest = 0;
    let emptiestSize = Number.POSITIVE_INFINITY;
    let ties = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (c.inFlight < minLoad) {
        minLoad = c.inFlight;
        leastLoaded = i;
      }
      if (c.inFlight > maxLoad) maxLoad = c.inFlight;
      const m = ctx.pool.cachedPrefixTokens(c.index);
      if (m > bestMatch) {
        bestMatch = m;
        best = i;
      }
      // Smallest cache first; full caches tie, and sgl-router's timed eviction keeps its trees
      // unequal, so ties go to the lower load, then at random (never always to the first).
      const size = ctx.pool.cachedTokensTotal(c.index);
      const e = candidates[emptiest]!;
      if (size < emptiestSize || i === 0) {
        emptiestSize = size;
        emptiest = i;
        ties = 1;
      } else if (size === emptiestSize && c.inFlight <= e.inFlight) {
        if (c.inFlight < e.inFlight) {
          emptiest = i;
          ties = 1;
        } else if (ctx.rng.next() * ++ties < 1) emptiest = i;
      }
    }
    if (maxLoad - minLoad > this.p.balanceAbsThreshold && maxLoad > this.p.balanceRelThreshold * minLoad) {
      ctx.reason = 'imbalance';
      return leastLoaded;
    }
    if (req.promptTokensEstimate > 0 && bestMatch / req.promptTokensEstimate > this.p.cacheThreshold) {
      ctx.reason = 'prefix-hit';
      return best;
    }
    ctx.reason = 'most-free-cache';
    return emptiest;
  }
}

export const createPrefixThresholdPicker = pluginFactory(
  PREFIX_THRESHOLD_PICKER,
  PREFIX_THRESHOLD_PARAMS,
  (name, p) => new PrefixThresholdPicker(name, p),
);
