/**
 * The online correction of the engine model (router/model-correction.ts): the fit of observed
 * against predicted times, its bounds, and end to end on a virtual clock — an endpoint whose engine
 * is 1.5× slower than its profile is learnt as such from its requests' token times, and the default
 * policy with the correction on then sends work to the honest endpoint.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getProfile } from '../../src/engine-model/profiles.js';
import { stepTimeMs, stepTimeParts } from '../../src/engine-model/step-time.js';
import {
  MAX_FACTOR,
  ModelCorrection,
  NO_CORRECTION,
  correctedProfile,
} from '../../src/router/model-correction.js';
import { routingSpec, withModelCorrection } from '../../src/router/presets.js';
import { type RequestRecord, Simulation } from '../../src/sim/simulator.js';
import { syntheticTrace } from '../../src/traces/synthetic.js';

const QWEN = getProfile('qwen2.5-7b-h100');
const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected} ± ${tol}`);

/** Feeds `n` observations on slot 0 of an engine whose compute runs `p`× and the rest `d`× the model. */
function feed(c: ModelCorrection, n: number, p: number, d: number): void {
  for (let i = 0; i < n; i++) {
    const compute = [1, 20, 60, 3][i % 4]!;
    const rest = [10, 5, 2, 30][i % 4]!;
    c.observe(0, p * compute + d * rest, compute, rest);
  }
}

describe('model correction: the fit', () => {
  it('starts at 1 and learns a uniform slowdown, or one of the compute-bound constants only', () => {
    const c = new ModelCorrection();
    assert.equal(c.factors(0), NO_CORRECTION);
    feed(c, 600, 1.5, 1.5);
    near(c.factors(0).prefill, 1.5, 0.01, 'prefill');
    near(c.factors(0).decode, 1.5, 0.01, 'decode');
    const d = new ModelCorrection();
    feed(d, 600, 1.5, 1);
    near(d.factors(0).prefill, 1.5, 0.02, 'prefill');
    near(d.factors(0).decode, 1, 0.02, 'decode');
    assert.equal(d.factors(1), NO_CORRECTION, 'other slots untouched');
  });

  it('keeps a part it never observes near 1, clamps, and bounds one outlier', () => {
    const c = new ModelCorrection();
    for (let i = 0; i < 600; i++) c.observe(0, 15, 0, 10); // decode only, 1.5×
    near(c.factors(0).decode, 1.5, 0.01, 'decode');
    near(c.factors(0).prefill, 1, 0.05, 'prefill');
    const slow = new ModelCorrection();
    feed(slow, 600, 3, 3);
    assert.equal(slow.factors(0).prefill, MAX_FACTOR);
    const steady = new ModelCorrection();
    feed(steady, 600, 1, 1);
    steady.observe(0, 1e6, 20, 5); // a stall: counts as 4× its prediction at most
    assert.ok(steady.factors(0).prefill < 1.1 && steady.factors(0).decode < 1.1);
    steady.clear(0);
    assert.equal(steady.factors(0).prefill, 1);
  });

  it('splits a step time into the parts its constants scale (first order)', () => {
    const out = new Float64Array(2);
    const shape = { requests: 9, tokens: 3000, prefillPairs: 2992 * 1496, decodeContext: 8 * 2000 };
    stepTimeParts(QWEN, shape, out);
    near(out[0]! + out[1]!, stepTimeMs(QWEN, shape), 1e-9, 'parts sum to the step');
    const scaled = stepTimeMs(correctedProfile(QWEN, { prefill: 1.1, decode: 0.9 }), shape);
    near(scaled, 1.1 * out[0]! + 0.9 * out[1]!, 0.01 * scaled, 'first order');
  });
});

describe('model correction: a replica 1.5× slower than its profile, on a virtual clock', () => {
  const slow = correctedProfile(QWEN, { prefill: 1.5, decode: 1.5 });

  /** Two replicas believed to be QWEN; `slow` really runs 1.5× slower. Light Poisson load. */
  async function run(on: boolean) {
    const sim = new Simulation({
      pools: [
        {
          name: 'p',
          endpoints: [
            { name: 'honest', profile: QWEN, maxConcurrency: 1 << 30 },
            { name: 'slow', profile: QWEN, engine: slow, maxConcurrency: 1 << 30 },
          ],
        },
      ],
      routing: withModelCorrection(routingSpec('default'), on),
    });
    const records: RequestRecord[] = [];
    const trace = syntheticTrace({
      requests: 600,
      ratePerS: 2,
      inputTokens: { median: 1500, sigma: 0.8, max: 8000 },
      outputTokens: { median: 48, sigma: 0.5, max: 200 },
      seed: 9,
    });
    await sim.run(trace.records, (r) => records.push(r));
    const factors = Object.fromEntries(
      sim.pools[0]!.driver.corrections().map((c) => [c.endpoint, c.factors]),
    );
    const late = records.filter((r) => Number(r.id.slice(1)) >= 300);
    const share = late.filter((r) => r.endpoint === 'honest').length / late.length;
    return { factors, share };
  }

  it('learns ~1.5 for the slow replica and ~1 for the honest one (off: learnt, not applied)', async () => {
    const { factors, share } = await run(false);
    near(factors.slow!.prefill, 1.5, 0.1, 'slow prefill');
    near(factors.slow!.decode, 1.5, 0.1, 'slow decode');
    near(factors.honest!.prefill, 1, 0.1, 'honest prefill');
    near(factors.honest!.decode, 1, 0.1, 'honest decode');
    assert.ok(share < 0.75, `without the correction the honest replica gets ${share} of the late requests`);
  });

  it('with the correction on, routing prefers the honest replica', async () => {
    const { factors, share } = await run(true);
    assert.ok(factors.slow!.prefill > 1.3, `slow prefill ${factors.slow!.prefill}`);
    assert.ok(share > 0.85, `the honest replica gets ${share} of the late requests`);
  });
});
