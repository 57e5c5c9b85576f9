/**
 * @module router/router
 * The builtin that runs a routing profile: filters, then weighted scorers, then one picker. The
 * profile is compiled once per config version; at request time the router only iterates arrays.
 */
import { SwitchyardError } from '../core/errors.js';
import type { EndpointView } from '../framework/endpoint.js';
import type { Filter, Picker, RoutingContext, RoutingRequest, Scorer } from '../framework/routing.js';
import type { RoutingRegistry } from '../plugins/routing/register.js';

/** A profile as plugin references (the config shape after presets are expanded). */
export interface RoutingProfileSpec {
  readonly filters: readonly { type: string; params: Readonly<Record<string, unknown>> }[];
  readonly scorers: readonly { type: string; weight: number; params: Readonly<Record<string, unknown>> }[];
  readonly picker: { type: string; params: Readonly<Record<string, unknown>> };
}

/** Named presets; `routing.profile` in config may name one of these. */
export const ROUTING_PRESETS: Readonly<Record<string, RoutingProfileSpec>> = {
  'least-outstanding': {
    filters: [
      { type: 'healthy-filter', params: {} },
      { type: 'capacity-filter', params: {} },
    ],
    scorers: [{ type: 'least-outstanding-scorer', weight: 1, params: {} }],
    picker: { type: 'max-score-picker', params: {} },
  },
  'round-robin': {
    filters: [
      { type: 'healthy-filter', params: {} },
      { type: 'capacity-filter', params: {} },
    ],
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

/** A compiled routing profile for one pool. */
export class Router {
  private readonly filters: readonly Filter[];
  private readonly scorers: readonly Scorer[];
  private readonly weights: Float64Array;
  private readonly picker: Picker;
  private readonly partial: Float64Array;
  private readonly total: Float64Array;

  /** Instantiates every plugin of `spec` from `registry`; unknown types throw naming the type. */
  constructor(spec: RoutingProfileSpec, registry: RoutingRegistry, maxCandidates: number) {
    this.filters = spec.filters.map((f, i) =>
      make(registry.filters, 'filter', f.type, `filters[${i}]`, f.params),
    );
    this.scorers = spec.scorers.map((s, i) =>
      make(registry.scorers, 'scorer', s.type, `scorers[${i}]`, s.params),
    );
    this.weights = Float64Array.from(spec.scorers, (s) => s.weight);
    this.picker = make(registry.pickers, 'picker', spec.picker.type, 'picker', spec.picker.params);
    this.partial = new Float64Array(maxCandidates);
    this.total = new Float64Array(maxCandidates);
  }

  /**
   * Chooses one endpoint. Throws SWY_ERR_NO_HEALTHY_ENDPOINT when the filters leave nothing because
   * of health, and SWY_ERR_OVERLOADED when the healthy endpoints are all at capacity.
   */
  route(req: RoutingRequest, views: readonly EndpointView[], ctx: RoutingContext): EndpointView {
    let candidates = views;
    for (const f of this.filters) {
      candidates = f.filter(req, candidates, ctx);
      if (candidates.length === 0) throw emptyError(req, views);
    }
    const n = candidates.length;
    const total = this.total.length >= n ? this.total : new Float64Array(n);
    total.fill(0, 0, n);
    const partial = this.partial.length >= n ? this.partial : new Float64Array(n);
    for (let s = 0; s < this.scorers.length; s++) {
      partial.fill(0, 0, n);
      this.scorers[s]!.score(req, candidates, partial, ctx);
      const w = this.weights[s]!;
      // The framework, not the plugin, enforces the [0, 1] contract.
      for (let i = 0; i < n; i++) total[i]! += w * Math.min(1, Math.max(0, partial[i]! || 0));
    }
    const idx = this.picker.pick(req, candidates, total.subarray(0, n), ctx);
    const chosen = candidates[idx];
    if (chosen === undefined) throw new Error(`picker ${this.picker.name} returned index ${idx} of ${n}`);
    return chosen;
  }
}

function make<P>(
  factories: ReadonlyMap<string, (name: string, params: Readonly<Record<string, unknown>>) => P>,
  kind: string,
  type: string,
  name: string,
  params: Readonly<Record<string, unknown>>,
): P {
  const factory = factories.get(type);
  if (factory === undefined) {
    throw new Error(`unknown ${kind} type "${type}" (known: ${[...factories.keys()].join(', ')})`);
  }
  return factory(name, params);
}

function emptyError(req: RoutingRequest, views: readonly EndpointView[]): SwitchyardError {
  const healthy = views.some((v) => v.healthy && v.circuit !== 'open');
  if (healthy) {
    return new SwitchyardError('SWY_ERR_OVERLOADED', `all endpoints of model "${req.pool}" are at capacity`);
  }
  return new SwitchyardError('SWY_ERR_NO_HEALTHY_ENDPOINT', `no healthy endpoint for model "${req.pool}"`);
}
