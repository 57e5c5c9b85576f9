/** SLO capacity search: bracketing and bisection over a known attainment curve. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capacitySearch } from '../../src/sim/capacity.js';
import type { SimSummary } from '../../src/sim/simulator.js';

/** A summary whose attainment is 1 up to `limit` and 0.5 above; arrivals at 10 req/s × k. */
const curve = (limit: number) => async (k: number) =>
  ({ slo_attainment: k <= limit ? 1 : 0.5, arrival_rate_rps: 10 * k }) as unknown as SimSummary;

describe('capacity search', () => {
  it('finds the limit from above and from below to within the bisection precision', async () => {
    for (const limit of [3.7, 0.3]) {
      const r = await capacitySearch(curve(limit), { target: 0.99, iterations: 10 });
      assert.ok(r.rate_scale <= limit, `${r.rate_scale} must meet the target`);
      assert.ok(limit - r.rate_scale < limit / 256, `${r.rate_scale} is within 1/256 of ${limit}`);
      assert.equal(r.slo_attainment, 1);
      assert.equal(r.requests_per_s, 10 * r.rate_scale);
      assert.equal(r.probes[0]!.rate_scale, 1, 'starts at the trace’s own rate');
    }
  });

  it('reports 0 when even the lowest rate tried misses the target', async () => {
    const r = await capacitySearch(curve(0), { target: 0.99 });
    assert.equal(r.rate_scale, 0);
    assert.equal(r.requests_per_s, 0);
  });
});
