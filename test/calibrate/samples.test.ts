/** From what a client saw of streamed requests to the fit's samples: windows, slopes, fastest tries. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TtftSample } from '../../src/calibrate/fit.js';
import {
  type RequestTimeline,
  decodeSample,
  fastestPerLength,
  medianSlope,
  samplesFromBatches,
} from '../../src/calibrate/samples.js';

/** A request whose tokens arrive every `stepMs` from `firstMs` on, `tokens` of them. */
function timeline(firstMs: number, stepMs: number, tokens: number, promptTokens = 100): RequestTimeline {
  return {
    sentMs: 0,
    eventMs: Array.from({ length: tokens }, (_, i) => firstMs + i * stepMs),
    promptTokens,
    cachedTokens: 0,
    completionTokens: tokens,
  };
}

describe('calibration samples', () => {
  it("a sweep's request gives its time to first token, less the round trip, and its decode window", () => {
    const samples = samplesFromBatches([{ requests: [timeline(50, 10, 21)], sweep: true }], {
      roundTripMs: 2,
    });
    assert.deepEqual(samples[0], { kind: 'ttft', promptTokens: 100, cachedTokens: 0, ms: 48 });
    const d = samples[1]!;
    assert.equal(d.kind, 'decode');
    if (d.kind !== 'decode') return;
    assert.equal(d.requests, 1);
    assert.ok(Math.abs(d.ms - 10) < 1e-9);
    assert.equal(d.steps, 20);
    // Steps produce tokens 1..20 and read prompt + 1 … prompt + 20 tokens: 10.5 on average.
    assert.equal(d.contextTokens, 110.5);
  });

  it('a late token does not move the step time (a median of slopes, not the two end times)', () => {
    const r = timeline(0, 10, 61);
    const late = { ...r, eventMs: r.eventMs.map((t, i) => (i === 60 ? t + 25 : i === 7 ? t + 40 : t)) };
    assert.ok(Math.abs(decodeSample({ requests: [late] })!.ms - 10) < 1e-9);
    assert.ok(Math.abs(medianSlope(late.eventMs, 0, 60) - 10) < 1e-9);
  });

  it('a batch is timed only while every request decodes and none has finished', () => {
    // Three requests: their first tokens come at 100, 100 and 130 (the last was prefilled two steps
    // later; those steps took 15 ms); then every step takes 20 ms until the first one finishes.
    const slowEarly = (first: number, tokens: number): RequestTimeline => {
      const eventMs = [first];
      for (let i = 1; i < tokens; i++) eventMs.push(eventMs[i - 1]! + (eventMs[i - 1]! < 130 ? 15 : 20));
      return { sentMs: 0, eventMs, promptTokens: 50, cachedTokens: 0, completionTokens: tokens };
    };
    const batch = { requests: [slowEarly(100, 40), slowEarly(100, 40), slowEarly(130, 40)] };
    const d = decodeSample(batch)!;
    assert.equal(d.requests, 3);
    assert.ok(Math.abs(d.ms - 20) < 1e-9, `${d.ms}`);
  });

  it('a decode batch of one gives no time to first token (one try is not the fastest of several)', () => {
    const samples = samplesFromBatches([{ requests: [timeline(50, 10, 21)] }], { roundTripMs: 2 });
    assert.deepEqual(
      samples.map((s) => s.kind),
      ['decode'],
    );
  });

  it('no window without two tokens from every request, or with too few steps', () => {
    assert.equal(decodeSample({ requests: [timeline(0, 10, 1)] }), undefined);
    assert.equal(decodeSample({ requests: [timeline(0, 10, 4)] }), undefined);
    assert.equal(decodeSample({ requests: [] }), undefined);
  });

  it('counts steps in tokens when an event carries several', () => {
    const r = { ...timeline(0, 20, 11), completionTokens: 22 };
    const d = decodeSample({ requests: [r] })!;
    assert.ok(Math.abs(d.ms - 10) < 1e-9);
    assert.equal(d.steps, 20);
  });

  it('keeps the fastest try per prompt length (within 1% or 2 tokens), cached prefixes apart', () => {
    const t = (promptTokens: number, ms: number, cachedTokens = 0): TtftSample => ({
      kind: 'ttft',
      promptTokens,
      cachedTokens,
      ms,
    });
    const out = fastestPerLength([
      t(16, 9),
      t(17, 8),
      t(1000, 50),
      t(1009, 45),
      t(1100, 60),
      t(1000, 20, 512),
    ]);
    assert.deepEqual(out, [t(17, 8), t(1009, 45), t(1100, 60), t(1000, 20, 512)]);
  });
});
