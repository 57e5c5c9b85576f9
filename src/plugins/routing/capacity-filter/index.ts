/**
 * @module plugins/routing/capacity-filter
 * Keeps endpoints with room under their configured concurrency limit.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Filter } from '../../../framework/routing.js';

export const CAPACITY_FILTER = 'capacity-filter';

const hasRoom = (ep: EndpointView): boolean => ep.inFlight < ep.maxConcurrency;

/** Drops endpoints whose in-flight count has reached `maxConcurrency`. */
export class CapacityFilter implements Filter {
  readonly type = CAPACITY_FILTER;
  constructor(readonly name: string) {}

  filter(_req: unknown, candidates: readonly EndpointView[]): readonly EndpointView[] {
    for (const ep of candidates) if (!hasRoom(ep)) return candidates.filter(hasRoom);
    return candidates;
  }
}

export const createCapacityFilter = (name: string): CapacityFilter => new CapacityFilter(name);
