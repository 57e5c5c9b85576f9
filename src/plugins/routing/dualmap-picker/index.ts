/**
 * @module plugins/routing/dualmap-picker
 * DualMap (Yuan et al., ICLR 2026, arXiv 2602.06502): two independent hash rings map a request's
 * prefix to two candidate endpoints; the one holding more of the prompt wins (cache affinity) unless
 * its predicted TTFT eats half the SLO, then the faster of the two (power of two choices); when both
 * would break the SLO the prefix is a hotspot and its next ring successors join the choice.
 */
import { z } from 'zod';
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker, RoutingContext, RoutingRequest } from '../../../framework/routing.js';
import { prefillPairs, stepTimeMs } from '../../../engine-model/step-time.js';
import type { EngineProfile } from '../../../engine-model/types.js';
import { EndpointRings, prefixKey, stringKey } from '../hash-ring.js';
import { integerIn, numberIn, pluginFactory } from '../params.js';

export const DUALMAP_PICKER = 'dualmap-picker';

/** The picker's parameters, with DualMap's published defaults (ASISys/DualMap `start_up.py` and its scheduler). */
export const DUALMAP_PARAMS = z.strictObject({
  /** The TTFT objective (ms); a prefix is a hotspot when both candidates would exceed it. */
  ttftSloMs: numberIn(1).default(5000), // TTFT_SLO = 5 s
  /** Cache affinity holds while the preferred candidate's predicted TTFT ≤ this × the SLO. */
  affinitySloFraction: numberIn(0, 1).default(0.5), // dh_first_balance_ttft_thredhold = (TTFT_SLO / 2) / tpct
  /** Prompt tokens whose prefix blocks form the key. */
  keyTokens: numberIn(1).default(1024), // hash_session_id: the first two 512-token Mooncake blocks
  /** Points per endpoint on each ring. */
  vnodes: integerIn(1, 10_000).default(160), // uhashring's default ring: 160 points per node
  /** Prefill time per uncached token on endpoints without an engine profile (ms). */
  prefillMsPerToken: numberIn(0).default(0.127), // PREFILL_TPOT = 0.000127 s per token
});

export type DualMapParams = Readonly<z.output<typeof DUALMAP_PARAMS>>;

export const DUALMAP_DEFAULTS: DualMapParams = Object.freeze(DUALMAP_PARAMS.parse({}));

/** Two independent rings: different seeds place both the endpoints and the keys differently. */
export const DUALMAP_RING_SEEDS = [0x64756131, 0x64756132] as const;

/**
 * Predicted TTFT on a candidate = (its queued uncached prefill tokens + this prompt's uncached
 * tokens) × prefill time per token, DualMap's estimate. Per-token time comes from the endpoint's
 * engine profile: one step at a full `max_num_batched_tokens` budget, divided by the budget.
 * State: the rings (rebuilt only when an unseen endpoint id appears) and per-profile step costs.
 */
export class DualMapPicker implements Picker {
  readonly type = DUALMAP_PICKER;
  private readonly rings: EndpointRings;
  private readonly msPerToken = new Map<EngineProfile, number>();

  constructor(
    readonly name: string,
    private readonly p: DualMapParams,
  ) {
    this.rings = new EndpointRings(p.vnodes, DUALMAP_RING_SEEDS);
  }

  pick(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    _s: Float64Array,
    ctx: RoutingContext,
  ): number {
    if (candidates.length === 1) return 0;
    this.rings.prepare(candidates);
    const ring1 = this.rings.rings[0]!;
    const ring2 = this.rings.rings[1]!;
    const slot = this.rings.slot;
    const pk = prefixKey(req, this.p.keyTokens);
    const key = pk >= 0 ? pk : stringKey(req.sessionId ?? req.id);
    const p1 = ring1.next(ring1.start(key), slot, -1, -1);
    const owner1 = ring1.owner(p1);
    const p2 = ring2.next(ring2.start(key), slot, owner1, -1);
    const owner2 = ring2.owner(p2);
    const a = slot[owner1]!;
    const b = slot[owner2]!;
    const ca = ctx.pool.cachedPrefixTokens(owner1);
    const cb = ctx.pool.cachedPrefixTokens(owner2);
    const ta = this.ttftMs(req, candidates[a]!, ctx);
    const tb = this.ttftMs(req, candidates[b]!, ctx);
    const preferred = ca !== cb ? (ca > cb ? a : b) : lighter(candidates, a, b, 0, ctx);
    const tPreferred = preferred === a ? ta : tb;
    if (tPreferred <= this.p.affinitySloFraction * this.p.ttftSloMs) {
      ctx.reason = ca !== cb ? 'cache-affinity' : 'load-balance';
      return preferred;
    }
    const faster = lighter(candidates, a, b, ta - tb, ctx);
    const tFaster = Math.min(ta, tb);
    ctx.reason = 'slo-fallback';
    if (tFaster <= this.p.ttftSloMs) return faster;
    // Both candidates would break the SLO: spread the hot prefix to the endpoint each ring would
    // give it next, so its overflow still lands on the same few endpoints and shares their cache.
    const s1 = ring1.next(p1 + 1, slot, owner1, owner2);
    if (s1 < 0) return faster; // no third candidate
    const i1 = slot[ring1.owner(s1)]!;
    const i2 = slot[ring2.owner(ring2.next(p2 + 1, slot, owner1, owner2))]!;
    const t1 = this.ttftMs(req, candidates[i1]!, ctx);
    const t2 = i2 === i1 ? t1 : this.ttftMs(req, candidates[i2]!, ctx);
    if (Math.min(t1, t2) >= tFaster) return faster;
    ctx.reason = 'hotspot';
    return t2 < t1 ? i2 : i1;
  }

  private ttftMs(req: RoutingRequest, v: EndpointView, ctx: RoutingContext): number {
    const uncached = Math.max(0, req.promptTokensEstimate - ctx.pool.cachedPrefixTokens(v.index));
    return (ctx.pool.load(v.index).prefillTokens + uncached) * this.prefillMsPerToken(v.info.profile);
  }

  private prefillMsPerToken(p: EngineProfile | null): number {
    if (p === null) return this.p.prefillMsPerToken;
    let ms = this.msPerToken.get(p);
    if (ms === undefined) {
      const n = p.maxNumBatchedTokens;
      ms = stepTimeMs(p, { requests: 1, tokens: n, prefillPairs: prefillPairs(n, 0), decodeContext: 0 }) / n;
      this.msPerToken.set(p, ms);
    }
    return ms;
  }
}

/**
 * Of candidates `a` and `b`, `a` when `d` < 0, `b` when `d` > 0; on a tie the one whose routed
 * requests hold fewer KV tokens (DualMap compares running requests' KV blocks), then a seeded coin.
 */
function lighter(
  candidates: readonly EndpointView[],
  a: number,
  b: number,
  d: number,
  ctx: RoutingContext,
): number {
  if (d !== 0) return d < 0 ? a : b;
  const kv = ctx.pool.load(candidates[a]!.index).kvTokens - ctx.pool.load(candidates[b]!.index).kvTokens;
  if (kv !== 0) return kv < 0 ? a : b;
  return ctx.rng.next() < 0.5 ? a : b;
}

export const createDualMapPicker = pluginFactory(
  DUALMAP_PICKER,
  DUALMAP_PARAMS,
  (name, p) => new DualMapPicker(name, p),
);
