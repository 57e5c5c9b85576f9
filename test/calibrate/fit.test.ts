/**
 * The calibration fit on synthetic samples: times taken from the engine model itself on a virtual
 * clock (so the fit's formula is checked against the engine's), with seeded noise shaped like live
 * timing: one-sided delays on times to first token, symmetric jitter on decode windows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type DecodeSample,
  type Sample,
  type StepTimeConstants,
  type TtftSample,
  fitStepTime,
  gridGoldenMin,
  predictMs,
} from '../../src/calibrate/fit.js';
import { type RequestTimeline, decodeSample, fastestPerLength } from '../../src/calibrate/samples.js';
import { SeededRng } from '../../src/core/rng.js';
import { VirtualClock } from '../../src/core/virtual-clock.js';
import { EngineModel } from '../../src/engine-model/engine-model.js';
import { getProfile } from '../../src/engine-model/profiles.js';
import type { EngineProfile } from '../../src/engine-model/types.js';

const TRUTH: StepTimeConstants = {
  weightsMs: 12,
  gemmMsPer1kTokens: 60,
  prefillAttnMsPerMPairs: 2.5,
  decodeAttnMsPer1kCtx: 0.2,
  stepOverheadMs: 5,
  perRequestMs: 0.1,
  requestOverheadMs: 100,
};
const BUDGET = 4096;
const PROFILE: EngineProfile = {
  ...getProfile('llama3.1-8b-h100'),
  ...TRUTH,
  name: 'synthetic',
  maxNumBatchedTokens: BUDGET,
  maxModelLen: 65_536,
};
const OPTIONS = { maxNumBatchedTokens: BUDGET };

/** Time to first token of a prompt served alone, as the engine model times it. */
function engineTtft(promptTokens: number): number {
  const clock = new VirtualClock();
  const model = new EngineModel(PROFILE, clock);
  let first = Number.NaN;
  model.submit({ id: 'r', promptTokens, outputTokens: 1 }, { onTokens: (_, t) => (first = t) });
  clock.runAll();
  return first;
}

/**
 * The decode window of `requests` requests of `prompt` tokens sent together, each streaming `tokens`
 * tokens, as the engine model times them: large batches prefill in chunks over several steps, so
 * this goes through the same window logic as a live probe.
 */
function engineDecode(requests: number, prompt: number, tokens: number): DecodeSample {
  const clock = new VirtualClock();
  const model = new EngineModel(PROFILE, clock);
  const timelines: RequestTimeline[] = [];
  for (let i = 0; i < requests; i++) {
    const eventMs: number[] = [];
    timelines.push({ sentMs: 0, eventMs, promptTokens: prompt, cachedTokens: 0, completionTokens: tokens });
    model.submit(
      { id: `r${i}`, promptTokens: prompt, outputTokens: tokens },
      { onTokens: (_, t) => eventMs.push(t) },
    );
  }
  clock.runAll();
  return decodeSample({ requests: timelines })!;
}

const LENGTHS = Array.from({ length: 12 }, (_, i) => Math.round(16 * ((4 * BUDGET) / 16) ** (i / 11)));

/** A probe's worth of samples: TTFT passes with exponential delays (mean `delayMs`), a decode grid with jitter. */
function synthetic(seed: number, delayMs: number, decodeJitterMs: number): Sample[] {
  const rng = new SeededRng(seed);
  const ttft: TtftSample[] = [];
  const engine = new Map(LENGTHS.map((n) => [n, engineTtft(n)]));
  for (let pass = 0; pass < 5; pass++) {
    for (const n of LENGTHS) {
      const delay = -Math.log(1 - rng.next()) * delayMs;
      ttft.push({ kind: 'ttft', promptTokens: n, cachedTokens: 0, ms: engine.get(n)! + delay });
    }
  }
  const decode: DecodeSample[] = [];
  for (const b of [1, 4, 16, 64]) {
    for (const prompt of [64, Math.min(4096, (4 * BUDGET) / b)]) {
      const d = engineDecode(b, prompt, 64);
      decode.push({ ...d, ms: d.ms + (rng.next() - 0.5) * 2 * decodeJitterMs });
    }
  }
  return [...fastestPerLength(ttft), ...decode];
}

