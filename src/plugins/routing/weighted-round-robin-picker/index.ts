/**
 * @module plugins/routing/weighted-round-robin-picker
 * Smooth weighted round robin (nginx's algorithm) over each endpoint's configured weight.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker, RoutingContext } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const WEIGHTED_ROUND_ROBIN_PICKER = 'weighted-round-robin-picker';

/**
 * Each decision adds every candidate's weight to its running `current`, picks the largest
 * `current` (first in candidate order on a tie, as nginx does) and subtracts the candidates' total
 * weight from the winner. Over a cycle of Σw decisions each endpoint is picked exactly w times, and
 * the picks are interleaved: weights 5, 1, 1 give a a b a c a a, never a burst of five a's.
 *
 * State: `current` by pool index (stable for the plugin's life: one Router per pool and config
 * version). An endpoint filtered out of a decision keeps its `current` unchanged, as a down peer in
 * nginx does, and resumes where it was.
 */
export class WeightedRoundRobinPicker implements Picker {
  readonly type = WEIGHTED_ROUND_ROBIN_PICKER;
  private current = new Float64Array(0);
  constructor(readonly name: string) {}

  pick(
    _req: unknown,
    candidates: readonly EndpointView[],
    _scores: Float64Array,
    ctx: RoutingContext,
  ): number {
    const cur = this.state(candidates, ctx);
    let total = 0;
    let best = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const w = Math.max(0, c.info.weight);
      cur[c.index]! += w;
      total += w;
      if (cur[c.index]! > cur[candidates[best]!.index]!) best = i;
    }
    cur[candidates[best]!.index]! -= total;
    ctx.reason = 'weighted';
    return best;
  }

  /** The `current` array, grown (rarely: once per pool) to hold every candidate's index. */
  private state(candidates: readonly EndpointView[], ctx: RoutingContext): Float64Array {
    let need = ctx.pool.size;
    for (const c of candidates) if (c.index >= need) need = c.index + 1;
    if (need > this.current.length) {
      const grown = new Float64Array(need);
      grown.set(this.current);
      this.current = grown;
    }
    return this.current;
  }
}

/** No parameters. */
export const createWeightedRoundRobinPicker = pluginFactory(
  WEIGHTED_ROUND_ROBIN_PICKER,
  NO_PARAMS,
  (name) => new WeightedRoundRobinPicker(name),
);
