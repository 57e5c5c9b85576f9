/**
 * @module framework/endpoint
 * EndpointView: the immutable snapshot of one endpoint that routing policies read. Policies never
 * see sockets, pools or clocks; the live collector and the simulator both produce these views.
 */
import { ENGINE_PROFILES } from '../engine-model/profiles.js';
import type { EngineProfile } from '../engine-model/types.js';

/** Circuit-breaker state of an endpoint. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Engine metrics normalised across engine types (vLLM, SGLang, …); absent when not scraped. */
export interface EndpointMetrics {
  /** Requests running in the engine's batch. */
  readonly running: number;
  /** Requests waiting in the engine's own queue. */
  readonly waiting: number;
  /** KV-cache utilisation, 0..1. */
  readonly kvUsage: number;
  /** Clock time (ms) of the scrape these numbers come from. */
  readonly scrapedAtMs: number;
}

/** One endpoint as a routing decision sees it, frozen for the duration of the decision. */
export interface EndpointView {
  /** Unique endpoint name. */
  readonly id: string;
  /** Index of the endpoint in its pool's endpoint list (stable for one config version). */
  readonly index: number;
  /** Pool (client model name) the endpoint serves. */
  readonly pool: string;
  /** Result of the last active health check (true until one fails). */
  readonly healthy: boolean;
  readonly circuit: CircuitState;
  /** Requests this gateway has in flight to the endpoint. */
  readonly inFlight: number;
  /** The endpoint's configured concurrency limit. */
  readonly maxConcurrency: number;
  readonly metrics: EndpointMetrics | null;
  /** What the endpoint is: static facts from the config, shared by every view of it. */
  readonly info: EndpointInfo;
}

/** Static facts about an endpoint, from its config. */
export interface EndpointInfo {
  /**
   * The engine model's constants for this replica (model × GPU), when known: cost-model policies
   * predict step times from it and size the prefix index to its KV cache. Null for provider APIs.
   */
  readonly profile: EngineProfile | null;
  /** Relative share for weighted routing (provider endpoints); default 1. */
  readonly weight: number;
  /** Free-form labels (tier, locality, zone, …) that label filters match. */
  readonly labels: Readonly<Record<string, string>>;
  /** Capacity gates besides `maxConcurrency` (scraped engine metrics, the prefill ledger); absent = none. */
  readonly gate?: EndpointGate;
}

/**
 * Limits beyond `maxConcurrency`: at or above any one of them the endpoint takes nothing new.
 * `maxEngineWaiting` and `maxKvUsage` read the endpoint's state as last scraped and apply only while
 * `EndpointView.metrics` is non-null (scraped, and the last scrape succeeded); `maxPrefilling` reads
 * the router's own ledger (`PoolKnowledge.load`), fresh at every decision, scraped or not.
 */
export interface EndpointGate {
  /** The engine's waiting queue (requests it accepted but has not scheduled); null = no limit. */
  readonly maxEngineWaiting: number | null;
  /** KV-cache usage, 0..1; null = no limit. */
  readonly maxKvUsage: number | null;
  /**
   * Requests this gateway sent the endpoint that are still prefilling (no first token seen yet);
   * absent or null = no limit. A request that is not streamed shows its first token only when it
   * finishes, so it counts as prefilling until then.
   */
  readonly maxPrefilling?: number | null;
}

/** Info for an endpoint with nothing configured beyond its name. */
export const PLAIN_ENDPOINT: EndpointInfo = Object.freeze({
  profile: null,
  weight: 1,
  labels: Object.freeze({}),
});

/** Assumed for endpoints without an engine profile (provider APIs): an 8B model on one H100. */
const FALLBACK_PROFILE: EngineProfile = ENGINE_PROFILES['llama3.1-8b-h100']!;

/** The profile cost-model policies predict an endpoint with: its own, else {@link FALLBACK_PROFILE}. */
export function modelProfile(info: EndpointInfo): EngineProfile {
  return info.profile ?? FALLBACK_PROFILE;
}
