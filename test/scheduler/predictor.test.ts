/** The output-length predictor learns a synthetic relation; the rank statistics match brute force. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng } from '../../src/core/rng.js';
import {
  kendallTau,
  OutputLengthPredictor,
  type PredictorFeatures,
  pairwiseAccuracy,
} from '../../src/scheduler/predictor.js';

/** Kendall's tau-b and pairwise accuracy by counting every pair. */
function bruteForce(xs: number[], ys: number[]): { tau: number; accuracy: number } {
  let concordant = 0;
  let discordant = 0;
  let tiesXOnly = 0;
  let tiesYOnly = 0;
  for (let i = 0; i < xs.length; i++)
    for (let j = i + 1; j < xs.length; j++) {
      const dx = Math.sign(xs[i]! - xs[j]!);
      const dy = Math.sign(ys[i]! - ys[j]!);
      if (dx === 0 && dy === 0) continue;
      if (dx === 0) tiesXOnly++;
      else if (dy === 0) tiesYOnly++;
      else if (dx === dy) concordant++;
      else discordant++;
    }
  const tau =
    (concordant - discordant) /
    Math.sqrt((concordant + discordant + tiesXOnly) * (concordant + discordant + tiesYOnly));
  const accuracy = (concordant + 0.5 * tiesXOnly) / (concordant + discordant + tiesXOnly);
  return { tau, accuracy };
}

