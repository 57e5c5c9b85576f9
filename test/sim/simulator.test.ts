/**
 * The simulator against outcomes computed by hand or by queueing theory. The toy profile makes step
 * times exact: W = 0 and no attention terms, so a step of N tokens takes 1 ms + 0.01 ms·N.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineProfile } from '../../src/engine-model/types.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { type RequestRecord, type SimOptions, Simulation, idleTtftMs } from '../../src/sim/simulator.js';
import type { TraceRecord } from '../../src/traces/record.js';
import { TOY_PROFILE } from '../helpers/profiles.js';
import { syntheticTrace } from '../../src/traces/synthetic.js';

const toy: EngineProfile = {
  ...TOY_PROFILE,
  numKvBlocks: 10_000,
  maxModelLen: 100_000,
  coldStartMs: 0,
  costPerHourUsd: 3.6,
};

const close = (actual: number, expected: number, what: string, tol = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected}`);

function options(replicas: number, extra: Partial<SimOptions> = {}, profile = toy): SimOptions {
  return {
    pools: [
      {
        name: 'm',
        endpoints: Array.from({ length: replicas }, (_, i) => ({
          name: `e${i}`,
          profile,
          maxConcurrency: 1000,
        })),
      },
    ],
    routing: ROUTING_PRESETS['least-outstanding']!,
    ...extra,
  };
}

async function run(opts: SimOptions, records: Iterable<TraceRecord> | AsyncIterable<TraceRecord>) {
  const out: RequestRecord[] = [];
  const summary = await new Simulation(opts).run(records, (r) => out.push(r));
  return { summary, out };
}

describe('simulator', () => {
  it('one engine, one request at a time: every latency equals the formula exactly', async () => {
    // Arrivals 1 s apart, each finished long before the next: no queueing, no batching.
    const records = [0, 1000, 2000].map((t) => ({ arrivalMs: t, inputTokens: 100, outputTokens: 5 }));
    const { summary, out } = await run(options(1), records);
    assert.equal(summary.completed, 3);
    for (const r of out) {
      close(r.queue_ms, 0, 'queue');
      close(r.ttft_ms, 1.64 + 1.36, 'TTFT: chunks of 64 and 36 tokens');
      close(r.e2e_ms, 3 + 4 * 1.01, 'E2E: then 4 one-token decode steps');
      close(r.tpot_ms, 1.01, 'TPOT');
    }
    close(idleTtftMs(toy, 100), 3, 'idle TTFT helper');
    assert.equal(summary.slo_attainment, 1);
    close(summary.duration_s, (2000 + 7.04) / 1000, 'span from first arrival to last finish');
    close(summary.cost_usd, (3.6 / 3600) * summary.duration_s, 'cost');
  });

  it("Little's law holds on the output: mean in system = throughput × mean E2E", async () => {
    const trace = syntheticTrace({
      requests: 3000,
      ratePerS: 150,
      inputTokens: { median: 200, sigma: 0.8, max: 4000 },
      outputTokens: { median: 40, sigma: 0.7, max: 400 },
      seed: 7,
    });
    const { summary } = await run(options(2), trace.records);
    const little = summary.throughput_rps * (summary.e2e_ms.mean / 1000);
    assert.ok(summary.mean_in_system > 1, 'a loaded system');
    assert.ok(
      Math.abs(summary.mean_in_system - little) / little < 0.01,
      `L = ${summary.mean_in_system}, λW = ${little}`,
    );
  });

  it('a constructed trace with known shared prefixes gives exactly the expected cache hits', async () => {
    // Trace blocks of 8 tokens (2 engine blocks each). b shares a's first 3 ids (24 tokens);
    // c shares a's first id only (8 tokens); d shares nothing.
    const rec = (t: number, ids: number[]): TraceRecord => ({
      arrivalMs: t,
      inputTokens: ids.length * 8,
      outputTokens: 1,
      hashIds: ids,
      hashBlockTokens: 8,
    });
    const records = [rec(0, [1, 2, 3, 4]), rec(100, [1, 2, 3, 9, 10]), rec(200, [1, 7]), rec(300, [5, 6])];
    const { summary, out } = await run(options(1), records);
    assert.deepEqual(
      out.map((r) => r.cached_tokens),
      [0, 24, 8, 0],
    );
    close(summary.prefix_hit_rate!, 32 / (32 + 40 + 16 + 16), 'hit rate over prompt tokens');
  });

  it('multi-turn sessions: each turn finds exactly the previous turn’s prompt in the cache', async () => {
    const trace = syntheticTrace({
      requests: 3,
      ratePerS: 0.001,
      inputTokens: 64,
      outputTokens: 16,
      sessions: { turns: 3, thinkMs: 1000 },
    });
    const records: TraceRecord[] = [];
    for await (const r of trace.records) records.push(r);
    assert.deepEqual(
      records.map((r) => [r.session, r.inputTokens]),
      [
        ['s0', 64],
        ['s0', 64 + 16 + 64],
        ['s0', 144 + 16 + 64],
      ],
    );
    const { out } = await run(options(1), records);
    assert.deepEqual(
      out.map((r) => r.cached_tokens),
      [0, 64, 144],
    );
  });

  it('a replica added mid-run serves only after its cold start, and counts from its start', async () => {
    const cold = { ...toy, coldStartMs: 500 };
    const opts: SimOptions = {
      pools: [
        {
          name: 'm',
          endpoints: [
            { name: 'e0', profile: cold, maxConcurrency: 100 },
            { name: 'e1', profile: cold, maxConcurrency: 100, startAtMs: 1000 },
          ],
        },
      ],
      routing: ROUTING_PRESETS['round-robin']!,
    };
    // One short request (8 tokens in, 1 out: 1.08 ms) every 100 ms for 3 s.
    const records = Array.from({ length: 30 }, (_, i) => ({
      arrivalMs: i * 100,
      inputTokens: 8,
      outputTokens: 1,
    }));
    const { summary, out } = await run(opts, records);
    const byArrival = [...out].sort((a, b) => a.arrival_ms - b.arrival_ms);
    assert.ok(
      byArrival.filter((r) => r.arrival_ms < 1500).every((r) => r.endpoint === 'e0'),
      'nothing reaches e1 before 1,000 + 500 ms',
    );
    assert.deepEqual(
      byArrival.filter((r) => r.arrival_ms >= 1500).map((r) => r.endpoint),
      ['e1', 'e0', 'e1', 'e0', 'e1', 'e0', 'e1', 'e0', 'e1', 'e0', 'e1', 'e0', 'e1', 'e0', 'e1'],
    );
    assert.equal(summary.cold_starts, 1);
    const end = 2900 + 1.08;
    close(summary.replica_seconds, (end + (end - 1000)) / 1000, 'e0 for the whole run, e1 from its start');
    close(summary.cost_usd, (3.6 / 3600) * summary.replica_seconds, 'cost follows replica-seconds');
  });

  it('a trace without block ids reports no hit rate and no hits', async () => {
    const records = [0, 100].map((t) => ({ arrivalMs: t, inputTokens: 64, outputTokens: 1 }));
    const { summary, out } = await run(options(1), records);
    assert.equal(summary.prefix_hit_rate, null);
    assert.deepEqual(
      out.map((r) => r.cached_tokens),
      [0, 0],
    );
  });

  it('the same seed, trace and options give identical output', async () => {
    const once = async () => {
      const trace = syntheticTrace({
        requests: 500,
        ratePerS: 300,
        cv: 2,
        inputTokens: { median: 300, sigma: 1, max: 3000 },
        outputTokens: { median: 30, sigma: 1, max: 300 },
        prefix: { groups: 5, sharedTokens: 128 },
        seed: 3,
      });
      const { summary, out } = await run(options(3, { scrapeIntervalMs: 50, seed: 9 }), trace.records);
      return JSON.stringify({ summary, out });
    };
    assert.equal(await once(), await once());
  });

  it('queueing follows M/D/1 when the engine serves one request at a time', async (t) => {
    // maxNumSeqs 1 and identical requests make the replica a single deterministic server:
    // service time S = prefill 1 + 0.01·50 = 1.5 ms, then 9 decode steps of 1.01 ms = 10.59 ms.
    // M/D/1 mean wait (Pollaczek–Khinchine): Wq = ρ·S / (2(1 − ρ)).
    const server = { ...toy, maxNumSeqs: 1 };
    const S = 1.5 + 9 * 1.01;
    for (const rho of [0.05, 0.5, 0.8]) {
      const trace = syntheticTrace({
        requests: 40_000,
        ratePerS: (rho / S) * 1000,
        inputTokens: 50,
        outputTokens: 10,
        seed: 11,
      });
      const { summary } = await run(options(1, {}, server), trace.records);
      const expected = (rho * S) / (2 * (1 - rho));
      const measured = summary.queue_ms.mean;
      const line = `ρ = ${rho}: mean queueing ${measured.toFixed(3)} ms, M/D/1 says ${expected.toFixed(3)} ms`;
      t.diagnostic(line); // shown by `npm test`: docs/simulator.md quotes these
      assert.ok(Math.abs(measured - expected) <= 0.08 * expected + 0.05, line);
    }
  });

  it('routes with the live gateway’s router: round-robin alternates replicas exactly', async () => {
    const records = Array.from({ length: 6 }, (_, i) => ({
      arrivalMs: i * 1000,
      inputTokens: 8,
      outputTokens: 1,
    }));
    const { out } = await run(options(3, { routing: ROUTING_PRESETS['round-robin']! }), records);
    assert.deepEqual(
      out.map((r) => r.endpoint),
      ['e0', 'e1', 'e2', 'e0', 'e1', 'e2'],
    );
  });

  it('refuses what the endpoints cannot take, and accounts each request once', async () => {
    const opts: SimOptions = {
      pools: [{ name: 'm', endpoints: [{ name: 'e0', profile: toy, maxConcurrency: 2 }] }],
      routing: ROUTING_PRESETS['least-outstanding']!,
    };
    const records = [0, 0, 0, 0].map((t) => ({ arrivalMs: t, inputTokens: 40, outputTokens: 50 }));
    const { summary, out } = await run(opts, records);
    assert.equal(summary.completed, 2);
    assert.equal(summary.rejected, 2);
    assert.equal(out.length, 4);
    assert.equal(new Set(out.map((r) => r.id)).size, 4);
    assert.deepEqual(
      out.filter((r) => r.status === 'rejected').map((r) => r.reject_reason),
      ['no_endpoint', 'no_endpoint'],
    );
  });
});
