/**
 * The peers' published scaling policies (static, Ray Serve, SkyServe, Dynamo load-based), driven
 * tick by tick over hand-set metrics, with the exact decision expected at each tick.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import { createDynamoLoad, DYNAMO_LOAD_DEFAULTS } from '../../src/autoscaler/policies/dynamo-load.js';
import { createRayServe, RAY_SERVE_DEFAULTS } from '../../src/autoscaler/policies/ray-serve.js';
import { createSkyServe, SKYSERVE_DEFAULTS } from '../../src/autoscaler/policies/skyserve.js';
import { createStatic } from '../../src/autoscaler/policies/static.js';
import type {
  MetricsView,
  ReplicaCounts,
  ScalingContext,
  ScalingDecision,
  ScalingPolicy,
} from '../../src/autoscaler/types.js';

/**
 * A MetricsView fixture: each query returns the value set on the fixture, whatever the window, and
 * records the windows it was asked for, so a test can check which look-back a policy reads.
 */
class MetricsFixture implements MetricsView {
  arrival = 0;
  completion = 0;
  inFlight = 0;
  ttftMs = Number.NaN;
  tpotMs = Number.NaN;
  readonly asked: string[] = [];

  arrivalRate(windowMs: number): number {
    this.asked.push(`arrivalRate:${windowMs}`);
    return this.arrival;
  }
  completionRate(windowMs: number): number {
    this.asked.push(`completionRate:${windowMs}`);
    return this.completion;
  }
  concurrency(windowMs: number): number {
    this.asked.push(`concurrency:${windowMs}`);
    return this.inFlight;
  }
  queued(): number {
    return 0;
  }
  engineWaiting(): number {
    return 0;
  }
  kvUsage(): number {
    return Number.NaN;
  }
  tokensPerSecond(): number {
    return 0;
  }
  ttftQuantile(q: number, windowMs: number): number {
    this.asked.push(`ttftQuantile:${q}:${windowMs}`);
    return this.ttftMs;
  }
  tpotQuantile(q: number, windowMs: number): number {
    this.asked.push(`tpotQuantile:${q}:${windowMs}`);
    return this.tpotMs;
  }
  idleMs(): number {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * A pool as the controller presents it: `tick()` advances the clock by the policy's interval, asks
 * for a decision and feeds it back as `lastDesired` (as PoolAutoscaler does after clamping).
 * Replica counts are set by the test.
 */
class Pool {
  readonly metrics = new MetricsFixture();
  nowMs = 0;
  lastDesired: number;
  replicas: ReplicaCounts;
  minReplicas = 0;
  maxReplicas = 20;
  replicaRps = 1;

  constructor(
    readonly policy: ScalingPolicy,
    ready: number,
  ) {
    this.lastDesired = ready;
    this.replicas = { ready, starting: 0, draining: 0 };
  }

  ctx(): ScalingContext {
    return {
      nowMs: this.nowMs,
      metrics: this.metrics,
      replicas: this.replicas,
      lastDesired: this.lastDesired,
      minReplicas: this.minReplicas,
      maxReplicas: this.maxReplicas,
      replicaRps: this.replicaRps,
      coldStartMs: 60_000,
      slo: { ttftMs: 1000, tpotMs: 50, quantile: 0.9 },
    };
  }

  /** One tick; the decision becomes `lastDesired`. */
  tick(): ScalingDecision {
    this.nowMs += this.policy.intervalMs;
    const d = this.policy.decide(this.ctx());
    this.lastDesired = Math.min(this.maxReplicas, Math.max(this.minReplicas, d.desired));
    return d;
  }

  /** `n` ticks; returns the desired counts, run-length encoded as `count×desired`. */
  ticks(n: number): string {
    const runs: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const { desired } = this.tick();
      const last = runs.at(-1);
      if (last !== undefined && last[1] === desired) last[0]++;
      else runs.push([1, desired]);
    }
    return runs.map(([k, v]) => `${k}×${v}`).join(' ');
  }

  /** Replicas become what was last decided, all ready. */
  settle(): void {
    this.replicas = { ready: this.lastDesired, starting: 0, draining: 0 };
  }
}

describe('static', () => {
  it('decides its N whatever the load, and refuses a bad N', () => {
    const pool = new Pool(createStatic({ replicas: 3 }), 1);
    pool.metrics.inFlight = 1000;
    pool.metrics.arrival = 1000;
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'static' });
    pool.replicas = { ready: 0, starting: 0, draining: 0 };
    pool.metrics.inFlight = 0;
    assert.equal(pool.ticks(5), '5×3');
    assert.equal(pool.policy.name, 'static');
    assert.throws(() => createStatic({ replicas: -1 }), AssertionError);
    assert.throws(() => createStatic({ replicas: 1.5 }), AssertionError);
  });
});

