/**
 * @module plugins/routing/max-score-picker
 * Picks the highest total score; ties are broken uniformly at random with the seeded Rng.
 */
import type { Picker, RoutingContext } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const MAX_SCORE_PICKER = 'max-score-picker';

/** Highest score wins; among equal best scores, a seeded uniform choice (no bias to index 0). */
export class MaxScorePicker implements Picker {
  readonly type = MAX_SCORE_PICKER;
  constructor(readonly name: string) {}

  pick(_req: unknown, candidates: readonly unknown[], scores: Float64Array, ctx: RoutingContext): number {
    let best = Number.NEGATIVE_INFINITY;
    let ties = 0;
    let chosen = 0;
    for (let i = 0; i < candidates.length; i++) {
      const s = scores[i]!;
      if (s > best) {
        best = s;
        ties = 1;
        chosen = i;
      } else if (s === best) {
        // Reservoir sampling over the tied set: each tie ends up chosen with probability 1/ties.
        ties++;
        if (ctx.rng.next() * ties < 1) chosen = i;
      }
    }
    return chosen;
  }
}

/** No parameters. */
export const createMaxScorePicker = pluginFactory(
  MAX_SCORE_PICKER,
  NO_PARAMS,
  (name) => new MaxScorePicker(name),
);
