/**
 * KPA: Knative's decisions reproduced tick by tick on concurrency series recorded into a real
 * MetricsWindow (one sample per second, a decision every 2 s): a worked example with Knative's defaults,
 * panic entry and exit, the restart panic, the ÷2 scale-down rate, and the scale-to-zero states.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsWindow } from '../../src/autoscaler/metrics-window.js';
import { createKpa, KPA_DEFAULTS } from '../../src/autoscaler/policies/kpa.js';
import type { ScalingContext, ScalingPolicy } from '../../src/autoscaler/types.js';
import { AssertionError } from '../../src/core/assert.js';

function ctx(nowMs: number, w: MetricsWindow, ready: number, starting = 0): ScalingContext {
  return {
    nowMs,
    metrics: w.at(nowMs),
    replicas: { ready, starting, draining: 0 },
    lastDesired: ready,
    minReplicas: 0,
    maxReplicas: 10_000,
    replicaRps: 1,
    coldStartMs: 60_000,
    slo: { ttftMs: 1000, tpotMs: 100, quantile: 0.9 },
  };
}

interface Scenario {
  /** Fleet concurrency (in flight) sampled at second t, held for that second. */
  readonly concurrency: (t: number) => number;
  /** Ready replicas at a decision at second t, given the previous decision. */
  readonly ready: (t: number, lastDesired: number) => number;
  /** Seconds with an arrival (recorded before that second's sample). */
  readonly arrivals?: readonly number[];
  readonly untilS: number;
  /** Called after each decision, with the window as of that tick. */
  readonly probe?: (t: number, w: MetricsWindow) => void;
}

/** Samples every second from 0 and decides every 2 s from 2; returns `t: desired reason` per decision. */
function run(policy: ScalingPolicy, sc: Scenario, w = new MetricsWindow()): Map<number, string> {
  const out = new Map<number, string>();
  let last = sc.ready(0, 0);
  for (let t = 0; t <= sc.untilS; t++) {
    if (sc.arrivals?.includes(t)) w.arrival(t * 1000);
    w.sample(t * 1000, { inFlight: sc.concurrency(t), queued: 0, engineWaiting: 0, kvUsage: Number.NaN });
    if (t === 0 || t % 2 !== 0) continue;
    const ready = sc.ready(t, last);
    const d = policy.decide(ctx(t * 1000, w, ready));
    out.set(t, `${d.desired} ${d.reason}`);
    sc.probe?.(t, w);
    last = d.desired;
  }
  return out;
}

/** Asserts the decision at every tick in [from, to]. */
function expectTicks(got: Map<number, string>, from: number, to: number, want: string): void {
  for (let t = from; t <= to; t += 2) assert.equal(got.get(t), want, `at ${t} s`);
}