function relErr(fit: StepTimeConstants, k: keyof StepTimeConstants): number {
  return Math.abs(fit[k] / TRUTH[k] - 1);
}

describe('calibration fit', () => {
  it("predicts exactly the engine model's times (chunked prefill, decode batches)", () => {
    for (const n of [16, 300, BUDGET, BUDGET + 1, 3 * BUDGET + 7]) {
      const predicted = predictMs(TRUTH, { kind: 'ttft', promptTokens: n, cachedTokens: 0, ms: 0 }, OPTIONS);
      assert.ok(Math.abs(predicted - engineTtft(n)) < 1e-9, `prompt ${n}`);
    }
    const d = engineDecode(16, 1000, 20);
    assert.ok(Math.abs(predictMs(TRUTH, d, OPTIONS) - d.ms) < 1e-9);
  });

  it('recovers every constant from noiseless samples', () => {
    const fit = fitStepTime(synthetic(1, 0, 0), OPTIONS);
    for (const k of Object.keys(TRUTH) as (keyof StepTimeConstants)[])
      assert.ok(relErr(fit.constants, k) < 0.002, `${k}: ${fit.constants[k]} vs ${TRUTH[k]}`);
  });

  it('recovers the identifiable constants within 5% through live-like noise, whatever the seed', () => {
    // 3 ms mean one-sided delays on each time to first token, ±0.02 ms on each decode window's
    // mean step: what a busy two-core host shows. T0 and W separate only through the knee of
    // T_lin, which this noise blurs: their sum is what decode steps pin, so that is what holds.
    for (const seed of [1, 2, 3, 4]) {
      const fit = fitStepTime(synthetic(seed, 3, 0.02), OPTIONS);
      const c = fit.constants;
      for (const k of [
        'gemmMsPer1kTokens',
        'prefillAttnMsPerMPairs',
        'decodeAttnMsPer1kCtx',
        'perRequestMs',
        'requestOverheadMs',
      ] as const)
        assert.ok(relErr(c, k) < 0.05, `seed ${seed} ${k}: ${c[k]} vs ${TRUTH[k]}`);
      const sum = c.stepOverheadMs + c.weightsMs;
      assert.ok(Math.abs(sum / 17 - 1) < 0.01, `seed ${seed} T0 + W: ${sum}`);
      assert.ok(fit.overheadPlusWeightsStdErr < fit.stdErr.weightsMs, 'the sum is surer than W alone');
    }
  });

  it('leaves out outliers (a stalled timer) and reports them', () => {
    const samples = synthetic(5, 1, 0.01).map((s) =>
      s.kind === 'ttft' && s.promptTokens === LENGTHS[3] ? { ...s, ms: s.ms + 80 } : s,
    );
    const fit = fitStepTime(samples, OPTIONS);
    assert.equal(fit.used.outliers, 1);
    assert.ok(relErr(fit.constants, 'gemmMsPer1kTokens') < 0.05);
  });

  it('pins t_req at 0 when every decode batch has one request (it cannot be told from T0)', () => {
    const samples = [
      ...synthetic(6, 0, 0).filter((s) => s.kind === 'ttft' || s.requests === 1),
      engineDecode(1, 1000, 64),
    ];
    const fit = fitStepTime(samples, OPTIONS);
    assert.equal(fit.constants.perRequestMs, 0);
    assert.ok(Number.isNaN(fit.stdErr.perRequestMs));
    // T0 then carries t_req's share of a one-request step.
    assert.ok(Math.abs(fit.constants.stepOverheadMs + fit.constants.weightsMs - 17.1) < 0.05);
  });

  it('refuses to fit too few samples', () => {
    assert.throws(() => fitStepTime(synthetic(7, 0, 0).slice(0, 4), OPTIONS), /too few samples/);
  });

  it('gridGoldenMin finds the minimum of a unimodal function, also at a bound', () => {
    assert.ok(Math.abs(gridGoldenMin((x) => (x - 3.3) ** 2, 0, 10) - 3.3) < 1e-5);
    assert.ok(gridGoldenMin((x) => x, 0, 10) < 1e-5);
  });
});
