/**
 * @module plugins/routing/p2c-picker
 * Power of two choices: two distinct candidates drawn at random, the less loaded one wins.
 */
import { z } from 'zod';
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker, RoutingContext } from '../../../framework/routing.js';
import { oneOf, pluginFactory } from '../params.js';

export const P2C_PICKER = 'p2c-picker';

/** What "less loaded" compares: requests in flight, or outstanding token work. */
export type P2cLoad = 'requests' | 'work';

/**
 * Draws two distinct candidates uniformly with the seeded Rng and returns the one with the lower
 * load, so it never takes the worse of its pair yet needs no global scan, and gateways with stale
 * or partial views do not all herd onto one "least loaded" endpoint (Mitzenmacher 2001).
 */
export class P2cPicker implements Picker {
  readonly type = P2C_PICKER;
  constructor(
    readonly name: string,
    private readonly load: P2cLoad,
  ) {}

  pick(
    _req: unknown,
    candidates: readonly EndpointView[],
    _scores: Float64Array,
    ctx: RoutingContext,
  ): number {
    const n = candidates.length;
    if (n === 1) return 0;
    const a = Math.floor(ctx.rng.next() * n);
    let b = Math.floor(ctx.rng.next() * (n - 1));
    if (b >= a) b++; // uniform over the n − 1 others
    ctx.reason = 'p2c';
    return this.compare(candidates[b]!, candidates[a]!, ctx) < 0 ? b : a;
  }

  /** Negative when `x` is less loaded than `y`; the other measure breaks a tie. */
  private compare(x: EndpointView, y: EndpointView, ctx: RoutingContext): number {
    const lx = ctx.pool.load(x.index);
    const ly = ctx.pool.load(y.index);
    const workX = lx.prefillTokens + (this.load === 'work' ? lx.decodeTokens : 0);
    const workY = ly.prefillTokens + (this.load === 'work' ? ly.decodeTokens : 0);
    if (this.load === 'requests') return x.inFlight - y.inFlight || workX - workY;
    return workX - workY || x.inFlight - y.inFlight;
  }
}

/** `load`: what "less loaded" compares (see {@link P2cLoad}). */
export const P2C_PARAMS = z.strictObject({ load: oneOf(['requests', 'work']).default('requests') });

export const createP2cPicker = pluginFactory(
  P2C_PICKER,
  P2C_PARAMS,
  (name, p) => new P2cPicker(name, p.load),
);
