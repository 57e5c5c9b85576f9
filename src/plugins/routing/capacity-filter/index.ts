/**
 * @module plugins/routing/capacity-filter
 * Keeps endpoints below their capacity gate: in-flight requests under `maxConcurrency`, and, where
 * configured and metrics were scraped, the engine's waiting queue and KV-cache usage under theirs.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Filter } from '../../../framework/routing.js';

export const CAPACITY_FILTER = 'capacity-filter';

function hasRoom(ep: EndpointView): boolean {
  if (ep.inFlight >= ep.maxConcurrency) return false;
  const gate = ep.info.gate;
  const m = ep.metrics;
  // Without a scrape the metric gates cannot be judged; maxConcurrency alone still bounds the endpoint.
  if (gate === undefined || m === null) return true;
  if (gate.maxEngineWaiting !== null && m.waiting >= gate.maxEngineWaiting) return false;
  return gate.maxKvUsage === null || m.kvUsage < gate.maxKvUsage;
}

/** Drops endpoints at their capacity gate (see the module comment). */
export class CapacityFilter implements Filter {
  readonly type = CAPACITY_FILTER;
  constructor(readonly name: string) {}

  filter(_req: unknown, candidates: readonly EndpointView[]): readonly EndpointView[] {
    for (const ep of candidates) if (!hasRoom(ep)) return candidates.filter(hasRoom);
    return candidates;
  }
}

export const createCapacityFilter = (name: string): CapacityFilter => new CapacityFilter(name);
