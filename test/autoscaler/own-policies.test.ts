/**
 * Our own scaling policies: the Holt-Winters model on exact series, the forecast policy scaling a
 * known periodic step up ahead of time, the SLO policy's rules on constructed percentiles, and the
 * oracle on a constructed arrivals function. Metrics come from a hand-written MetricsView fixture.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import { createForecast, HoltWinters } from '../../src/autoscaler/policies/forecast.js';
import { createOracle } from '../../src/autoscaler/policies/oracle.js';
import { createSlo } from '../../src/autoscaler/policies/slo.js';
import type {
  MetricsView,
  ReplicaCounts,
  ScalingContext,
  ScalingDecision,
  ScalingPolicy,
} from '../../src/autoscaler/types.js';

/**
 * MetricsView fixture: fixed values set by the test, and an arrival rate (req/s, constant within
 * each whole second) as a function of time, integrated exactly over the asked window.
 */
class MetricsFixture implements MetricsView {
  nowMs = 0;
  rateAt: (tMs: number) => number = () => 0;
  concurrencyValue = 0;
  queuedValue = 0;
  ttftMs = Number.NaN;
  tpotMs = Number.NaN;
  idleForMs = Number.POSITIVE_INFINITY;
  /** Arguments of every quantile read, as `ttft q w` / `tpot q w`. */
  readonly quantileReads: string[] = [];

  arrivalRate(windowMs: number): number {
    assert.equal(windowMs % 1000, 0, 'the fixture integrates whole seconds');
    let arrivals = 0;
    for (let t = this.nowMs - windowMs; t < this.nowMs; t += 1000) arrivals += this.rateAt(t);
    return arrivals / (windowMs / 1000);
  }
  completionRate(): number {
    return 0;
  }
  concurrency(): number {
    return this.concurrencyValue;
  }
  queued(): number {
    return this.queuedValue;
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
    this.quantileReads.push(`ttft ${q} ${windowMs}`);
    return this.ttftMs;
  }
  tpotQuantile(q: number, windowMs: number): number {
    this.quantileReads.push(`tpot ${q} ${windowMs}`);
    return this.tpotMs;
  }
  idleMs(): number {
    return this.idleForMs;
  }
}

const SLO = { ttftMs: 1000, tpotMs: 50, quantile: 0.9 } as const;

function ctxOf(
  metrics: MetricsFixture,
  over: Partial<Omit<ScalingContext, 'metrics' | 'replicas'>> & { replicas?: Partial<ReplicaCounts> } = {},
): ScalingContext {
  const { replicas, ...rest } = over;
  return {
    nowMs: metrics.nowMs,
    metrics,
    replicas: { ready: 0, starting: 0, draining: 0, ...replicas },
    lastDesired: 0,
    minReplicas: 0,
    maxReplicas: 100,
    replicaRps: 10,
    coldStartMs: 30_000,
    slo: SLO,
    ...rest,
  };
}

/** Decides at t = 0, step, 2·step, … < untilMs; returns each decision with its time. */
function run(
  policy: ScalingPolicy,
  metrics: MetricsFixture,
  untilMs: number,
  over: Parameters<typeof ctxOf>[1] = {},
): { t: number; d: ScalingDecision }[] {
  const out: { t: number; d: ScalingDecision }[] = [];
  let last = 0;
  for (let t = 0; t < untilMs; t += policy.intervalMs) {
    metrics.nowMs = t;
    const d = policy.decide(ctxOf(metrics, { lastDesired: last, ...over }));
    last = d.desired;
    out.push({ t, d });
  }
  return out;
}

