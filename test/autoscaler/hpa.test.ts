/**
 * HPA: the replica formula and its tolerance band, scale-down stabilization that takes the
 * HIGHEST recommendation of the last 300 s, and the per-period rate limits, on metrics recorded
 * into a real MetricsWindow (one sample per second, a sync every 15 s).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsWindow, type PoolSample } from '../../src/autoscaler/metrics-window.js';
import { createHpa, HPA_DEFAULTS, type HpaOptions } from '../../src/autoscaler/policies/hpa.js';
import type { ScalingContext, ScalingPolicy } from '../../src/autoscaler/types.js';
import { AssertionError } from '../../src/core/assert.js';

function ctx(nowMs: number, w: MetricsWindow, ready: number, starting = 0): ScalingContext {
  return {
    nowMs,
    metrics: w.at(nowMs),
    replicas: { ready, starting, draining: 0 },
    lastDesired: ready + starting,
    minReplicas: 1,
    maxReplicas: 100,
    replicaRps: 1,
    coldStartMs: 60_000,
    slo: { ttftMs: 1000, tpotMs: 100, quantile: 0.9 },
  };
}

function waiting(engineWaiting: number, kvUsage = Number.NaN, queued = 0): PoolSample {
  return { inFlight: 0, queued, engineWaiting, kvUsage };
}

/** One sync at `t` s on a fresh policy, after 15 s of the same sample. */
function once(policy: ScalingPolicy, sample: PoolSample, ready: number, starting = 0): string {
  const w = new MetricsWindow();
  for (let t = 0; t < 15; t++) w.sample(t * 1000, sample);
  const d = policy.decide(ctx(15_000, w, ready, starting));
  return `${d.desired} ${d.reason}`;
}

/**
 * Syncs every 15 s; before the sync at t the 15 s (t − 15, t] are sampled with `load(t)` engine
 * waiting. The fleet follows each decision at once. Returns `t: desired reason` per sync.
 */
function run(
  policy: ScalingPolicy,
  load: (t: number) => number,
  ready0: number,
  untilS: number,
): Map<number, string> {
  const w = new MetricsWindow();
  const out = new Map<number, string>();
  let ready = ready0;
  for (let t = 15; t <= untilS; t += 15) {
    for (let s = t - 15; s < t; s++) w.sample(s * 1000, waiting(load(t)));
    const d = policy.decide(ctx(t * 1000, w, ready));
    out.set(t, `${d.desired} ${d.reason}`);
    ready = d.desired;
  }
  return out;
}

describe('HPA replica formula (kubernetes/kubernetes podautoscaler/replica_calculator.go)', () => {
  it('asks for ceil(ready × (total / ready) / target) outside the ±10 % band, keeps current inside', () => {
    // Default metric: engine waiting, 5 per ready replica; 4 ready.
    assert.equal(once(createHpa(), waiting(30), 4), '6 scale-up'); // 7.5 each: ratio 1.5 → ceil(6)
    assert.equal(once(createHpa(), waiting(24), 4), '5 scale-up'); // ratio 1.2 → ceil(4.8)
    assert.equal(once(createHpa(), waiting(21), 4), '4 within-tolerance'); // ratio 1.05
    assert.equal(once(createHpa(), waiting(22), 4), '5 scale-up'); // ratio 1.1: |1 − 1.1| is 0.1000…09 > 0.1
    assert.equal(once(createHpa(), waiting(18), 4), '4 within-tolerance'); // ratio 0.9: |1 − 0.9| ≤ 0.1
  });

  it('counts starting replicas in current but not in the average', () => {
    // 2 ready, 2 starting: 10 waiting is 5 per ready replica, on target: keep all 4.
    assert.equal(once(createHpa(), waiting(10), 2, 2), '4 within-tolerance');
    // 30 waiting: ceil(30 / 5) = 6, not 6 more than the 4 asked for.
    assert.equal(once(createHpa(), waiting(30), 2, 2), '6 scale-up');
  });

  it('scales on any metric of the window: kvUsage as a fraction per replica, queued from zero', () => {
    const kv = createHpa({ metric: 'kvUsage', target: 0.5 });
    assert.equal(once(kv, waiting(0, 0.75), 4), '6 scale-up'); // 0.75 / 0.5 = 1.5 → ceil(1.5 × 4)
    assert.equal(once(createHpa({ metric: 'kvUsage', target: 0.5 }), waiting(0), 4), '4 no-metric');
    const q = createHpa({ metric: 'queued', target: 5 });
    assert.equal(once(q, waiting(0, Number.NaN, 12), 0), '3 scale-from-zero'); // ceil(12 / 5)
    const held = createHpa({ metric: 'queued', target: 5 });
    assert.equal(once(held, waiting(0, Number.NaN, 12), 0, 2), '2 no-ready-replica');
  });

  it('scales on the arrival rate per replica', () => {
    const w = new MetricsWindow();
    w.at(0);
    for (let t = 1; t <= 15; t++) for (let i = 0; i < 10; i++) w.arrival(t * 1000); // 10 per second
    const d = createHpa({ metric: 'arrivalRate', target: 2 }).decide(ctx(15_000, w, 2));
    assert.deepEqual(d, { desired: 5, reason: 'scale-up' }); // 5 per replica: ratio 2.5 → ceil(10 / 2)
  });
});

