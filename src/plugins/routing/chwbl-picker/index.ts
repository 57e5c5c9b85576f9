/**
 * @module plugins/routing/chwbl-picker
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, SODA 2018): a request's
 * key picks its endpoint on a hash ring, unless that endpoint already carries more than its share
 * of the load; then the walk goes on clockwise to the first endpoint under the bound.
 */
import { z } from 'zod';
import { AssertionError } from '../../../core/assert.js';
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker, RoutingContext, RoutingRequest } from '../../../framework/routing.js';
import { EndpointRings, prefixKey, stringKey } from '../hash-ring.js';
import { integerIn, numberIn, pluginFactory } from '../params.js';

export const CHWBL_PICKER = 'chwbl-picker';

/** The picker's parameters and their defaults. */
export const CHWBL_PARAMS = z.strictObject({
  /**
   * c: an endpoint takes a request only while its load < ⌈c·(total + 1)/n⌉. The paper's c = 1 + ε
   * with ε = 0.25, HAProxy's hash-balance-factor 125, KubeAI's 125 %.
   */
  loadFactor: numberIn(1).default(1.25),
  /** Points per endpoint on the ring. */
  vnodes: integerIn(1, 10_000).default(100),
  /**
   * Prompt tokens whose prefix blocks form the key when the request has no session id. Default: two
   * of Mooncake's 512-token blocks, the shared system prompt and tool definitions.
   */
  keyTokens: numberIn(1).default(1024),
});

export type ChwblParams = Readonly<z.output<typeof CHWBL_PARAMS>>;

export const CHWBL_DEFAULTS: ChwblParams = Object.freeze(CHWBL_PARAMS.parse({}));

/** Seed of the ring's points and keys (exported for tests that rebuild the ring by hand). */
export const CHWBL_RING_SEED = 0x63687762;

/**
 * Key: the session id, else the prompt's first `keyTokens` of prefix blocks, else the request id.
 * Load: requests the gateway has in flight on the endpoint. With n candidates carrying `total`,
 * the bound is ⌈c·(total + 1)/n⌉ and the candidates' capacity sums to more than `total`, so some
 * candidate is always under it and the walk ends within one turn of the ring.
 */
export class ChwblPicker implements Picker {
  readonly type = CHWBL_PICKER;
  private readonly rings: EndpointRings;

  constructor(
    readonly name: string,
    private readonly p: ChwblParams,
  ) {
    this.rings = new EndpointRings(p.vnodes, [CHWBL_RING_SEED]);
  }

  pick(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    _s: Float64Array,
    ctx: RoutingContext,
  ): number {
    this.rings.prepare(candidates);
    const ring = this.rings.rings[0]!;
    const slot = this.rings.slot;
    let total = 0;
    for (const c of candidates) total += c.inFlight;
    const bound = Math.ceil((this.p.loadFactor * (total + 1)) / candidates.length);
    const pos = ring.next(ring.start(this.key(req)), slot, -1, -1);
    const first = ring.owner(pos);
    for (let s = 0; s < ring.length; s++) {
      const i = slot[ring.owner(pos + s)]!;
      if (i >= 0 && candidates[i]!.inFlight < bound) {
        ctx.reason = candidates[i]!.index === first ? 'hash-ring' : 'bounded-overflow';
        return i;
      }
    }
    throw new AssertionError(`${CHWBL_PICKER}: no candidate under the bound ${bound}`);
  }

  private key(req: RoutingRequest): number {
    if (req.sessionId !== null) return stringKey(req.sessionId);
    const k = prefixKey(req, this.p.keyTokens);
    return k >= 0 ? k : stringKey(req.id);
  }
}

export const createChwblPicker = pluginFactory(
  CHWBL_PICKER,
  CHWBL_PARAMS,
  (name, p) => new ChwblPicker(name, p),
);