describe('HoltWinters', () => {
  it('forecasts a constant series exactly, in the Holt phase and the seasonal one', () => {
    const hw = new HoltWinters({ seasonLength: 4 });
    assert.ok(Number.isNaN(hw.forecast(1)));
    for (let i = 0; i < 12; i++) {
      hw.update(7);
      assert.equal(hw.seasonal, i >= 3);
      for (let h = 1; h <= 9; h++) assert.equal(hw.forecast(h), 7);
      if (i === 0) assert.ok(Number.isNaN(hw.errorStd));
      else assert.equal(hw.errorStd, 0);
    }
  });

  it('forecasts level + sinusoid within 1e-9 over a whole season after two seasons', () => {
    const m = 24;
    const y = (t: number) => 100 + 20 * Math.sin((2 * Math.PI * t) / m);
    const hw = new HoltWinters({ seasonLength: m });
    for (let t = 0; t < 2 * m; t++) hw.update(y(t));
    for (let h = 1; h <= 2 * m; h++) {
      const want = y(2 * m - 1 + h);
      assert.ok(Math.abs(hw.forecast(h) - want) < 1e-9, `h=${h}: ${hw.forecast(h)} vs ${want}`);
    }
  });

  it('is Holt, not seasonal, before one full season, and starts over from the first season', () => {
    const hw = new HoltWinters({ seasonLength: 4, alpha: 0.5, beta: 0 });
    for (const y of [2, 6, 2]) hw.update(y);
    assert.equal(hw.seasonal, false);
    assert.equal(hw.level, 3); // 2 → 2 + ½(6 − 2) = 4 → 4 + ½(2 − 4) = 3
    assert.equal(hw.forecast(2), 3);
    hw.update(6); // season complete: level = mean 4, trend 0, indices −2, +2, −2, +2
    assert.equal(hw.seasonal, true);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((h) => hw.forecast(h)),
      [2, 6, 2, 6, 2],
    );
  });

  it('follows the update equations exactly on a level shift', () => {
    const hw = new HoltWinters({ seasonLength: 4, alpha: 0.5, beta: 0.25, gamma: 0.5 });
    for (let i = 0; i < 8; i++) hw.update(5);
    hw.update(9); // e = 4; ℓ = 5 + ½·4 = 7; b = ¼(7 − 5) = ½; s₀ = ½(9 − 5) = 2
    assert.equal(hw.level, 7);
    assert.equal(hw.trend, 0.5);
    assert.equal(hw.forecast(1), 7.5); // slot 1: 0
    assert.equal(hw.forecast(4), 11); // 7 + 4·½ + s₀
    assert.equal(hw.forecast(8), 13); // same slot one season later: 7 + 8·½ + 2
    assert.equal(hw.errorStd, Math.sqrt(2)); // errors 0 ×7 then 4: mean square 16/8
  });

  it('reports the root mean square of one-step errors', () => {
    const hw = new HoltWinters({ seasonLength: 10, alpha: 0.5, beta: 0 });
    for (const y of [0, 4, 4]) hw.update(y); // forecasts 0, then 2: errors 4, 2
    assert.equal(hw.errorStd, Math.sqrt(10));
  });

  it('refuses bad options', () => {
    assert.throws(() => new HoltWinters({ seasonLength: 1 }), AssertionError);
    assert.throws(() => new HoltWinters({ alpha: 0 }), AssertionError);
    assert.throws(() => new HoltWinters({ gamma: 1.5 }), AssertionError);
    assert.throws(() => new HoltWinters().update(Number.NaN), AssertionError);
  });
});

