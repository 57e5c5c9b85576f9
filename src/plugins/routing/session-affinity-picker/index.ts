/**
 * @module plugins/routing/session-affinity-picker
 * Session affinity with overflow: a session's requests go to the endpoint that served its last
 * turn (which holds its KV cache) until that endpoint is overloaded; then the session moves.
 */
import { z } from 'zod';
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker, RoutingContext, RoutingRequest } from '../../../framework/routing.js';
import { integerIn, numberIn, pluginFactory } from '../params.js';

export const SESSION_AFFINITY_PICKER = 'session-affinity-picker';

/**
 * When a session sticks, and how many sessions are remembered. Defaults are ours (see README):
 * headroom under the concurrency limit, a few prefill chunks queued.
 */
export const SESSION_AFFINITY_PARAMS = z.strictObject({
  /** Sessions remembered; the least recently routed is forgotten first. */
  maxSessions: integerIn(1).default(100_000),
  /** Sticky while in flight < this × maxConcurrency. */
  maxInFlightRatio: numberIn(0, 1).default(0.9),
  /**
   * Sticky while the home endpoint's queued uncached prefill tokens ≤ this. Default: four full
   * chunks at vLLM's max_num_batched_tokens of 8192, a few steps of prefill queued ahead.
   */
  maxPrefillTokens: numberIn(0).default(8192 * 4),
});

export type SessionAffinityParams = Readonly<z.output<typeof SESSION_AFFINITY_PARAMS>>;

export const SESSION_AFFINITY_DEFAULTS: SessionAffinityParams = Object.freeze(
  SESSION_AFFINITY_PARAMS.parse({}),
);

/**
 * State: sessionId → pool index of the endpoint its last request was routed to, learned in
 * `onRouted`. A Map iterates in insertion order, so deleting and re-inserting on every routed
 * request keeps it in least-recently-routed order and the oldest entry is the first key:
 *
 *     oldest ──► [s7 → 2] [s3 → 0] … [s9 → 5] ◄── newest (just routed)
 *
 * Pool indexes are stable for the plugin's life (one Router per pool and config version).
 */
export class SessionAffinityPicker implements Picker {
  readonly type = SESSION_AFFINITY_PICKER;
  private readonly home = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly p: SessionAffinityParams,
  ) {}

  /** Sessions currently remembered (bounded by `maxSessions`). */
  get sessions(): number {
    return this.home.size;
  }

  pick(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    _s: Float64Array,
    ctx: RoutingContext,
  ): number {
    const session = req.sessionId;
    if (session === null) {
      ctx.reason = 'no-session';
      return leastLoaded(candidates, ctx, -1);
    }
    const home = this.home.get(session);
    if (home === undefined) {
      ctx.reason = 'new-session';
      return leastLoaded(candidates, ctx, -1);
    }
    let at = -1;
    for (let i = 0; i < candidates.length; i++) if (candidates[i]!.index === home) at = i;
    // An overloaded home with nowhere else to go still beats failing the request.
    if (at !== -1 && (candidates.length === 1 || !this.overloaded(candidates[at]!, ctx))) {
      ctx.reason = 'sticky';
      return at;
    }
    ctx.reason = 'overflow';
    return leastLoaded(candidates, ctx, at);
  }

  onRouted(req: RoutingRequest, index: number): void {
    const session = req.sessionId;
    if (session === null) return;
    this.home.delete(session);
    this.home.set(session, index);
    if (this.home.size > this.p.maxSessions) this.home.delete(this.home.keys().next().value!);
  }

  private overloaded(ep: EndpointView, ctx: RoutingContext): boolean {
    return (
      ep.inFlight >= this.p.maxInFlightRatio * ep.maxConcurrency ||
      ctx.pool.load(ep.index).prefillTokens > this.p.maxPrefillTokens
    );
  }
}

/**
 * Fewest in flight, then fewest queued prefill tokens, skipping position `skip` (the overloaded
 * home: an overflow must leave it); full ties are broken uniformly by reservoir sampling.
 */
function leastLoaded(candidates: readonly EndpointView[], ctx: RoutingContext, skip: number): number {
  let best = -1;
  let bestPrefill = 0;
  let ties = 0;
  for (let i = 0; i < candidates.length; i++) {
    if (i === skip) continue;
    const c = candidates[i]!;
    const prefill = ctx.pool.load(c.index).prefillTokens;
    const d = best === -1 ? -1 : c.inFlight - candidates[best]!.inFlight || prefill - bestPrefill;
    if (d < 0) {
      best = i;
      bestPrefill = prefill;
      ties = 1;
    } else if (d === 0) {
      ties++;
      if (ctx.rng.next() * ties < 1) best = i;
    }
  }
  return best;
}

export const createSessionAffinityPicker = pluginFactory(
  SESSION_AFFINITY_PICKER,
  SESSION_AFFINITY_PARAMS,
  (name, p) => new SessionAffinityPicker(name, p),
);