describe('KPA panic mode (knative/serving pkg/autoscaler/scaling/autoscaler.go)', () => {
  it('reproduces the worked example: stable 350, panic 600, 4 ready → 9, held, then at most ÷2', () => {
    const windows: number[] = [];
    const got = run(createKpa(), {
      // 280 (4 × 70) for a minute; then 300 × 42 s + 400 × 12 s + 600 × 6 s, whose mean is 350; then 0.
      concurrency: (t) => (t < 60 ? 280 : t < 102 ? 300 : t < 114 ? 400 : t < 120 ? 600 : 0),
      // 4 ready until the burst's decision; the 9 asked for are ready from 122 s.
      ready: (t) => (t <= 120 ? 4 : 9),
      untilS: 184,
      probe: (t, w) => {
        if (t === 120) windows.push(w.concurrency(60_000), w.concurrency(6000));
      },
    });
    // A fresh KPA that finds 4 ready starts in panic at 4 (a restart must not scale down) ...
    expectTicks(got, 2, 60, '4 panic');
    // ... where it still scales up: (2 s, 62 s] holds 58 s of 280 and 2 s of 300 → ceil(280.67/70) = 5.
    assert.equal(got.get(62), '5 panic');
    // 64 s > 2 s + 60 s with no tick over the threshold: stable mode; the stable window stays in (280, 350].
    expectTicks(got, 64, 116, '5 stable');
    // 118 s: panic window (112, 118] = (2 × 400 + 4 × 600) / 6 = 533.3 → dppc 8; 8 / 4 = 2 ≥ 2 → panic.
    // Stable (58, 118] = 339.3 → 5; desired max(5, 8).
    assert.equal(got.get(118), '8 panic');
    // 120 s is the worked example itself.
    assert.deepEqual(windows, [350, 600]);
    assert.equal(got.get(120), '9 panic'); // dspc 5, dppc 9, 9 / 4 = 2.25 ≥ 2: max(5, 9)
    // From 122 s no tick is over the threshold (122 s: 400 → dppc 6, 6 / 9 < 2), the stable window
    // falls to 0, yet panic never scales down: 9 until 120 s + 60 s.
    expectTicks(got, 122, 180, '9 panic');
    // 182 s > 180 s: stable again; the stable window is 0, and the ÷2 rate stops it at floor(9 / 2).
    assert.equal(got.get(182), '4 stable');
    assert.equal(got.get(184), '4 stable'); // still 9 ready: still floor(9 / 2)
  });

  it('panics at exactly the threshold, against ready replicas, with the target set per pool', () => {
    const got = run(createKpa({ targetConcurrency: 10 }), {
      concurrency: (t) => (t < 10 ? 10 : 15),
      ready: () => 1,
      untilS: 20,
    });
    assert.equal(got.get(10), '1 stable'); // 10 / 10 → 1
    // Panic window (6, 12] = (4 × 10 + 2 × 15) / 6 = 11.7 → dppc 2; 2 / 1 = 2 ≥ 2.
    assert.equal(got.get(12), '2 panic');
  });

  it('limits a scale-up to 1000 × ready per tick', () => {
    const got = run(createKpa(), { concurrency: () => 140_000, ready: () => 1, untilS: 2 });
    assert.equal(got.get(2), '1000 panic'); // ceil(140 000 / 70) = 2000, capped at ceil(1000 × 1)
  });
});