describe('ray-serve', () => {
  it('ticks every 100 ms and reads concurrency over the 30 s look-back', () => {
    const pool = new Pool(createRayServe(), 2);
    assert.equal(pool.policy.intervalMs, 100);
    assert.equal(pool.policy.name, 'ray-serve');
    pool.tick();
    assert.deepEqual(pool.metrics.asked, ['concurrency:30000']);
    assert.equal(RAY_SERVE_DEFAULTS.targetOngoingRequests, 2);
  });

  it('scales up only once the decision has persisted 30 s (301 ticks of 0.1 s)', () => {
    const pool = new Pool(createRayServe(), 2);
    pool.metrics.inFlight = 8; // 8 ongoing / target 2 → 4 replicas
    // 291 ticks = the first sighting plus 29.0 s: no change.
    assert.equal(pool.ticks(291), '291×2');
    pool.metrics.inFlight = 4; // exactly 2 per replica: the counter resets
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'steady' });
    pool.metrics.inFlight = 8;
    assert.equal(pool.ticks(300), '300×2'); // first sighting plus 29.9 s
    assert.deepEqual(pool.tick(), { desired: 4, reason: 'upscale' }); // plus 30.0 s
  });

  it('scales down after 600 s, stops at 1, and takes the 1 → 0 step after its own delay', () => {
    const pool = new Pool(createRayServe({ downscaleToZeroDelayMs: 60_000 }), 4);
    pool.metrics.inFlight = 0; // ideal 0; above 1 replica a scale-down stops at 1
    assert.equal(pool.ticks(6000), '6000×4');
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'downscale' });
    pool.settle();
    assert.equal(pool.ticks(600), '600×1'); // 60 s to-zero delay: 601 ticks
    assert.deepEqual(pool.tick(), { desired: 0, reason: 'scale-to-zero' });
  });

  it('never goes below min: with min 1 the idle pool stays at 1', () => {
    const pool = new Pool(createRayServe({ downscaleDelayMs: 0 }), 3);
    pool.minReplicas = 1;
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'downscale' }); // delay 0: at once
    pool.settle();
    assert.equal(pool.ticks(10_000), '10000×1');
  });

  it('restarts the count when the direction flips', () => {
    const pool = new Pool(createRayServe(), 2);
    pool.metrics.inFlight = 8;
    assert.equal(pool.ticks(200), '200×2');
    pool.metrics.inFlight = 0; // one downscale decision: the upscale count is lost
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'downscale-wait' });
    pool.metrics.inFlight = 8;
    assert.equal(pool.ticks(301), '300×2 1×4');
  });

  it('closes only part of the gap with a scaling factor, and never stalls a needed scale-down', () => {
    const up = new Pool(createRayServe({ upscalingFactor: 0.5, upscaleDelayMs: 0 }), 2);
    up.metrics.inFlight = 16; // ideal 8: ceil(2 + 0.5 × 6) = 5
    assert.deepEqual(up.tick(), { desired: 5, reason: 'upscale' });

    const down = new Pool(createRayServe({ downscalingFactor: 0.5, downscaleDelayMs: 0 }), 3);
    down.metrics.inFlight = 5; // ideal 2.5: ceil(3 − 0.25) = 3, and ceil(2.5) = 3 is no scale-down
    assert.deepEqual(down.tick(), { desired: 3, reason: 'steady' });
    down.metrics.inFlight = 4; // ideal 2: ceil(3 − 0.5) = 3 would stall, so 3 − 1
    assert.deepEqual(down.tick(), { desired: 2, reason: 'downscale' });
  });

  it('clamps before counting: a pool at max does not accumulate upscale decisions', () => {
    const pool = new Pool(createRayServe(), 4);
    pool.maxReplicas = 4;
    pool.metrics.inFlight = 100;
    assert.equal(pool.ticks(400), '400×4');
    assert.equal(pool.tick().reason, 'steady');
  });

  it('from zero running replicas asks at once when a request waits, and holds while one starts', () => {
    const pool = new Pool(createRayServe(), 0);
    assert.deepEqual(pool.tick(), { desired: 0, reason: 'idle' });
    pool.metrics.inFlight = 0.5;
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'cold-start' });
    pool.replicas = { ready: 0, starting: 1, draining: 0 };
    pool.metrics.inFlight = 40; // would need 20, but nothing runs yet
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'cold-start' });
    pool.metrics.inFlight = 0;
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'starting' });

    const factor = new Pool(createRayServe({ upscalingFactor: 2.5 }), 0);
    factor.metrics.inFlight = 1;
    assert.deepEqual(factor.tick(), { desired: 3, reason: 'cold-start' }); // ceil(1 × 2.5)
  });

  it('refuses options out of range', () => {
    assert.throws(() => createRayServe({ targetOngoingRequests: 0 }), AssertionError);
    assert.throws(() => createRayServe({ upscaleDelayMs: -1 }), AssertionError);
    assert.throws(() => createRayServe({ downscalingFactor: 0 }), AssertionError);
  });
});

