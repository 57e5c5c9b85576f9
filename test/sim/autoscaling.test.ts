/**
 * Autoscaled pools in the simulator, against outcomes computed by hand. The toy profile makes step
 * times exact (a step of N tokens takes 1 ms + 0.01 ms·N) and its cold start is 5 s, so every
 * start, wait, drain and replica-second below follows from the timeline in each test's comment.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AutoscalerSpec } from '../../src/autoscaler/controller.js';
import { createPolicy } from '../../src/autoscaler/policies/index.js';
import type { ScalingContext, ScalingPolicy } from '../../src/autoscaler/types.js';
import type { EngineProfile } from '../../src/engine-model/types.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { type RequestRecord, type SimScalingSpec, Simulation } from '../../src/sim/simulator.js';
import type { TraceRecord } from '../../src/traces/record.js';
import { TOY_PROFILE } from '../helpers/profiles.js';

const toy: EngineProfile = {
  ...TOY_PROFILE,
  numKvBlocks: 10_000,
  maxModelLen: 100_000,
  coldStartMs: 5000,
  costPerHourUsd: 3.6,
};

const close = (actual: number, expected: number, what: string, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected}`);

function spec(extra: Partial<AutoscalerSpec> = {}): AutoscalerSpec {
  return {
    minReplicas: 0,
    maxReplicas: 2,
    catalog: [{ name: 'toy', profile: 'toy', capacity: 1, onDemandUsdPerHour: 3.6 }],
    replicaRps: 1,
    coldStartMs: toy.coldStartMs,
    slo: { ttftMs: 1000, tpotMs: 100, quantile: 0.9 },
    ...extra,
  };
}

async function run(scaling: Omit<SimScalingSpec, 'profiles'>, records: TraceRecord[]) {
  const out: RequestRecord[] = [];
  const sim = new Simulation({
    pools: [{ name: 'm', endpoints: [], scaling: { ...scaling, profiles: { toy } } }],
    routing: ROUTING_PRESETS['least-outstanding']!,
  });
  const summary = await sim.run(records, (r) => out.push(r));
  out.sort((a, b) => a.arrival_ms - b.arrival_ms);
  return { summary, out };
}

/** A test fixture policy: the desired count is a function of time, decided every second. */
function scripted(desired: (nowMs: number) => number): ScalingPolicy {
  return {
    name: 'scripted',
    intervalMs: 1000,
    decide: (ctx: ScalingContext) => ({ desired: desired(ctx.nowMs), reason: 'script' }),
  };
}

// A request of 100 prompt tokens (chunks of 64 and 36: 3 ms to its first token) and 5 output
// tokens (4 decode steps of 1.01 ms): 7.04 ms on an idle replica.
const SHORT = { inputTokens: 100, outputTokens: 5 };
// 8 000 output tokens: first token at 3 ms, then 7 999 steps of 1.01 ms, done after 8 081.99 ms.
const LONG = { inputTokens: 100, outputTokens: 8000 };

