/**
 * The simulator reports each routing decision: every request record (a line of requests.jsonl)
 * carries its route reason, the candidates left after the filters and the prompt tokens the router
 * believed cached on its pick, and the summary's routing_reasons count every routed request once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineProfile } from '../../src/engine-model/types.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { type RequestRecord, Simulation } from '../../src/sim/simulator.js';
import type { TraceRecord } from '../../src/traces/record.js';
import { TOY_PROFILE } from '../helpers/profiles.js';

const toy: EngineProfile = { ...TOY_PROFILE, numKvBlocks: 10_000, maxModelLen: 100_000, coldStartMs: 0 };

describe('simulator routing records', () => {
  it('records route, route_candidates and predicted_cached_tokens; routing_reasons sum to the routed requests', async () => {
    // Trace blocks of 8 tokens. Two replicas that take one request each (maxConcurrency 1).
    const rec = (t: number, inputTokens: number, ids?: number[]): TraceRecord => ({
      arrivalMs: t,
      inputTokens,
      outputTokens: 20,
      ...(ids ? { hashIds: ids, hashBlockTokens: 8 } : {}),
    });
    const records = [
      rec(0, 32, [1, 2, 3, 4]), // idle fleet, nothing cached anywhere
      rec(1000, 32, [1, 2, 3, 9]), // 3 blocks (24 tokens) on the replica that served r0
      rec(2000, 16, [5, 6]),
      rec(3000, 100), // three at once, no prefix signal: one replica each, then none left
      rec(3000, 100),
      rec(3000, 100),
    ];
    const lines: RequestRecord[] = [];
    const summary = await new Simulation({
      pools: [
        { name: 'm', endpoints: ['e0', 'e1'].map((name) => ({ name, profile: toy, maxConcurrency: 1 })) },
      ],
      routing: ROUTING_PRESETS.default!,
      seed: 5,
    }).run(records, (r) => lines.push(JSON.parse(JSON.stringify(r)) as RequestRecord));
    const byId = new Map(lines.map((r) => [r.id, r]));
    const route = (id: string) => {
      const r = byId.get(id)!;
      return [r.status, r.route, r.route_candidates, r.predicted_cached_tokens];
    };
    assert.deepEqual(route('r0'), ['ok', 'least-ttft', 2, 0]);
    assert.deepEqual(route('r1'), ['ok', 'cache-affinity', 2, 24]);
    assert.equal(byId.get('r1')!.endpoint, byId.get('r0')!.endpoint);
    assert.equal(byId.get('r1')!.cached_tokens, 24, 'the engine found what the router predicted');
    assert.deepEqual(route('r2'), ['ok', 'least-ttft', 2, 0]);
    assert.deepEqual(route('r3'), ['ok', 'least-ttft', 2, 0]);
    // The capacity filter leaves one replica; the scorer still names its reason.
    assert.deepEqual(route('r4'), ['ok', 'least-ttft', 1, 0]);
    assert.notEqual(byId.get('r4')!.endpoint, byId.get('r3')!.endpoint);
    // Nothing left: refused before any decision.
    assert.deepEqual(route('r5'), ['rejected', 'none', 0, 0]);
    assert.equal(byId.get('r5')!.reject_reason, 'no_endpoint');

    assert.equal(summary.requests, 6);
    assert.deepEqual(summary.rejected_by_reason, { no_endpoint: 1 });
    assert.deepEqual(summary.routing_reasons, { 'least-ttft': 4, 'cache-affinity': 1 });
    const routed = lines.filter((r) => r.reject_reason !== 'no_endpoint').length;
    const counted = Object.values(summary.routing_reasons).reduce((a, b) => a + b, 0);
    assert.equal(counted, routed);
    assert.equal(counted, summary.requests - summary.rejected_by_reason.no_endpoint!);
    // The records' reasons, tallied, are the summary's.
    const tally: Record<string, number> = {};
    for (const r of lines) if (r.route !== 'none') tally[r.route] = (tally[r.route] ?? 0) + 1;
    assert.deepEqual(tally, summary.routing_reasons);
  });
});
