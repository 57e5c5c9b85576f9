/**
 * Engines that are not the profile the router believes (`SimOptions.mismatch`): every step-time
 * constant of each replica's engine is off by a seeded factor within the bound, the router's views
 * keep the nominal profile, and the online correction brings the cost model's TTFT predictions back
 * to what the engines do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getProfile } from '../../src/engine-model/profiles.js';
import { type BatchShape, stepTimeMs } from '../../src/engine-model/step-time.js';
import { routingSpec, withModelCorrection } from '../../src/router/presets.js';
import { PERTURBED_TERMS, perturbProfile } from '../../src/sim/mismatch.js';
import { type RequestRecord, type SimOptions, Simulation } from '../../src/sim/simulator.js';
import { syntheticTrace } from '../../src/traces/synthetic.js';

const PROFILE = getProfile('llama3-70b-h100-tp4'); // TP4: the collective terms are perturbed too
const QWEN = getProfile('qwen2.5-7b-h100');
const SHAPES: BatchShape[] = [
  { requests: 1, tokens: 8192, prefillPairs: 8192 * 4096, decodeContext: 0 },
  { requests: 1, tokens: 512, prefillPairs: 512 * 256, decodeContext: 0 },
  { requests: 32, tokens: 32, prefillPairs: 0, decodeContext: 32 * 4000 },
  { requests: 8, tokens: 1000, prefillPairs: 992 * 496, decodeContext: 7 * 2000 },
];

function options(profile = QWEN, extra: Partial<SimOptions> = {}): SimOptions {
  return {
    pools: [
      {
        name: 'p',
        endpoints: Array.from({ length: 4 }, (_, i) => ({ name: `r${i}`, profile, maxConcurrency: 1 << 30 })),
      },
    ],
    routing: routingSpec('default'),
    ...extra,
  };
}

describe('mismatched engines', () => {
  it('perturbs every step-time constant within ±scale, per replica, as a function of the seed and the name', () => {
    const m = { scale: 0.3, seed: 5 };
    const a = perturbProfile(PROFILE, 'r0', m);
    for (const term of PERTURBED_TERMS) {
      const k = a[term] / PROFILE[term];
      assert.ok(k >= 0.7 && k <= 1.3, `${term} × ${k}`);
      assert.notEqual(k, 1, term);
    }
    // Everything else is the profile's.
    assert.equal(a.maxNumBatchedTokens, PROFILE.maxNumBatchedTokens);
    assert.equal(a.numKvBlocks, PROFILE.numKvBlocks);
    assert.deepEqual(perturbProfile(PROFILE, 'r0', m), a, 'same seed and name: same engine');
    assert.notDeepEqual(perturbProfile(PROFILE, 'r1', m), a, 'another replica: another draw');
    assert.notDeepEqual(perturbProfile(PROFILE, 'r0', { scale: 0.3, seed: 6 }), a, 'another seed');
    assert.equal(perturbProfile(PROFILE, 'r0', { scale: 0 }), PROFILE);
    assert.throws(() => perturbProfile(PROFILE, 'r0', { scale: 1 }), /\[0, 1\)/);
  });

  it("runs perturbed engines while the router's views keep the nominal profile; a seed is a fleet", async () => {
    const opts = options(QWEN, { mismatch: { scale: 0.3, seed: 2 } });
    const sim = new Simulation(opts);
    const engines = sim.pools[0]!.endpoints;
    const ratios: number[] = [];
    for (const e of engines) {
      assert.equal(e.state.info.profile, QWEN, 'the view carries the nominal profile');
      for (const s of SHAPES) {
        const k = stepTimeMs(e.engine.profile, s) / stepTimeMs(QWEN, s);
        assert.ok(k >= 0.7 && k <= 1.3, `${e.spec.name}: step × ${k}`);
        ratios.push(k);
      }
    }
    assert.ok(new Set(ratios.map((k) => k.toFixed(6))).size > SHAPES.length, 'replicas differ');
    const again = new Simulation(opts).pools[0]!.endpoints;
    assert.deepEqual(
      again.map((e) => e.engine.profile),
      engines.map((e) => e.engine.profile),
    );
    // Without a mismatch the engines are the profile itself.
    for (const e of new Simulation(options()).pools[0]!.endpoints) assert.equal(e.engine.profile, QWEN);
  });

  it('the correction shrinks the error of predicted against observed TTFT', async () => {
    /** Median relative error of the recorded prediction over the second half of a run. */
    async function medianError(seed: number, on: boolean): Promise<number> {
      const records: RequestRecord[] = [];
      const opts = options(QWEN, {
        routing: withModelCorrection(routingSpec('default'), on),
        mismatch: { scale: 0.3, seed },
      });
      const trace = syntheticTrace({
        requests: 800,
        ratePerS: 4,
        inputTokens: { median: 2000, sigma: 1, max: 16_000 },
        outputTokens: { median: 64, sigma: 0.8, max: 512 },
        seed: 3,
      });
      await new Simulation(opts).run(trace.records, (r) => records.push(r));
      // The second half: the correction has had its first few hundred requests to learn from.
      const late = records.filter((r) => r.status === 'ok' && Number(r.id.slice(1)) >= 400);
      const rel = late
        .map((r) => {
          const observed = r.ttft_ms - r.gateway_queue_ms;
          return Math.abs(r.predicted_ttft_ms - observed) / observed;
        })
        .sort((a, b) => a - b);
      return rel[rel.length >> 1]!;
    }
    for (const seed of [1, 2]) {
      const [off, on] = [await medianError(seed, false), await medianError(seed, true)];
      assert.ok(
        on < 0.75 * off,
        `seed ${seed}: median relative error ${on} with the correction, ${off} without`,
      );
    }
  });
});
