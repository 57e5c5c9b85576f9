/**
 * @module plugins/routing/random-picker
 * Picks a candidate uniformly at random with the decision's seeded Rng, ignoring scores.
 */
import type { Picker, RoutingContext } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const RANDOM_PICKER = 'random-picker';

/** Uniform over the candidates; the baseline every balancing policy must beat. */
export class RandomPicker implements Picker {
  readonly type = RANDOM_PICKER;
  constructor(readonly name: string) {}

  pick(_req: unknown, candidates: readonly unknown[], _scores: Float64Array, ctx: RoutingContext): number {
    ctx.reason = 'random';
    return Math.floor(ctx.rng.next() * candidates.length);
  }
}

/** No parameters. */
export const createRandomPicker = pluginFactory(RANDOM_PICKER, NO_PARAMS, (name) => new RandomPicker(name));