describe('KPA scale-down and scale to zero (autoscaler.go, pkg/reconciler/autoscaling/kpa/scaler.go)', () => {
  it('halves at most per tick once a restart panic ends, then scales to zero after the grace period', () => {
    const got = run(createKpa(), {
      concurrency: () => 0,
      ready: (t, last) => (t <= 2 ? 16 : last), // the fleet follows each decision at once
      untilS: 104,
    });
    expectTicks(got, 2, 62, '16 panic'); // restart panic: held at the 16 found
    assert.equal(got.get(64), '8 stable'); // floor(16 / 2)
    assert.equal(got.get(66), '4 stable');
    assert.equal(got.get(68), '2 stable');
    assert.equal(got.get(70), '1 stable');
    // One ready: maxDown = floor(1 / 2) = 0, the decider wants 0; active since 2 s ≥ 60 s → inactive.
    expectTicks(got, 72, 100, '1 scale-to-zero-grace');
    assert.equal(got.get(102), '0 scale-to-zero'); // 30 s after 72 s
    assert.equal(got.get(104), '0 idle');
  });

  it('removes the last replica 60 s + 30 s after the last request ended, and a request pokes it back', () => {
    const w = new MetricsWindow();
    const kpa = createKpa();
    const got = run(
      kpa,
      {
        concurrency: (t) => (t < 10 ? 1 : 0), // one request, in flight over [0 s, 10 s)
        arrivals: [0],
        ready: (t, last) => (t <= 2 ? 1 : Math.min(1, last)),
        untilS: 149,
      },
      w,
    );
    expectTicks(got, 2, 68, '1 stable'); // (t − 60, t] still holds some of [0, 10): ceil(> 0) = 1
    // 70 s: (10, 70] is 0 and the last arrival is 70 s old: want 0; active since 2 s for ≥ 60 s.
    expectTicks(got, 70, 98, '1 scale-to-zero-grace');
    assert.equal(got.get(100), '0 scale-to-zero'); // inactive for 30 s: 90 s after the request ended
    expectTicks(got, 102, 148, '0 idle');

    // The poke: a request reaches the activator at 150 s; the host records it and decides at once.
    // Its sample has held for no time yet, so the windows read 0: the arrival alone asks for 1.
    w.arrival(150_000);
    w.sample(150_000, { inFlight: 0, queued: 1, engineWaiting: 0, kvUsage: Number.NaN });
    assert.equal(w.at(150_000).concurrency(60_000), 0);
    assert.deepEqual(kpa.decide(ctx(150_000, w, 0)), { desired: 1, reason: 'scale-from-zero' });
  });

  it('holds one replica while activating and for a stable window after it is ready', () => {
    const kpa = createKpa();
    const w = new MetricsWindow();
    let sampled = -1;
    /** Samples every second up to t (a request waits at the gateway at 10 s only), then decides at t. */
    const decide = (t: number, ready: number, starting: number) => {
      while (sampled < t) {
        sampled++;
        if (sampled === 10) w.arrival(10_000);
        const queued = sampled === 10 ? 1 : 0; // the client gives up at 11 s
        w.sample(sampled * 1000, { inFlight: 0, queued, engineWaiting: 0, kvUsage: Number.NaN });
      }
      const d = kpa.decide(ctx(t * 1000, w, ready, starting));
      return `${d.desired} ${d.reason}`;
    };
    assert.equal(decide(2, 0, 0), '0 idle');
    assert.equal(decide(10, 0, 0), '1 scale-from-zero'); // the poke
    // The replica takes 90 s to start.
    assert.equal(decide(70, 0, 1), '1 stable'); // (10, 70] holds 1 s of 1 queued
    assert.equal(decide(72, 0, 1), '1 hold-activating'); // idle since 10 s: want 0
    assert.equal(decide(100, 1, 0), '1 hold-active'); // ready at 100 s: active since then
    assert.equal(decide(158, 1, 0), '1 hold-active');
    assert.equal(decide(160, 1, 0), '1 scale-to-zero-grace');
    assert.equal(decide(188, 1, 0), '1 scale-to-zero-grace');
    assert.equal(decide(190, 1, 0), '0 scale-to-zero');
  });

  it('gives up activating after the activation timeout, and keeps one when scale to zero is off', () => {
    const w = new MetricsWindow();
    w.arrival(0);
    w.sample(0, { inFlight: 0, queued: 1, engineWaiting: 0, kvUsage: Number.NaN });
    const kpa = createKpa({ activationTimeoutMs: 100_000 });
    assert.equal(kpa.decide(ctx(0, w, 0)).reason, 'scale-from-zero');
    w.sample(1000, { inFlight: 0, queued: 0, engineWaiting: 0, kvUsage: Number.NaN });
    assert.deepEqual(kpa.decide(ctx(98_000, w, 0, 1)), { desired: 1, reason: 'hold-activating' });
    assert.deepEqual(kpa.decide(ctx(100_000, w, 0, 1)), { desired: 0, reason: 'activation-timeout' });

    const kept = createKpa({ enableScaleToZero: false });
    assert.deepEqual(kept.decide(ctx(200_000, w, 1)), { desired: 1, reason: 'scale-to-zero-disabled' });
  });
});

describe('KPA options', () => {
  it('has Knative’s defaults', () => {
    assert.deepEqual(
      { ...KPA_DEFAULTS },
      {
        targetConcurrency: 70,
        stableWindowMs: 60_000,
        panicWindowPercentage: 10,
        panicThreshold: 2,
        maxScaleUpRate: 1000,
        maxScaleDownRate: 2,
        enableScaleToZero: true,
        scaleToZeroGracePeriodMs: 30_000,
        scaleToZeroPodRetentionMs: 0,
        activationTimeoutMs: 630_000,
        intervalMs: 2000,
      },
    );
    assert.equal(createKpa().intervalMs, 2000);
  });

  it('refuses values outside Knative’s valid ranges', () => {
    assert.throws(() => createKpa({ panicThreshold: 1 }), AssertionError);
    assert.throws(() => createKpa({ stableWindowMs: 5000 }), AssertionError);
    assert.throws(() => createKpa({ stableWindowMs: 60_500 }), AssertionError);
    assert.throws(() => createKpa({ maxScaleDownRate: 1 }), AssertionError);
    assert.throws(() => createKpa({ targetConcurrency: 0 }), AssertionError);
  });
});
