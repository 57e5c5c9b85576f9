/**
 * @module framework/routing
 * The routing extension points: filter → score → pick. Policies are small pure functions over a
 * request's signals and frozen {@link EndpointView}s; they do no I/O, read no clock and draw
 * randomness only from the {@link Rng} the framework passes in.
 */
import type { Rng } from '../core/rng.js';
import type { EndpointView } from './endpoint.js';

/** What routing may know about a request (grows with classification: prefixes, tenant, …). */
export interface RoutingRequest {
  readonly id: string;
  /** Pool (resolved client model name). */
  readonly pool: string;
  /** Rough prompt size in tokens. */
  readonly promptTokensEstimate: number;
  /** Endpoint ids already tried for this request (retries avoid them). */
  readonly excluded: ReadonlySet<string> | null;
}

/** Per-decision inputs shared by all plugins. */
export interface RoutingContext {
  readonly rng: Rng;
}

/** Removes candidates that must not serve the request. Returns a subset (may be the same array). */
export interface Filter {
  readonly type: string;
  readonly name: string;
  filter(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    ctx: RoutingContext,
  ): readonly EndpointView[];
}

/** Scores candidates in [0, 1] (higher is better); `out[i]` belongs to `candidates[i]`. */
export interface Scorer {
  readonly type: string;
  readonly name: string;
  score(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    out: Float64Array,
    ctx: RoutingContext,
  ): void;
}

/** Picks one candidate index given the weighted total scores. */
export interface Picker {
  readonly type: string;
  readonly name: string;
  pick(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    scores: Float64Array,
    ctx: RoutingContext,
  ): number;
}

/** Request lifecycle events that stateful plugins (cursors, indexes) learn from. */
export interface RoutingObserver {
  /** The request was sent to `endpointId`. */
  onRouted?(req: RoutingRequest, endpointId: string): void;
  /** The request left the endpoint (success or failure). */
  onFinished?(req: RoutingRequest, endpointId: string, ok: boolean): void;
}

/** A plugin of any extension point. */
export type RoutingPlugin = Filter | Scorer | Picker;

/** Factory signature every routing plugin registers: `(name, params) → plugin`. */
export type PluginFactory<P extends RoutingPlugin> = (
  name: string,
  params: Readonly<Record<string, unknown>>,
) => P;
