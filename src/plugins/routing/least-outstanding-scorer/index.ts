/**
 * @module plugins/routing/least-outstanding-scorer
 * Prefers endpoints with fewer requests in flight from this gateway.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Scorer } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const LEAST_OUTSTANDING_SCORER = 'least-outstanding-scorer';

/**
 * score = (max − inFlight) / (max − min) over the candidates; all equal → 1 (neutral), so the
 * scorer never tips a tie that other scorers should decide.
 */
export class LeastOutstandingScorer implements Scorer {
  readonly type = LEAST_OUTSTANDING_SCORER;
  constructor(readonly name: string) {}

  score(_req: unknown, candidates: readonly EndpointView[], out: Float64Array): void {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const ep of candidates) {
      if (ep.inFlight < min) min = ep.inFlight;
      if (ep.inFlight > max) max = ep.inFlight;
    }
    const span = max - min;
    for (let i = 0; i < candidates.length; i++) {
      out[i] = span === 0 ? 1 : (max - candidates[i]!.inFlight) / span;
    }
  }
}

/** No parameters. */
export const createLeastOutstandingScorer = pluginFactory(
  LEAST_OUTSTANDING_SCORER,
  NO_PARAMS,
  (name) => new LeastOutstandingScorer(name),
);
