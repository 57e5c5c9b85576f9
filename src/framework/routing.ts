/**
 * @module framework/routing
 * The routing extension points: filter → score → pick. Policies are small pure functions over a
 * request's signals and frozen {@link EndpointView}s; they do no I/O, read no clock and draw
 * randomness only from the {@link Rng} the framework passes in.
 */
import type { z } from 'zod';
import type { Rng } from '../core/rng.js';
import type { EngineProfile } from '../engine-model/types.js';
import type { EndpointView } from './endpoint.js';

/** What routing may know about a request: the signals classification extracts before routing. */
export interface RoutingRequest {
  readonly id: string;
  /** Pool (resolved client model name). */
  readonly pool: string;
  /** Rough prompt size in tokens. */
  readonly promptTokensEstimate: number;
  /** Endpoint ids already tried for this request (retries avoid them). */
  readonly excluded: ReadonlySet<string> | null;
  /**
   * Chained hashes of the prompt's full blocks of `prefixBlockTokens` tokens, in order: entry i
   * identifies the first (i+1) blocks. Empty when the prompt has no usable prefix signal.
   */
  readonly prefixHashes: readonly number[];
  /** Tokens per prefix block (an estimate in the live gateway, exact in the simulator). */
  readonly prefixBlockTokens: number;
  /** Conversation/session id sent by the client (multi-turn agents), or null. */
  readonly sessionId: string | null;
  /** Tenant the request is billed to, or null. */
  readonly tenant: string | null;
}

/** A request with no prefix, session or tenant signal (tests, embeddings). */
export function plainRequest(id: string, pool: string, promptTokensEstimate: number): RoutingRequest {
  return {
    id,
    pool,
    promptTokensEstimate,
    excluded: null,
    prefixHashes: [],
    prefixBlockTokens: 1,
    sessionId: null,
    tenant: null,
  };
}

/** What the gateway has sent to one endpoint and not yet seen finish (kept by the router). */
export interface EndpointLoad {
  /** Requests routed here and not finished. */
  readonly requests: number;
  /** Of those, requests still waiting for their first token. */
  readonly prefilling: number;
  /** Prompt tokens of the prefilling requests that the endpoint must compute (predicted cache hits excluded). */
  readonly prefillTokens: number;
  /** Σ over the prefilling requests of n·(c + n/2): the query-key pairs their prefill attention costs. */
  readonly prefillPairs: number;
  /** Tokens the endpoint holds in KV for these requests: prompts plus expected output so far. */
  readonly kvTokens: number;
  /** Expected decode tokens still to generate for these requests. */
  readonly decodeTokens: number;
}

/**
 * What the router knows about its pool beyond the frozen views, indexed by
 * {@link EndpointView.index}. Derived values are computed at most once per decision.
 */
export interface PoolKnowledge {
  /** Endpoints in the pool (indexes are 0..size-1). */
  readonly size: number;
  /** Prompt tokens of the current request the endpoint is believed to hold in its prefix cache. */
  cachedPrefixTokens(index: number): number;
  /** The gateway's own outstanding work on the endpoint. */
  load(index: number): EndpointLoad;
  /** Prompt tokens the endpoint is believed to hold in its prefix cache in all (any prompt). */
  cachedTokensTotal(index: number): number;
  /** Mean output tokens of recently finished requests in this pool (a decode-length estimate). */
  readonly meanOutputTokens: number;
  /**
   * The engine model's correction on the endpoint, learnt from observed latencies
   * (router/model-correction.ts); absent: predictions are taken as they are.
   */
  correction?(index: number): ModelFactors;
  /** `base`, the endpoint's profile, with its {@link correction} applied. */
  correctedProfile?(index: number, base: EngineProfile): EngineProfile;
  /** A cost-model scorer's predicted TTFT (ms) on the endpoint just picked, for decision records. */
  notePrediction?(ttftMs: number): void;
}

/** How much slower (> 1) or faster than its profile an endpoint's engine runs (1 = as the profile says). */
export interface ModelFactors {
  /** Multiplies the compute-bound constants, GEMM per token and prefill attention: prefill time. */
  readonly prefill: number;
  /** Multiplies the others, weights streaming, overheads, decode attention, TP collectives: decode time. */
  readonly decode: number;
}

/** Per-decision inputs shared by all plugins. */
export interface RoutingContext {
  readonly rng: Rng;
  readonly pool: PoolKnowledge;
  /**
   * Why the decision came out as it did, in a word or two (`prefix-hit`, `overflow`, …). Plugins set
   * it; the last writer wins. Decision records and the `routing_decisions_total` metric use it.
   */
  reason: string;
}

/** Removes candidates that must not serve the request. Returns a subset (may be the same array). */
export interface Filter extends RoutingObserver {
  readonly type: string;
  readonly name: string;
  filter(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    ctx: RoutingContext,
  ): readonly EndpointView[];
}

/** Scores candidates in [0, 1] (higher is better); `out[i]` belongs to `candidates[i]`. */
export interface Scorer extends RoutingObserver {
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
export interface Picker extends RoutingObserver {
  readonly type: string;
  readonly name: string;
  pick(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    scores: Float64Array,
    ctx: RoutingContext,
  ): number;
}

/** How a request left its endpoint. */
export interface RoutingOutcome {
  readonly ok: boolean;
  /** Prompt tokens the engine reported as served from its prefix cache, when it reports them. */
  readonly cachedTokens: number | null;
  /** Output tokens generated, when known. */
  readonly outputTokens: number | null;
}

/** Request lifecycle events that stateful plugins (cursors, affinity tables) learn from. */
export interface RoutingObserver {
  /** The request was sent to the endpoint at pool index `index`. */
  onRouted?(req: RoutingRequest, index: number, ctx: RoutingContext): void;
  /** The request left the endpoint (success or failure). */
  onFinished?(req: RoutingRequest, index: number, outcome: RoutingOutcome): void;
}

/** A plugin of any extension point. */
export type RoutingPlugin = Filter | Scorer | Picker;

/**
 * What every routing plugin registers: `(name, params) → plugin`, which validates `params` with
 * the plugin's schema first, and that schema, so a config can be checked without building anything.
 */
export interface PluginFactory<P extends RoutingPlugin> {
  (name: string, params: Readonly<Record<string, unknown>>): P;
  /** The plugin's parameters: a strict schema holding their defaults. */
  readonly params: z.ZodType<object>;
}
