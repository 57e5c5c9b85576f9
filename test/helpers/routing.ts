/**
 * Routing test fixtures: hand-built endpoint views, requests and pool knowledge, so each policy can
 * be checked with exact expected choices on constructed states.
 */
import { SeededRng } from '../../src/core/rng.js';
import { type EndpointInfo, type EndpointView, PLAIN_ENDPOINT } from '../../src/framework/endpoint.js';
import type {
  EndpointLoad,
  PoolKnowledge,
  RoutingContext,
  RoutingRequest,
} from '../../src/framework/routing.js';

/** A healthy, idle endpoint view with `over` applied; `info` fields may be given partially. */
export function view(
  id: string,
  index: number,
  over: Partial<Omit<EndpointView, 'info'>> & { info?: Partial<EndpointInfo> } = {},
): EndpointView {
  const { info, ...rest } = over;
  return Object.freeze({
    id,
    index,
    pool: 'p',
    healthy: true,
    circuit: 'closed' as const,
    inFlight: 0,
    maxConcurrency: 10,
    metrics: null,
    ...rest,
    info: { ...PLAIN_ENDPOINT, ...info },
  });
}

/** A request with optional signals. */
export function request(over: Partial<RoutingRequest> & { excludedIds?: string[] } = {}): RoutingRequest {
  const { excludedIds, ...rest } = over;
  return {
    id: 'r',
    pool: 'p',
    promptTokensEstimate: 10,
    excluded: excludedIds?.length ? new Set(excludedIds) : null,
    prefixHashes: [],
    prefixBlockTokens: 16,
    sessionId: null,
    tenant: null,
    ...rest,
  };
}

/** An endpoint with nothing routed to it. */
export const IDLE: EndpointLoad = {
  requests: 0,
  prefilling: 0,
  prefillTokens: 0,
  prefillPairs: 0,
  kvTokens: 0,
  decodeTokens: 0,
};

/** Pool knowledge given as plain arrays by endpoint index (missing entries: idle, nothing cached). */
export function knowledge(
  over: {
    cached?: number[];
    cachedTotal?: number[];
    loads?: Partial<EndpointLoad>[];
    meanOutputTokens?: number;
    size?: number;
  } = {},
): PoolKnowledge {
  const size = over.size ?? Math.max(over.cached?.length ?? 0, over.loads?.length ?? 0, 16);
  return {
    size,
    cachedPrefixTokens: (i) => over.cached?.[i] ?? 0,
    cachedTokensTotal: (i) => over.cachedTotal?.[i] ?? 0,
    load: (i) => ({ ...IDLE, ...over.loads?.[i] }),
    meanOutputTokens: over.meanOutputTokens ?? 256,
  };
}

/** A decision context with a seeded Rng and the given pool knowledge. */
export function context(seed = 1, pool: PoolKnowledge = knowledge()): RoutingContext {
  return { rng: new SeededRng(seed), pool, reason: '' };
}