describe('autoscaled pools in the simulator', () => {
  it('a request at zero wakes the pool and waits exactly one cold start; the policy then adds a replica', async () => {
    // t=0: target 0. t=1 s: a request finds no replica → wake → replica A starts, ready at 6 s, the
    // request runs 6 000 → 6 007.04. t=10 s: static asks for 2 → B starts (ready 15 s).
    // t=20 s: the second request runs at once, 20 000 → 20 007.04, the end of the run.
    const { summary, out } = await run(
      { policy: createPolicy('static', { replicas: 2 }), autoscaler: spec() },
      [
        { arrivalMs: 1000, ...SHORT },
        { arrivalMs: 20_000, ...SHORT },
      ],
    );
    assert.equal(summary.completed, 2);
    close(out[0]!.gateway_queue_ms, 5000, 'first request waits the cold start');
    close(out[0]!.ttft_ms, 5003, 'then its own 3 ms');
    close(out[1]!.gateway_queue_ms, 0, 'second request finds a ready replica');
    assert.equal(summary.cold_starts, 2);
    const a = summary.autoscaling!;
    assert.equal(a.cold_start_waits, 1);
    close(a.cold_start_wait_ms.max, 5000, 'cold-start wait', 1e-6 * 5000 + 60); // log-histogram bin
    assert.equal(a.scale_changes, 2, 'wake 0 → 1, static 1 → 2');
    close(summary.replica_seconds, 19.00704 + 10.00704, 'A from 1 s, B from 10 s, to 20.00704 s');
    close(summary.cost_usd, 29.01408 * 0.001, 'at $3.6/h = $0.001/s');
  });

  it('scaling down drains: a busy replica stops when its request ends, an idle one at once; new work goes elsewhere', async () => {
    // Two warm replicas. t=0.1 s: the long request starts on one (done at 8 181.99 ms). t=5 s:
    // target 0 → the idle replica stops now, the busy one drains. t=6 s: target 1 → C starts (ready
    // 11 s). t=6 s: a short request must wait for C (not run on the draining replica): 11 000 → 11 007.04.
    const policy = scripted((t) => (t < 5000 ? 2 : t < 6000 ? 0 : 1));
    const { summary, out } = await run({ policy, autoscaler: spec(), initialReplicas: 2 }, [
      { arrivalMs: 100, ...LONG },
      { arrivalMs: 6000, ...SHORT },
    ]);
    assert.equal(summary.completed, 2);
    close(out[0]!.e2e_ms, 3 + 7999 * 1.01, 'the long request finishes on its draining replica');
    close(out[1]!.gateway_queue_ms, 5000, 'the new request waits for the new replica');
    assert.notEqual(out[1]!.endpoint, out[0]!.endpoint);
    assert.equal(summary.cold_starts, 1, 'warm initial replicas are not cold starts');
    close(
      summary.replica_seconds,
      (5000 + 8181.99 + 5007.04) / 1000,
      'idle 0–5 s, busy 0–8.18199 s, C 6–11.00704 s',
    );
  });

  it('a spot preemption notice starts the replacement; what still runs when the notice ends is lost', async () => {
    // One warm spot replica whose notice comes at 2 s and which is lost at 3 s. Its long request
    // (from 0.1 s) is still running at 3 s: rejected as preempted. The replacement starts at the
    // notice (2 s) and is ready at 7 s; a short request at 4 s waits for it (3 000 ms).
    let calls = 0;
    const spot = {
      preemption: () => (calls++ === 0 ? { noticeMs: 2000, stopMs: 3000 } : null),
    };
    const catalog = [
      { name: 'toy', profile: 'toy', capacity: 1, onDemandUsdPerHour: 3.6, spotUsdPerHour: 1.8 },
    ];
    const { summary, out } = await run(
      {
        policy: createPolicy('static', { replicas: 1 }),
        autoscaler: spec({ catalog, maxSpotShare: 1, maxSpotSharePerType: 1 }),
        initialReplicas: 1,
        spot,
      },
      [
        { arrivalMs: 100, ...LONG },
        { arrivalMs: 4000, ...SHORT },
      ],
    );
    assert.equal(out[0]!.status, 'rejected');
    assert.equal(out[0]!.reject_reason, 'preempted');
    assert.equal(out[1]!.status, 'ok');
    close(out[1]!.gateway_queue_ms, 3000, 'waits for the replacement, ready at 7 s');
    assert.equal(summary.autoscaling!.spot_preemptions, 1);
    assert.equal(summary.rejected_by_reason.preempted, 1);
    // Both replicas were spot: the first 0–3 s, the replacement 2–7.00704 s.
    close(summary.autoscaling!.replica_seconds_by_tier.spot, 3 + 5.00704, 'spot replica-seconds');
    close(summary.autoscaling!.replica_seconds_by_tier['on-demand'], 0, 'no on-demand');
    close(summary.cost_usd, (8.00704 * 1.8) / 3600, 'at the spot price');
  });

  it('preemptions after the run are not simulated (each replacement would draw another, without end)', {
    timeout: 10_000,
  }, async () => {
    // Every spot replica gets its notice 10 s after it starts; the run ends at 107.04 ms.
    const spot = {
      preemption: (_id: string, _type: string, startMs: number) => ({
        noticeMs: startMs + 10_000,
        stopMs: startMs + 11_000,
      }),
    };
    const catalog = [
      { name: 'toy', profile: 'toy', capacity: 1, onDemandUsdPerHour: 3.6, spotUsdPerHour: 1.8 },
    ];
    const { summary } = await run(
      {
        policy: createPolicy('static', { replicas: 1 }),
        autoscaler: spec({ catalog, maxSpotShare: 1, maxSpotSharePerType: 1 }),
        initialReplicas: 1,
        spot,
      },
      [{ arrivalMs: 100, ...SHORT }],
    );
    assert.equal(summary.completed, 1);
    assert.equal(summary.autoscaling!.spot_preemptions, 0);
    close(summary.replica_seconds, 0.10704, 'one replica, 0 to 107.04 ms');
  });
});
