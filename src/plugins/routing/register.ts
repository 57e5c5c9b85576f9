/**
 * @module plugins/routing/register
 * The one place where routing plugins are registered by type. A duplicate registration throws.
 */
import type { Filter, PluginFactory, Picker, Scorer } from '../../framework/routing.js';
import { CAPACITY_FILTER, createCapacityFilter } from './capacity-filter/index.js';
import { CHWBL_PICKER, createChwblPicker } from './chwbl-picker/index.js';
import { DUALMAP_PICKER, createDualMapPicker } from './dualmap-picker/index.js';
import { HEALTHY_FILTER, createHealthyFilter } from './healthy-filter/index.js';
import { LEAST_OUTSTANDING_SCORER, createLeastOutstandingScorer } from './least-outstanding-scorer/index.js';
import { MAX_SCORE_PICKER, createMaxScorePicker } from './max-score-picker/index.js';
import { PREDICTED_TTFT_SCORER, createPredictedTtftScorer } from './predicted-ttft-scorer/index.js';
import { PREFIX_THRESHOLD_PICKER, createPrefixThresholdPicker } from './prefix-threshold-picker/index.js';
import { ROUND_ROBIN_PICKER, createRoundRobinPicker } from './round-robin-picker/index.js';
import { KV_USAGE_SCORER, createKvUsageScorer } from './kv-usage-scorer/index.js';
import { LABEL_FILTER, createLabelFilter } from './label-filter/index.js';
import { LEAST_WORK_SCORER, createLeastWorkScorer } from './least-work-scorer/index.js';
import { P2C_PICKER, createP2cPicker } from './p2c-picker/index.js';
import { RANDOM_PICKER, createRandomPicker } from './random-picker/index.js';
import { SESSION_AFFINITY_PICKER, createSessionAffinityPicker } from './session-affinity-picker/index.js';
import {
  WEIGHTED_ROUND_ROBIN_PICKER,
  createWeightedRoundRobinPicker,
} from './weighted-round-robin-picker/index.js';
import { WEIGHTED_SCORE_PICKER, createWeightedScorePicker } from './weighted-score-picker/index.js';

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
  register(scorers, PREDICTED_TTFT_SCORER, createPredictedTtftScorer);
  register(pickers, PREFIX_THRESHOLD_PICKER, createPrefixThresholdPicker);
  register(pickers, ROUND_ROBIN_PICKER, createRoundRobinPicker);
  register(filters, LABEL_FILTER, createLabelFilter);
  register(scorers, KV_USAGE_SCORER, createKvUsageScorer);
  register(scorers, LEAST_WORK_SCORER, createLeastWorkScorer);
  register(pickers, RANDOM_PICKER, createRandomPicker);
  register(pickers, P2C_PICKER, createP2cPicker);
  register(pickers, CHWBL_PICKER, createChwblPicker);
  register(pickers, DUALMAP_PICKER, createDualMapPicker);
  register(pickers, SESSION_AFFINITY_PICKER, createSessionAffinityPicker);
  register(pickers, WEIGHTED_ROUND_ROBIN_PICKER, createWeightedRoundRobinPicker);
  register(pickers, WEIGHTED_SCORE_PICKER, createWeightedScorePicker);
  return { filters, scorers, pickers };
}
