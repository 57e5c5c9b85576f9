/**
 * @module plugins/routing/healthy-filter
 * Keeps endpoints that passed their last health check, whose circuit is not open, and that this
 * request has not already tried.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Filter, RoutingRequest } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const HEALTHY_FILTER = 'healthy-filter';

function usable(ep: EndpointView, excluded: ReadonlySet<string> | null): boolean {
  return ep.healthy && ep.circuit !== 'open' && (excluded === null || !excluded.has(ep.id));
}

/** Drops unhealthy, circuit-open and already-tried endpoints. */
export class HealthyFilter implements Filter {
  readonly type = HEALTHY_FILTER;
  constructor(readonly name: string) {}

  filter(req: RoutingRequest, candidates: readonly EndpointView[]): readonly EndpointView[] {
    for (const ep of candidates) {
      // Common case: everything usable, return the input without allocating.
      if (!usable(ep, req.excluded)) return candidates.filter((c) => usable(c, req.excluded));
    }
    return candidates;
  }
}

/** No parameters. */
export const createHealthyFilter = pluginFactory(
  HEALTHY_FILTER,
  NO_PARAMS,
  (name) => new HealthyFilter(name),
);