describe('skyserve', () => {
  it('ticks every 5 s, decides every 20 s while above zero, from the 60 s request rate', () => {
    const pool = new Pool(createSkyServe(), 2);
    assert.equal(pool.policy.intervalMs, 5000);
    assert.equal(pool.policy.name, 'skyserve');
    pool.metrics.arrival = 2;
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'steady' }); // t = 5 s
    assert.deepEqual(pool.metrics.asked, ['arrivalRate:60000']);
    for (const _ of [10, 15, 20]) assert.deepEqual(pool.tick(), { desired: 2, reason: 'between-decisions' });
    assert.equal(pool.tick().reason, 'steady'); // t = 25 s
    assert.equal(pool.metrics.asked.length, 2);
  });

  it('scales up on the 15th consecutive higher decision (300 s / 20 s)', () => {
    const pool = new Pool(createSkyServe(), 2);
    pool.metrics.arrival = 3.2; // ceil(3.2 / 1) = 4
    // 14 decisions of 4 ticks each, then the 15th decision.
    assert.equal(pool.ticks(14 * 4), '56×2');
    assert.deepEqual(pool.tick(), { desired: 4, reason: 'upscale' });
  });

  it('scales down on the 60th consecutive lower decision (1200 s / 20 s)', () => {
    const pool = new Pool(createSkyServe(), 4);
    pool.metrics.arrival = 1; // wants 1
    assert.equal(pool.ticks(59 * 4), '236×4');
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'downscale' });
  });

  it('resets both counters on an equal decision and the other one on an opposite decision', () => {
    const pool = new Pool(createSkyServe(), 2);
    pool.metrics.arrival = 4;
    assert.equal(pool.ticks(10 * 4), '40×2'); // 10 higher decisions
    pool.metrics.arrival = 2;
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'steady' });
    pool.ticks(3);
    pool.metrics.arrival = 4;
    assert.equal(pool.ticks(14 * 4), '56×2'); // 14 higher decisions: not yet
    pool.metrics.arrival = 1; // one lower decision clears the upscale counter
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'downscale-wait' });
    pool.ticks(3);
    pool.metrics.arrival = 4;
    assert.equal(pool.ticks(14 * 4 + 1), '56×2 1×4');
  });

  it('moves from zero at once, decides every 5 s at zero, and scales to zero after 1200 s', () => {
    const pool = new Pool(createSkyServe(), 0);
    assert.deepEqual(pool.tick(), { desired: 0, reason: 'idle' }); // t = 5 s
    assert.deepEqual(pool.tick(), { desired: 0, reason: 'idle' }); // t = 10 s: decides again
    pool.metrics.arrival = 2.5;
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'scale-from-zero' });
    assert.equal(pool.tick().reason, 'between-decisions');
    pool.ticks(2);
    pool.metrics.arrival = 0;
    assert.equal(pool.ticks(59 * 4 + 1), '236×3 1×0');
    assert.equal(pool.tick().reason, 'idle'); // back on the 5 s cadence
  });

  it('uses targetQpsPerReplica over replicaRps when set, and clamps to [min, max]', () => {
    const pool = new Pool(createSkyServe({ targetQpsPerReplica: 2, upscaleDelayMs: 0 }), 1);
    pool.replicaRps = 100;
    pool.metrics.arrival = 4.1; // ceil(4.1 / 2) = 3
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'upscale' });
    pool.ticks(3);
    pool.maxReplicas = 4;
    pool.metrics.arrival = 50;
    assert.deepEqual(pool.tick(), { desired: 4, reason: 'upscale' });
    assert.equal(SKYSERVE_DEFAULTS.targetQpsPerReplica, null);
    assert.throws(() => createSkyServe({ targetQpsPerReplica: 0 }), AssertionError);
  });
});