describe('forecast policy', () => {
  /** 2 req/s, except 10 req/s during [300 s, 360 s) of every 480 s season. */
  const seasonMs = 480_000;
  const squareWave = (t: number) => {
    const o = (((t % seasonMs) + seasonMs) % seasonMs) / 1000;
    return o >= 300 && o < 360 ? 10 : 2;
  };

  it('scales up one cold start ahead of a known periodic step, and down after the delay', () => {
    // Steps of 10 s, a season of 48 steps; replicaRps 2.5 × utilization 0.8 = 2 req/s per replica.
    const policy = createForecast({ stepMs: 10_000, intervalMs: 10_000, seasonSteps: 48, z: 0 });
    const metrics = new MetricsFixture();
    metrics.rateAt = squareWave;
    const out = run(policy, metrics, 3 * seasonMs, { replicaRps: 2.5, coldStartMs: 30_000 });
    for (const { t, d } of out) assert.equal(d.reason.endsWith('-holt'), t < seasonMs, `t=${t}: ${d.reason}`);

    const third = out.filter(({ t }) => t >= 2 * seasonMs).map(({ t, d }) => [(t - 2 * seasonMs) / 1000, d]);
    const expected = (o: number): [number, string] => {
      if (o === 0) return [4, 'down-delay']; // 120 s of the last burst's recommendations: 370 s → 4
      if (o === 10) return [3, 'down-delay']; // 380 s → 3
      if (o < 260) return [1, 'forecast'];
      if (o < 360) return [5, 'forecast']; // 10 req/s in view at t + 40 s: 260 s = 300 s − cold − interval
      if (o === 360) return [5, 'reactive']; // the last 30 s were all 10 req/s
      return [5, 'down-delay'];
    };
    assert.equal(third.length, 48);
    for (const [o, d] of third as [number, ScalingDecision][]) {
      const [desired, reason] = expected(o);
      assert.deepEqual([o, d.desired, d.reason], [o, desired, reason]);
    }
    // The replicas asked at 260 s serve from 290 s, before the step at 300 s.
    const firstUp = third.find(([, d]) => (d as ScalingDecision).desired === 5)![0] as number;
    assert.ok(300 - firstUp >= 30, 'asked at least one cold start ahead');
  });

  it('adds z × the one-step error RMS as headroom', () => {
    // Holt with α 1, β 0 is "last value": steps of 2 then 6 req/s → forecast 6, one error of 4.
    const metrics = new MetricsFixture();
    metrics.rateAt = (t) => (t < 10_000 ? 2 : 6);
    const opts = { stepMs: 10_000, intervalMs: 10_000, seasonSteps: 100, alpha: 1, beta: 0 } as const;
    const at20 = (z: number) =>
      run(createForecast({ ...opts, z }), metrics, 30_000, { replicaRps: 2.5 })[2]!.d;
    assert.deepEqual(at20(0), { desired: 3, reason: 'forecast-holt' }); // 6 / 2
    assert.deepEqual(at20(1), { desired: 5, reason: 'forecast-holt' }); // (6 + 4) / 2
  });

  it('lets the reactive floor answer a burst the model did not expect', () => {
    const metrics = new MetricsFixture();
    metrics.rateAt = (t) => (t < 100_000 ? 2 : 20);
    const policy = createForecast({
      stepMs: 10_000,
      intervalMs: 10_000,
      seasonSteps: 100,
      shortWindowMs: 10_000,
    });
    const out = run(policy, metrics, 120_000, { replicaRps: 2.5 });
    // At 110 s Holt has moved to ≈ 7.4 + 0.108 h req/s (4 replicas); the last 10 s ran at 20 → 10.
    assert.deepEqual(out.at(-1)!.d, { desired: 10, reason: 'reactive-holt' });
  });

  it('goes to zero downDelayMs after both rates fell under zeroRps, and only with min 0', () => {
    const metrics = new MetricsFixture();
    metrics.rateAt = (t) => (t < 60_000 ? 4 : 0);
    const opts = { stepMs: 10_000, intervalMs: 10_000, seasonSteps: 100, alpha: 1, beta: 0, z: 0 } as const;
    const out = run(createForecast(opts), metrics, 210_000, { replicaRps: 2.5 });
    // Raw: 60 s → 2 (forecast 4), 70 s → 2 (30 s rate 2.67), 80 s → 1 (1.33), 90 s on → 0.
    // Down to the highest of the last 120 s: 1 until 190 s, 0 from 200 s.
    assert.deepEqual(out[19]!.d, { desired: 1, reason: 'down-delay-holt' });
    assert.deepEqual(out[20]!.d, { desired: 0, reason: 'scale-to-zero' });
    const withMin = run(createForecast(opts), metrics, 210_000, { replicaRps: 2.5, minReplicas: 1 });
    assert.notEqual(withMin[20]!.d.reason, 'scale-to-zero');
  });
});

