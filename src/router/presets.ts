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

/** Our own: the engine-model cost model, lowest predicted TTFT wins (see predicted-ttft-scorer). */
const PREDICTED_TTFT: RoutingProfileSpec = {
  filters: BASE_FILTERS,
  scorers: [{ type: 'predicted-ttft-scorer', weight: 1, params: {} }],
  picker: { type: 'max-score-picker', params: {} },
};

/** Named presets; `routing.profile` in config may name one of these. */
export const ROUTING_PRESETS: Readonly<Record<string, RoutingProfileSpec>> = {
  default: PREDICTED_TTFT,
  'predicted-ttft': PREDICTED_TTFT,
  // SGLang's cache-aware router with its published defaults (in the picker).
  'prefix-threshold': {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'prefix-threshold-picker', params: {} },
  },
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
  // AIBrix `random`: uniform over the usable endpoints.
  random: {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'random-picker', params: {} },
  },
  // AIBrix `least-kv-cache`: lowest scraped KV-cache usage, ties at random (no load tie-break).
  'least-kv': {
    filters: BASE_FILTERS,
    scorers: [{ type: 'kv-usage-scorer', weight: 1, params: {} }],
    picker: { type: 'max-score-picker', params: {} },
  },
  // Least outstanding token work (queued uncached prefill + expected decode), from the load ledger.
  'least-work': {
    filters: BASE_FILTERS,
    scorers: [{ type: 'least-work-scorer', weight: 1, params: {} }],
    picker: { type: 'max-score-picker', params: {} },
  },
  // SGLang `power_of_two` / AIBrix `power-of-two`: two at random, fewer requests in flight wins.
  p2c: {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'p2c-picker', params: { load: 'requests' } },
  },
  // Consistent hashing with bounded loads, c = 1.25 (Mirrokni et al. 2018; HAProxy, KubeAI).
  chwbl: {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'chwbl-picker', params: {} },
  },
  // DualMap (ICLR 2026) with the defaults of its code (ASISys/DualMap), in the picker.
  dualmap: {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'dualmap-picker', params: {} },
  },
  // Sticky sessions until the home endpoint is overloaded (defaults in the picker are ours).
  session: {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'session-affinity-picker', params: {} },
  },
  // nginx smooth weighted round robin over each endpoint's configured weight (provider endpoints).
  weighted: {
    filters: BASE_FILTERS,
    scorers: [],
    picker: { type: 'weighted-round-robin-picker', params: {} },
  },
};

/**
 * Expands a profile name into its plugin list — the config's own named `profiles` first, then the
 * built-in presets; an explicit profile is returned as it is.
 */
export function routingSpec(
  profile: string | RoutingProfileSpec,
  named: Readonly<Record<string, RoutingProfileSpec>> = {},
): RoutingProfileSpec {
  if (typeof profile !== 'string') return profile;
  const spec = named[profile] ?? ROUTING_PRESETS[profile];
  if (spec === undefined) {
    const known = [...Object.keys(named), ...Object.keys(ROUTING_PRESETS)].join(', ');
    throw new Error(`unknown routing policy "${profile}"; known: ${known}`);
  }
  return spec;
}

/**
 * `spec` with the cost model's online correction (predicted-ttft-scorer's `correction`) set to `on`
 * in every scorer that has it; a profile without one is returned as it is.
 */
export function withModelCorrection(spec: RoutingProfileSpec, on: boolean): RoutingProfileSpec {
  if (!spec.scorers.some((s) => s.type === 'predicted-ttft-scorer')) return spec;
  return {
    ...spec,
    scorers: spec.scorers.map((s) =>
      s.type === 'predicted-ttft-scorer' ? { ...s, params: { ...s.params, correction: on } } : s,
    ),
  };
}
