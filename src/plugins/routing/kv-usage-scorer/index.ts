/**
 * @module plugins/routing/kv-usage-scorer
 * Prefers endpoints whose engines report the lowest KV-cache usage (scraped metrics).
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Scorer } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const KV_USAGE_SCORER = 'kv-usage-scorer';

const free = (ep: EndpointView): number => 1 - Math.min(1, Math.max(0, ep.metrics!.kvUsage));

/**
 * score = 1 − kvUsage, an absolute scale (not rescaled over the candidates), so that in a blend a
 * 1-point difference in usage weighs as little as it means. An endpoint not yet scraped gets the
 * mean score of those that were: neither favoured nor shunned until its first scrape.
 */
export class KvUsageScorer implements Scorer {
  readonly type = KV_USAGE_SCORER;
  constructor(readonly name: string) {}

  score(_req: unknown, candidates: readonly EndpointView[], out: Float64Array): void {
    let sum = 0;
    let scraped = 0;
    for (const ep of candidates) {
      if (ep.metrics === null) continue;
      sum += free(ep);
      scraped++;
    }
    const neutral = scraped === 0 ? 1 : sum / scraped;
    for (let i = 0; i < candidates.length; i++) {
      const ep = candidates[i]!;
      out[i] = ep.metrics === null ? neutral : free(ep);
    }
  }
}

/** No parameters. */
export const createKvUsageScorer = pluginFactory(
  KV_USAGE_SCORER,
  NO_PARAMS,
  (name) => new KvUsageScorer(name),
);