describe('dynamo-load', () => {
  /** A pool with enough observations in the window: 2 completions/s × 5 s = 10. */
  function busy(ready: number, opts: Parameters<typeof createDynamoLoad>[0] = {}): Pool {
    const pool = new Pool(createDynamoLoad(opts), ready);
    pool.metrics.arrival = 2;
    pool.metrics.completion = 2;
    pool.metrics.inFlight = 4;
    return pool;
  }

  it('ticks every 5 s and reads latencies at the SLO quantile over the last 5 s', () => {
    const pool = busy(2);
    assert.equal(pool.policy.intervalMs, 5000);
    assert.equal(pool.policy.name, 'dynamo-load');
    pool.metrics.ttftMs = 900;
    pool.metrics.tpotMs = 45;
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'no-change' });
    assert.deepEqual(pool.metrics.asked, [
      'completionRate:5000',
      'ttftQuantile:0.9:5000',
      'tpotQuantile:0.9:5000',
    ]);
  });

  it('adds one replica at a time while TTFT or TPOT is over the SLO, holding while one starts', () => {
    const pool = busy(2);
    pool.metrics.ttftMs = 1200;
    pool.metrics.tpotMs = 30;
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'scale-up' });
    pool.replicas = { ready: 2, starting: 1, draining: 0 };
    assert.equal(pool.ticks(4), '4×3');
    assert.equal(pool.tick().reason, 'scaling-in-progress');
    pool.settle();
    pool.metrics.ttftMs = 100;
    pool.metrics.tpotMs = 60; // TPOT alone over the SLO is enough
    assert.deepEqual(pool.tick(), { desired: 4, reason: 'scale-up' });
  });

  it('removes one replica only when both are under 80 % of the SLO', () => {
    const pool = busy(4);
    pool.metrics.ttftMs = 790;
    pool.metrics.tpotMs = 39;
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'scale-down' });
    pool.settle();
    pool.metrics.ttftMs = 810; // between 0.8 × SLO and the SLO
    pool.metrics.tpotMs = 10;
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'no-change' });
    pool.metrics.ttftMs = 10;
    pool.metrics.tpotMs = 40; // exactly 0.8 × 50: not under
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'no-change' });
    pool.metrics.tpotMs = Number.NaN; // no sample neither raises nor lowers
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'no-change' });
  });

  it('needs 5 completions in the window, treats an idle pool as under the SLO, and keeps 1', () => {
    const pool = busy(3);
    pool.metrics.completion = 0.8; // 4 in 5 s
    pool.metrics.ttftMs = 5000;
    assert.deepEqual(pool.tick(), { desired: 3, reason: 'insufficient-data' });
    pool.metrics.arrival = 0;
    pool.metrics.completion = 0;
    pool.metrics.inFlight = 0;
    assert.deepEqual(pool.tick(), { desired: 2, reason: 'scale-down' });
    pool.settle();
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'scale-down' });
    pool.settle();
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'min-endpoint' }); // min 0, but Dynamo keeps 1
  });

  it('with the throughput floor, keeps ceil(180 s rate / replicaRps), recomputed every 180 s', () => {
    const pool = busy(2, { throughputFloor: true });
    pool.replicaRps = 2;
    pool.metrics.arrival = 9; // floor ceil(9 / 2) = 5
    pool.metrics.ttftMs = 100;
    pool.metrics.tpotMs = 10; // under the SLO: the load mode alone would go to 1
    assert.deepEqual(pool.tick(), { desired: 5, reason: 'throughput-floor' }); // t = 5 s
    assert.equal(pool.metrics.asked[0], 'arrivalRate:180000');
    pool.settle();
    pool.metrics.arrival = 1; // the floor keeps 5 until t = 185 s
    assert.equal(pool.ticks(35), '35×5'); // t = 10 … 180 s
    assert.deepEqual(pool.tick(), { desired: 4, reason: 'scale-down' }); // t = 185 s: floor 1
  });

  it('has the floor off by default', () => {
    const pool = busy(2);
    pool.replicaRps = 2;
    pool.metrics.arrival = 9;
    pool.metrics.ttftMs = 100;
    pool.metrics.tpotMs = 10;
    assert.deepEqual(pool.tick(), { desired: 1, reason: 'scale-down' });
    assert.equal(DYNAMO_LOAD_DEFAULTS.throughputFloor, false);
    assert.throws(() => createDynamoLoad({ sensitivity: 1.5 }), AssertionError);
  });
});
