/** The output-length predictor learns a synthetic relation; the rank statistics match brute force. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng } from '../../src/core/rng.js';
import {
  kendallTau,
  OutputLengthPredictor,
  type PredictorFeatures,
  type PredictorOptions,
  pairwiseAccuracy,
  spearmanRho,
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
      prefixHashes: [],
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
      prefixHashes: [],
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
      prefixHashes: [],
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

  describe('prefix families', () => {
    /** A request with no text and no session, whose prompt has the given chained block hashes. */
    const req = (...prefixHashes: number[]): PredictorFeatures => ({
      promptTokens: 1000,
      maxTokens: null,
      tenant: 't',
      model: 'm',
      lastUserText: null,
      sessionId: null,
      prefixHashes,
    });
    /** The same history learned with and without families. */
    const twins = (opts: PredictorOptions, history: [PredictorFeatures, number][]) => {
      const p = new OutputLengthPredictor(opts);
      const global = new OutputLengthPredictor({ ...opts, families: 0 });
      for (const [f, out] of history) {
        p.learn(f, out);
        global.learn(f, out);
      }
      return { p, global };
    };

    it("predict a family's mean log output, from its first two blocks by default", () => {
      const { p } = twins({}, [
        [req(1, 2, 3), 99],
        [req(1, 2, 4, 5), 399],
        [req(1, 7), 9_999], // another conversation under the same first block
      ]);
      // Family (1, 2): exp((ln 100 + ln 400) / 2) − 1 = 199, whatever follows the second block.
      assert.ok(Math.abs(p.predict(req(1, 2)) - 199) < 1e-9, `${p.predict(req(1, 2))}`);
      assert.ok(Math.abs(p.predict(req(1, 2, 8, 9)) - 199) < 1e-9);
      assert.ok(Math.abs(p.predict(req(1, 7, 8)) - 9_999) < 1e-6);
      assert.equal(p.predict({ ...req(1, 2), maxTokens: 50 }), 50);
    });

    it('back off to the regression without a family with history, or where text or the session speaks', () => {
      const history: [PredictorFeatures, number][] = [
        [req(1, 2, 3), 99],
        [req(1, 2), 399],
        [{ ...req(1, 2), sessionId: 's' }, 30],
      ];
      const { p, global } = twins({}, history);
      for (const f of [
        req(1, 3), // a family never seen
        req(1), // too short to have a family
        req(), // no full block at all
        { ...req(1, 2), lastUserText: 'Write an essay' },
        { ...req(1, 2), sessionId: 's' }, // the session's last output is known
      ])
        assert.equal(p.predict(f), global.predict(f), JSON.stringify(f));
      // An unknown session says nothing: the family does.
      assert.notEqual(p.predict({ ...req(1, 2), sessionId: 'new' }), global.predict(req(1, 2)));
    });

    it('use the deepest family with history, then shallower ones', () => {
      const { p } = twins({ familyDepths: [1, 3] }, [
        [req(1, 2, 3), 99],
        [req(1, 5, 6), 399],
      ]);
      assert.ok(Math.abs(p.predict(req(1, 2, 3, 4)) - 99) < 1e-9); // depth 3: (1, 2, 3)
      assert.ok(Math.abs(p.predict(req(1, 2, 4)) - 199) < 1e-9); // depth 3 unseen: depth 1, both
      assert.ok(Math.abs(p.predict(req(1)) - 199) < 1e-9);
    });

    it('remember at most `families` families, forgetting the least recently learned from', () => {
      const { p, global } = twins({ families: 3 }, []);
      for (let i = 0; i < 100; i++) {
        p.learn(req(0, i), 10 + i);
        global.learn(req(0, i), 10 + i);
        assert.ok(p.familyCount <= 3, `${p.familyCount} families`);
      }
      assert.equal(p.familyCount, 3);
      assert.equal(p.predict(req(0, 96)), global.predict(req(0, 96))); // forgotten
      assert.ok(Math.abs(p.predict(req(0, 97)) - 107) < 1e-9);
      // Learning from a family again makes it the most recent: 97 outlives 98 and 99.
      p.learn(req(0, 97), 107);
      p.learn(req(0, 200), 5);
      p.learn(req(0, 201), 5);
      assert.ok(Math.abs(p.predict(req(0, 97)) - 107) < 1e-9);
      assert.equal(p.familyCount, 3);
      assert.equal(new OutputLengthPredictor({ families: 0 }).familyCount, 0);
    });
  });

  it('refuses to learn a non-finite output length', () => {
    const f: PredictorFeatures = {
      promptTokens: 1,
      maxTokens: null,
      tenant: 't',
      model: 'm',
      lastUserText: null,
      sessionId: null,
      prefixHashes: [],
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

  it("Spearman's rho is Pearson's correlation of mean ranks", () => {
    assert.equal(spearmanRho([1, 2, 3, 4], [10, 20, 30, 400]), 1);
    assert.equal(spearmanRho([1, 2, 3, 4], [40, 30, 20, 10]), -1);
    assert.ok(Number.isNaN(spearmanRho([1, 1, 1], [1, 2, 3])));
    // Ranks (1.5, 1.5, 3, 4) and (1, 3, 2, 4): Σ dx·dy = 3, Σ dx² = 4.5, Σ dy² = 5.
    assert.ok(Math.abs(spearmanRho([7, 7, 8, 9], [1, 3, 2, 4]) - 3 / Math.sqrt(4.5 * 5)) < 1e-12);
  });

  it('refuse samples of different lengths', () => {
    assert.throws(() => kendallTau([1, 2], [1]), /samples of one length/);
    assert.throws(() => spearmanRho([1, 2], [1]), /samples of one length/);
  });
});