function gaussian(rng: SeededRng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

const KINDS = [
  { text: 'Write an essay about the history of rivers', base: 600 },
  { text: 'List the steps to repot a plant', base: 150 },
  { text: 'Is the sea salty?', base: 6 },
  { text: 'Tell me about rivers', base: 60 },
];

/**
 * Output ≈ base(kind) × √(1 + prompt / 500) × e^(0.25·N(0,1)): a keyword and the prompt length
 * decide the length, up to noise no predictor can know.
 */
function synthetic(n: number, seed: number) {
  const rng = new SeededRng(seed);
  return Array.from({ length: n }, () => {
    const kind = KINDS[Math.floor(rng.next() * KINDS.length)]!;
    const promptTokens = 20 + Math.floor(rng.next() * 1980);
    const expected = kind.base * Math.sqrt(1 + promptTokens / 500);
    const output = Math.max(1, Math.round(expected * Math.exp(0.25 * gaussian(rng))));
    const f: PredictorFeatures = {
      promptTokens,
      maxTokens: null,
      tenant: 't',
      model: 'm',
      lastUserText: `${'Some context. '.repeat(3)}${kind.text}`,
      sessionId: null,
    };
    return { f, expected, output };
  });
}

describe('OutputLengthPredictor', () => {
  it('learns output length from a keyword and the prompt length, ranking held-out requests nearly as well as the noise allows', () => {
    const p = new OutputLengthPredictor();
    for (const s of synthetic(3000, 1)) p.learn(s.f, s.output);
    assert.equal(p.samples, 3000);
    const test = synthetic(1000, 2);
    const actual = test.map((s) => s.output);
    const tau = kendallTau(
      test.map((s) => p.predict(s.f)),
      actual,
    );
    // The best any predictor can do: rank by the noise-free expectation.
    const oracle = kendallTau(
      test.map((s) => s.expected),
      actual,
    );
    // What the prompt length alone gives.
    const promptOnly = kendallTau(
      test.map((s) => s.f.promptTokens),
      actual,
    );
    assert.ok(tau >= 0.95 * oracle, `tau ${tau} vs the oracle's ${oracle}`);
    assert.ok(tau >= promptOnly + 0.3, `tau ${tau} vs prompt length alone ${promptOnly}`);
  });

  it('predicts 1 before learning, and stays within [1, max_tokens], or maxOutputTokens without it', () => {
    const p = new OutputLengthPredictor({ maxOutputTokens: 200 });
    const f: PredictorFeatures = {
      promptTokens: 10,
      maxTokens: null,
      tenant: 't',
      model: 'm',
      lastUserText: null,
      sessionId: null,
    };
    assert.equal(p.predict(f), 1);
    const q = new OutputLengthPredictor();
    for (let i = 0; i < 50; i++) {
      p.learn(f, 1000);
      q.learn(f, 1000);
    }
    assert.ok(Math.abs(q.predict(f) - 1000) < 1, `learnt ${q.predict(f)}`);
    assert.equal(p.predict(f), 200);
    for (const maxTokens of [1, 2, 10, 50, 100]) assert.equal(q.predict({ ...f, maxTokens }), maxTokens);
  });

  it("uses the session's previous output length, and forgets the least recently used session", () => {
    const p = new OutputLengthPredictor({ sessions: 2 });
    const rng = new SeededRng(3);
    const turn = (session: string): PredictorFeatures => ({
      promptTokens: 100,
      maxTokens: null,
      tenant: 't',
      model: 'm',
      lastUserText: null,
      sessionId: session,
    });
    // Each session answers at its own length, turn after turn.
    for (let i = 0; i < 2000; i++) {
      const length = 10 + Math.floor(rng.next() * 1000);
      p.learn(turn(`s${i}`), length);
      p.learn(turn(`s${i}`), length);
    }
    p.learn(turn('short'), 20);
    p.learn(turn('long'), 900);
    const short = p.predict(turn('short'));
    const long = p.predict(turn('long'));
    assert.ok(short < 40 && long > 450, `short ${short}, long ${long}`);
    p.learn(turn('third'), 500); // 'short' is now the least recently used of three: forgotten
    assert.equal(p.predict(turn('short')), p.predict({ ...turn('short'), sessionId: null }));
    assert.notEqual(p.predict(turn('long')), p.predict({ ...turn('long'), sessionId: null }));
  });

  it('refuses to learn a non-finite output length', () => {
    const f: PredictorFeatures = {
      promptTokens: 1,
      maxTokens: null,
      tenant: 't',
      model: 'm',
      lastUserText: null,
      sessionId: null,
    };
    assert.throws(() => new OutputLengthPredictor().learn(f, Number.NaN), /finite output length/);
  });
});

describe('rank statistics', () => {
  it('give the textbook values on simple cases', () => {
    assert.equal(kendallTau([1, 2, 3, 4], [10, 20, 30, 40]), 1);
    assert.equal(kendallTau([1, 2, 3, 4], [40, 30, 20, 10]), -1);
    assert.ok(Number.isNaN(kendallTau([1, 1, 1], [1, 2, 3])));
    assert.equal(pairwiseAccuracy([1, 2, 3], [1, 2, 3]), 1);
    assert.equal(pairwiseAccuracy([5, 5, 5], [1, 2, 3]), 0.5);
    assert.equal(pairwiseAccuracy([3, 2, 1], [1, 2, 3]), 0);
  });

  it('match an O(n²) count of every pair on random samples with ties', () => {
    const rng = new SeededRng(11);
    for (let trial = 0; trial < 200; trial++) {
      const n = 2 + Math.floor(rng.next() * 40);
      const levels = 1 + Math.floor(rng.next() * 8); // few levels: many ties
      const xs = Array.from({ length: n }, () => Math.floor(rng.next() * levels));
      const ys = Array.from({ length: n }, () => Math.floor(rng.next() * 6));
      const want = bruteForce(xs, ys);
      const tau = kendallTau(xs, ys);
      const accuracy = pairwiseAccuracy(xs, ys);
      if (Number.isNaN(want.tau)) assert.ok(Number.isNaN(tau), `trial ${trial}`);
      else assert.ok(Math.abs(tau - want.tau) < 1e-12, `trial ${trial}: ${tau} vs ${want.tau}`);
      if (Number.isNaN(want.accuracy)) assert.ok(Number.isNaN(accuracy), `trial ${trial}`);
      else
        assert.ok(
          Math.abs(accuracy - want.accuracy) < 1e-12,
          `trial ${trial}: ${accuracy} vs ${want.accuracy}`,
        );
    }
  });

  it('refuse samples of different lengths', () => {
    assert.throws(() => kendallTau([1, 2], [1]), /samples of one length/);
  });
});
