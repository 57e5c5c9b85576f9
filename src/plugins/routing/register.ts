/**
 * @module plugins/routing/register
 * The one place where routing plugins are registered by type. A duplicate registration throws.
 */
import type { Filter, PluginFactory, Picker, Scorer } from '../../framework/routing.js';
import { CAPACITY_FILTER, createCapacityFilter } from './capacity-filter/index.js';
import { HEALTHY_FILTER, createHealthyFilter } from './healthy-filter/index.js';
import { LEAST_OUTSTANDING_SCORER, createLeastOutstandingScorer } from './least-outstanding-scorer/index.js';
import { MAX_SCORE_PICKER, createMaxScorePicker } from './max-score-picker/index.js';
import { ROUND_ROBIN_PICKER, createRoundRobinPicker } from './round-robin-picker/index.js';

/** Factories by plugin type, one map per extension point. */
export interface RoutingRegistry {
  readonly filters: ReadonlyMap<string, PluginFactory<Filter>>;
  readonly scorers: ReadonlyMap<string, PluginFactory<Scorer>>;
  readonly pickers: ReadonlyMap<string, PluginFactory<Picker>>;
}

function register<P>(map: Map<string, P>, type: string, factory: P): void {
  if (map.has(type)) throw new Error(`routing plugin type "${type}" is registered twice`);
  map.set(type, factory);
}

/** Builds the registry of built-in routing plugins. */
export function builtinRoutingRegistry(): RoutingRegistry {
  const filters = new Map<string, PluginFactory<Filter>>();
  const scorers = new Map<string, PluginFactory<Scorer>>();
  const pickers = new Map<string, PluginFactory<Picker>>();
  register(filters, HEALTHY_FILTER, createHealthyFilter);
  register(filters, CAPACITY_FILTER, createCapacityFilter);
  register(scorers, LEAST_OUTSTANDING_SCORER, createLeastOutstandingScorer);
  register(pickers, MAX_SCORE_PICKER, createMaxScorePicker);
  register(pickers, ROUND_ROBIN_PICKER, createRoundRobinPicker);
  return { filters, scorers, pickers };
}
