/**
 * @module plugins/routing/least-work-scorer
 * Prefers endpoints with the least outstanding token work from this gateway.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { RoutingContext, Scorer } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const LEAST_WORK_SCORER = 'least-work-scorer';

/**
 * work = uncached prefill tokens still queued + expected decode tokens outstanding, from the
 * router's load ledger; score = (max − work) / (max − min) over the candidates, all equal → 1.
 */
export class LeastWorkScorer implements Scorer {
  readonly type = LEAST_WORK_SCORER;
  constructor(readonly name: string) {}

  score(_req: unknown, candidates: readonly EndpointView[], out: Float64Array, ctx: RoutingContext): void {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < candidates.length; i++) {
      const l = ctx.pool.load(candidates[i]!.index);
      const work = l.prefillTokens + l.decodeTokens;
      out[i] = work; // raw work first, rescaled below: no scratch array needed
      if (work < min) min = work;
      if (work > max) max = work;
    }
    const span = max - min;
    for (let i = 0; i < candidates.length; i++) out[i] = span === 0 ? 1 : (max - out[i]!) / span;
  }
}

/** No parameters. */
export const createLeastWorkScorer = pluginFactory(
  LEAST_WORK_SCORER,
  NO_PARAMS,
  (name) => new LeastWorkScorer(name),
);