describe('slo policy', () => {
  const decideOnce = (
    set: Partial<
      Pick<MetricsFixture, 'ttftMs' | 'tpotMs' | 'concurrencyValue' | 'queuedValue' | 'idleForMs'>
    >,
    replicas: Partial<ReplicaCounts>,
    over: Parameters<typeof ctxOf>[1] = {},
  ) => {
    const metrics = Object.assign(new MetricsFixture(), { idleForMs: 0, ...set });
    return createSlo().decide(ctxOf(metrics, { replicas, ...over }));
  };

  const table: [string, Parameters<typeof decideOnce>, ScalingDecision][] = [
    ['r 0.9: ×0.9/0.8', [{ ttftMs: 900, tpotMs: 20 }, { ready: 4 }], { desired: 5, reason: 'slo-up' }],
    ['r 3: capped at ×2', [{ ttftMs: 3000 }, { ready: 4 }], { desired: 8, reason: 'slo-up' }],
    ['TPOT 1.2: ×1.5', [{ ttftMs: 100, tpotMs: 60 }, { ready: 4 }], { desired: 6, reason: 'slo-up' }],
    ['just over 0.8: at least +1', [{ ttftMs: 800.0000001 }, { ready: 4 }], { desired: 5, reason: 'slo-up' }],
    ['exactly 0.8: no change', [{ ttftMs: 800 }, { ready: 4 }], { desired: 4, reason: 'stable' }],
    [
      'starting: hold at lastDesired',
      [{ ttftMs: 3000 }, { ready: 2, starting: 2 }, { lastDesired: 5 }],
      { desired: 5, reason: 'hold-starting' },
    ],
    [
      'starting: hold at ready + starting',
      [{ ttftMs: 3000 }, { ready: 2, starting: 2 }, { lastDesired: 3 }],
      { desired: 4, reason: 'hold-starting' },
    ],
    [
      'no percentile, requests waiting',
      [{ queuedValue: 3, concurrencyValue: 40 }, { ready: 4 }],
      { desired: 4, reason: 'no-signal' },
    ],
    [
      'low r but busy replicas',
      [{ ttftMs: 300, concurrencyValue: 64 }, { ready: 4 }],
      { desired: 4, reason: 'stable' },
    ],
    ['idle 120 s, min 0', [{ idleForMs: 120_000 }, { ready: 2 }], { desired: 0, reason: 'scale-to-zero' }],
    ['idle 119.999 s', [{ idleForMs: 119_999 }, { ready: 1 }], { desired: 1, reason: 'stable' }],
    [
      'idle, min 1',
      [{ idleForMs: 600_000 }, { ready: 1 }, { minReplicas: 1 }],
      { desired: 1, reason: 'stable' },
    ],
    [
      'idle but still in flight',
      [{ idleForMs: 600_000, concurrencyValue: 1 }, { ready: 1 }],
      { desired: 1, reason: 'stable' },
    ],
    ['from zero', [{ idleForMs: 1000 }, {}], { desired: 1, reason: 'from-zero' }],
  ];
  for (const [name, args, want] of table) {
    it(name, () => assert.deepEqual(decideOnce(...args), want));
  }

  it('reads both percentiles at the SLO quantile over its window', () => {
    const metrics = Object.assign(new MetricsFixture(), { idleForMs: 0 });
    createSlo({ windowMs: 20_000 }).decide(ctxOf(metrics, { replicas: { ready: 1 } }));
    assert.deepEqual(metrics.quantileReads, ['ttft 0.9 20000', 'tpot 0.9 20000']);
  });

  it('steps down by one after 120 s of low r and utilisation, then waits 120 s again', () => {
    const metrics = Object.assign(new MetricsFixture(), { idleForMs: 0, ttftMs: 300, concurrencyValue: 10 });
    const policy = createSlo();
    let ready = 4;
    const downs: [number, number][] = [];
    for (let t = 0; t <= 310_000; t += policy.intervalMs) {
      metrics.nowMs = t;
      // A blip at 60 s (r = 0.6) restarts the clock: the first step down comes at 65 + 120 s.
      metrics.ttftMs = t === 60_000 ? 600 : 300;
      const d = policy.decide(ctxOf(metrics, { replicas: { ready }, lastDesired: ready }));
      if (d.desired < ready) downs.push([t, d.desired]);
      else assert.equal(d.reason, t === 60_000 ? 'stable' : 'down-delay', `t=${t}`);
      ready = d.desired;
    }
    assert.deepEqual(downs, [
      [185_000, 3],
      [305_000, 2],
    ]);
  });

  it('never steps below one replica without the idle rule', () => {
    const metrics = Object.assign(new MetricsFixture(), { idleForMs: 0, ttftMs: 100 });
    const policy = createSlo({ downDelayMs: 0 });
    assert.deepEqual(policy.decide(ctxOf(metrics, { replicas: { ready: 2 } })), {
      desired: 1,
      reason: 'slo-down',
    });
    assert.deepEqual(policy.decide(ctxOf(metrics, { replicas: { ready: 1 } })), {
      desired: 1,
      reason: 'stable',
    });
  });
});

