/**
 * @module plugins/routing/weighted-score-picker
 * Picks at random, weighted by the total scores: in proportion to them, or by a softmax with a
 * temperature as NVIDIA Dynamo's KV router does.
 */
import { z } from 'zod';
import type { Picker, RoutingContext } from '../../../framework/routing.js';
import { numberIn, pluginFactory } from '../params.js';

export const WEIGHTED_SCORE_PICKER = 'weighted-score-picker';

/**
 * Without `temperature`: P(i) = score_i / Σ score (all zero → uniform).
 * With `temperature` T > 0: P(i) ∝ exp((score_i − max) / (T × (max − min))), Dynamo's softmax over
 * range-normalised logits, so T is relative to the spread of the scores and does not depend on the
 * scorers' weights. T = 0: the best score, ties broken uniformly (Dynamo's default).
 */
export class WeightedScorePicker implements Picker {
  readonly type = WEIGHTED_SCORE_PICKER;
  constructor(
    readonly name: string,
    private readonly temperature: number | null,
  ) {}

  pick(_req: unknown, candidates: readonly unknown[], scores: Float64Array, ctx: RoutingContext): number {
    const n = candidates.length;
    ctx.reason = 'weighted-score';
    if (this.temperature === null) return proportional(scores, n, ctx);
    if (this.temperature === 0) return argmax(scores, n, ctx);
    return softmax(scores, n, this.temperature, ctx);
  }
}

function proportional(scores: Float64Array, n: number, ctx: RoutingContext): number {
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, scores[i]!);
  if (total === 0) return Math.floor(ctx.rng.next() * n);
  let r = ctx.rng.next() * total;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const s = Math.max(0, scores[i]!);
    if (s === 0) continue;
    last = i;
    r -= s;
    if (r < 0) return i;
  }
  return last; // rounding left a sliver past the end: the last candidate with weight
}

function argmax(scores: Float64Array, n: number, ctx: RoutingContext): number {
  let best = 0;
  let ties = 1;
  for (let i = 1; i < n; i++) {
    if (scores[i]! > scores[best]!) {
      best = i;
      ties = 1;
    } else if (scores[i] === scores[best]) {
      ties++;
      if (ctx.rng.next() * ties < 1) best = i;
    }
  }
  return best;
}

function softmax(scores: Float64Array, n: number, temperature: number, ctx: RoutingContext): number {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let top = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (s < min) min = s;
    if (s > max) {
      max = s;
      top = i;
    }
  }
  if (max === min) return Math.floor(ctx.rng.next() * n);
  const scale = 1 / (temperature * (max - min));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp((scores[i]! - max) * scale);
  // Recompute the terms while walking rather than keep them: no per-decision allocation.
  let r = ctx.rng.next() * sum;
  for (let i = 0; i < n; i++) {
    r -= Math.exp((scores[i]! - max) * scale);
    if (r < 0) return i;
  }
  return top;
}

/** `temperature` absent: proportional sampling; a number ≥ 0: softmax at that temperature. */
export const WEIGHTED_SCORE_PARAMS = z.strictObject({ temperature: numberIn(0).optional() });

export const createWeightedScorePicker = pluginFactory(
  WEIGHTED_SCORE_PICKER,
  WEIGHTED_SCORE_PARAMS,
  (name, p) => new WeightedScorePicker(name, p.temperature ?? null),
);
