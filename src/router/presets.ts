/**
 * @module router/presets
 * Routing policies by name: each is a profile (filters, weighted scorers, a picker) of built-in
 * plugins with the parameters its source publishes. `routing.profile` in the config and the
 * simulator's `--policy` take these names; `default` is the recommended one.
 */
import type { RoutingProfileSpec } from './router.js';

const BASE_FILTERS: RoutingProfileSpec['filters'] = [
  { type: 'healthy-filter', params: {} },
  { type: 'capacity-filter', params: {} },
];

/** Named presets; `routing.profile` in config may name one of these. */
export const ROUTING_PRESETS: Readonly<Record<string, RoutingProfileSpec>> = {
  'least-outstanding': {
    filters: BASE_FILTERS,
    scorers: [{ type: 'least-outstanding-scorer', weight: 1, params: {} }],
    picker: { type: 'max-score-picker', params: {} },
  },
  'round-robin': {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'round-robin-picker', params: {} },
  },
};

/** Expands a preset name into its plugin list; an explicit profile is returned as it is. */
export function routingSpec(profile: string | RoutingProfileSpec): RoutingProfileSpec {
  if (typeof profile !== 'string') return profile;
  const preset = ROUTING_PRESETS[profile];
  if (preset === undefined) {
    throw new Error(`unknown routing preset "${profile}"; known: ${Object.keys(ROUTING_PRESETS).join(', ')}`);
  }
  return preset;
}