describe('oracle policy', () => {
  /** Arrivals in [fromMs, toMs) of a sorted list, by binary search, as the simulator builds it. */
  const countIn =
    (times: readonly number[]) =>
    (fromMs: number, toMs: number): number =>
      lowerBound(times, toMs) - lowerBound(times, fromMs);
  /** 200 req/s (one every 5 ms) during [100 s, 130 s). */
  const burst = Array.from({ length: 6000 }, (_, k) => 100_000 + 5 * k);

  const desiredByTime = (out: { t: number; d: ScalingDecision }[]) =>
    out.map(({ t, d }) => [t / 1000, d.desired, d.reason] as const);

  it('asks for the full burst exactly one cold start before it, and goes to zero when it ends', () => {
    const policy = createOracle({ arrivals: countIn(burst) });
    const out = run(policy, new MetricsFixture(), 150_000);
    const want = out.map(({ t }) => {
      const s = t / 1000;
      if (s <= 60 || s >= 130) return [s, 0, 'scale-to-zero'] as const;
      // 65 s sees [95 s, 105 s): 1000 arrivals = 100 req/s = 10 replicas of 10 req/s.
      if (s === 65 || s === 125) return [s, 10, 'oracle'] as const;
      return [s, 20, 'oracle'] as const; // 70 s = 100 s − cold start: [100 s, 110 s) at 200 req/s
    });
    assert.deepEqual(desiredByTime(out), want);
  });

  it('scales by 1 / utilization', () => {
    const policy = createOracle({ arrivals: countIn(burst), utilization: 0.5 });
    const metrics = Object.assign(new MetricsFixture(), { nowMs: 70_000 });
    assert.deepEqual(policy.decide(ctxOf(metrics)), { desired: 40, reason: 'oracle' });
  });

  it('asks for a lone arrival one interval early when it straddles a sub-window, and keeps it', () => {
    const policy = createOracle({ arrivals: countIn([200_000]) });
    const out = desiredByTime(run(policy, new MetricsFixture(), 215_000)).filter(([s]) => s >= 155);
    assert.deepEqual(out, [
      [155, 0, 'scale-to-zero'],
      [160, 0, 'scale-to-zero'],
      [165, 1, 'oracle'], // [195 s, 205 s) holds it: 0.1 req/s → 1 replica
      [170, 1, 'oracle'],
      [175, 1, 'oracle'],
      [180, 1, 'oracle'],
      [185, 1, 'oracle'],
      [190, 1, 'oracle'],
      [195, 1, 'oracle'],
      [200, 1, 'oracle'],
      [205, 0, 'scale-to-zero'],
      [210, 0, 'scale-to-zero'],
    ]);
  });

  it('keeps replicas for requests already waiting in the gateway', () => {
    const policy = createOracle({ arrivals: () => 0 });
    const metrics = Object.assign(new MetricsFixture(), { queuedValue: 1 });
    assert.deepEqual(policy.decide(ctxOf(metrics)), { desired: 1, reason: 'drain-queue' });
    assert.deepEqual(policy.decide(ctxOf(metrics, { replicas: { ready: 2, starting: 1 } })), {
      desired: 3,
      reason: 'drain-queue',
    });
  });
});

function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