describe('HPA stabilization (horizontal.go stabilizeRecommendationWithBehaviors)', () => {
  it('scales down only to the highest recommendation of the last 300 s', () => {
    // 10 ready, on target; at 30 s the load falls to need 6, from 45 s to need 3.
    const got = run(createHpa(), (t) => (t <= 15 ? 50 : t === 30 ? 30 : 15), 10, 345);
    assert.equal(got.get(15), '10 within-tolerance');
    // Recommendations 10 (15 s), 6 (30 s), then 3: the highest within (t − 300, t] holds the fleet.
    for (let t = 30; t <= 300; t += 15) assert.equal(got.get(t), '10 stabilized', `at ${t} s`);
    // 315 s: the 10 of 15 s is exactly 300 s old and out; 6 is the highest left.
    assert.equal(got.get(315), '6 stabilized');
    assert.equal(got.get(330), '3 scale-down'); // the 6 of 30 s is out too
    assert.equal(got.get(345), '3 within-tolerance'); // 15 / 3 = 5 per replica: on target
  });

  it('does not scale a new HPA down within its first 300 s', () => {
    assert.equal(once(createHpa(), waiting(10), 4), '4 stabilized'); // raw ceil(10 / 5) = 2, held at 4
  });
});

describe('HPA rate limits (horizontal.go, pkg/apis/autoscaling/v2/defaults.go)', () => {
  it('grows by at most max(+4, ×2) per 15 s by default', () => {
    const got = run(createHpa(), () => 100, 1, 45); // needs ceil(100 / 5) = 20
    assert.equal(got.get(15), '5 rate-limited'); // max(1 + 4, 2 × 1)
    assert.equal(got.get(30), '10 rate-limited'); // max(5 + 4, 2 × 5)
    assert.equal(got.get(45), '20 scale-up'); // max(14, 20) allows it
  });

  it('counts this policy’s own changes within a policy’s period', () => {
    const up: HpaOptions['scaleUp'] = {
      stabilizationWindowMs: 0,
      selectPolicy: 'Max',
      policies: [{ type: 'Pods', value: 2, periodMs: 60_000 }],
    };
    const got = run(createHpa({ scaleUp: up }), () => 100, 1, 90);
    assert.equal(got.get(15), '3 rate-limited'); // 1 + 2
    // Until 75 s the +2 of 15 s is inside the 60 s period: start = 3 − 2 = 1, limit 3.
    for (const t of [30, 45, 60]) assert.equal(got.get(t), '3 rate-limited', `at ${t} s`);
    assert.equal(got.get(75), '5 rate-limited'); // 15 s is exactly 60 s old: start 3
    assert.equal(got.get(90), '5 rate-limited'); // the +2 of 75 s counts again
  });

  it('picks the biggest scale-down with selectPolicy Max and the smallest with Min', () => {
    const down = (selectPolicy: 'Max' | 'Min'): HpaOptions['scaleDown'] => ({
      stabilizationWindowMs: 0,
      selectPolicy,
      policies: [
        { type: 'Pods', value: 1, periodMs: 15_000 },
        { type: 'Percent', value: 50, periodMs: 15_000 },
      ],
    });
    // 10 ready, 5 waiting in all: raw ceil(5 / 5) = 1. Proposals: 10 − 1 = 9, floor(10 × 0.5) = 5.
    assert.equal(once(createHpa({ scaleDown: down('Max') }), waiting(5), 10), '5 rate-limited');
    assert.equal(once(createHpa({ scaleDown: down('Min') }), waiting(5), 10), '9 rate-limited');
  });
});

describe('HPA options', () => {
  it('has Kubernetes’ defaults and our default metric', () => {
    assert.equal(HPA_DEFAULTS.metric, 'engineWaiting');
    assert.equal(HPA_DEFAULTS.target, 5);
    assert.equal(HPA_DEFAULTS.tolerance, 0.1);
    assert.equal(HPA_DEFAULTS.intervalMs, 15_000);
    assert.equal(HPA_DEFAULTS.scaleUp.stabilizationWindowMs, 0);
    assert.equal(HPA_DEFAULTS.scaleDown.stabilizationWindowMs, 300_000);
    assert.deepEqual(HPA_DEFAULTS.scaleUp.policies, [
      { type: 'Pods', value: 4, periodMs: 15_000 },
      { type: 'Percent', value: 100, periodMs: 15_000 },
    ]);
    assert.deepEqual(HPA_DEFAULTS.scaleDown.policies, [{ type: 'Percent', value: 100, periodMs: 15_000 }]);
    assert.equal(createHpa().intervalMs, 15_000);
  });

  it('refuses a non-positive target or a bad policy', () => {
    assert.throws(() => createHpa({ target: 0 }), AssertionError);
    assert.throws(
      () =>
        createHpa({
          scaleUp: {
            stabilizationWindowMs: 0,
            selectPolicy: 'Max',
            policies: [{ type: 'Pods', value: 0, periodMs: 1 }],
          },
        }),
      AssertionError,
    );
  });
});
