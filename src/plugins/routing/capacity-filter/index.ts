/**
 * @module plugins/routing/capacity-filter
 * Keeps endpoints below their capacity gate: in-flight requests under `maxConcurrency`; where
 * configured, this gateway's requests still prefilling there under `maxPrefilling` (the router's
 * ledger, fresh at every decision); and, where configured and metrics were scraped, the engine's
 * waiting queue and KV-cache usage under theirs.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Filter, PoolKnowledge, RoutingContext } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const CAPACITY_FILTER = 'capacity-filter';

function hasRoom(ep: EndpointView, pool: PoolKnowledge): boolean {
  if (ep.inFlight >= ep.maxConcurrency) return false;
  const gate = ep.info.gate;
  if (gate === undefined) return true;
  const maxPrefilling = gate.maxPrefilling ?? null;
  if (maxPrefilling !== null && pool.load(ep.index).prefilling >= maxPrefilling) return false;
  const m = ep.metrics;
  // Without a scrape the metric gates cannot be judged; the other gates still bound the endpoint.
  if (m === null) return true;
  if (gate.maxEngineWaiting !== null && m.waiting >= gate.maxEngineWaiting) return false;
  return gate.maxKvUsage === null || m.kvUsage < gate.maxKvUsage;
}

/** Drops endpoints at their capacity gate (see the module comment). */
export class CapacityFilter implements Filter {
  readonly type = CAPACITY_FILTER;
  constructor(readonly name: string) {}

  filter(_req: unknown, candidates: readonly EndpointView[], ctx: RoutingContext): readonly EndpointView[] {
    const pool = ctx.pool;
    for (const ep of candidates) {
      if (!hasRoom(ep, pool)) return candidates.filter((c) => hasRoom(c, pool));
    }
    return candidates;
  }
}

/** No parameters. */
export const createCapacityFilter = pluginFactory(
  CAPACITY_FILTER,
  NO_PARAMS,
  (name) => new CapacityFilter(name),
);
