/**
 * The cache-aware policies: SGLang's prefix-threshold picker (its three branches at sgl-router's
 * published thresholds) and the default policy's cost model, predicted-ttft-scorer (exact predicted
 * times on a toy profile whose step time is 1 ms + 0.01 ms per token, and the choices they imply).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Rng } from '../../src/core/rng.js';
import { ENGINE_PROFILES } from '../../src/engine-model/profiles.js';
import type { EngineProfile } from '../../src/engine-model/types.js';
import type { EndpointMetrics, EndpointView } from '../../src/framework/endpoint.js';
import type {
  EndpointLoad,
  PoolKnowledge,
  RoutingContext,
  RoutingRequest,
} from '../../src/framework/routing.js';
import { HashRing, stringKey } from '../../src/plugins/routing/hash-ring.js';
import { predictTtftMs } from '../../src/plugins/routing/predicted-ttft-scorer/index.js';
import { SGLANG_DEFAULTS } from '../../src/plugins/routing/prefix-threshold-picker/index.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { Router } from '../../src/router/router.js';
import { TOY_PROFILE } from '../helpers/profiles.js';
import { context, knowledge, request, view } from '../helpers/routing.js';

const reg = builtinRoutingRegistry();

/** An Rng that returns the given values in order (to force a tie-break). */
function scripted(...values: number[]): Rng {
  return {
    next: () => {
      const v = values.shift();
      assert.ok(v !== undefined, 'scripted rng ran out of values');
      return v;
    },
  };
}

const close = (actual: number, expected: number, what: string, tol = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} ≠ ${expected}`);

describe('prefix-threshold-picker', () => {
  const picker = reg.pickers.get('prefix-threshold-picker')!('p', {});
  const none = new Float64Array(8);

  it("uses sgl-router's published defaults", () => {
    assert.deepEqual(SGLANG_DEFAULTS, {
      cacheThreshold: 0.5,
      balanceAbsThreshold: 32,
      balanceRelThreshold: 1.5,
    });
  });

  // [name, in flight, cached prefix of this prompt (of 100 tokens), cache size, expected pick, reason]
  const cases: [string, number[], number[], number[], number, string][] = [
    [
      'imbalance wins over a prefix hit: 40 − 5 > 32 and 40 > 1.5 × 5',
      [40, 5, 10],
      [0, 0, 90],
      [0, 0, 0],
      1,
      'imbalance',
    ],
    [
      'a spread of exactly 32 is balanced: the prefix hit wins',
      [37, 5, 10],
      [0, 0, 90],
      [0, 0, 0],
      2,
      'prefix-hit',
    ],
    [
      '99 vs 66: a spread of 33, but 99 is not above 1.5 × 66',
      [99, 66],
      [0, 0],
      [0, 0],
      1,
      'most-free-cache',
    ],
    ['100 vs 66: both thresholds crossed', [100, 66], [0, 0], [0, 0], 1, 'imbalance'],
    ['a match of exactly half the prompt is not a hit', [0, 0], [50, 0], [1000, 10], 1, 'most-free-cache'],
    [
      'a match over half the prompt is a hit, whatever the cache sizes',
      [0, 0],
      [51, 0],
      [1000, 10],
      0,
      'prefix-hit',
    ],
    ['the longest match wins a hit', [0, 3, 1], [60, 80, 70], [0, 0, 0], 1, 'prefix-hit'],
    [
      'most free cache: the smallest tree, equal sizes to the lower load',
      [0, 3, 2],
      [0, 0, 0],
      [300, 100, 100],
      2,
      'most-free-cache',
    ],
  ];
  for (const [name, inFlight, cached, cachedTotal, want, reason] of cases) {
    it(name, () => {
      const views = inFlight.map((n, i) => view(`e${i}`, i, { inFlight: n, maxConcurrency: 1000 }));
      const ctx: RoutingContext = { rng: scripted(), pool: knowledge({ cached, cachedTotal }), reason: '' };
      assert.equal(picker.pick(request({ promptTokensEstimate: 100 }), views, none, ctx), want);
      assert.equal(ctx.reason, reason);
    });
  }

  it('breaks a tie of equal cache size and equal load with the seeded rng', () => {
    const views = [1, 1, 0].map((n, i) => view(`e${i}`, i, { inFlight: n }));
    const pool = knowledge({ cachedTotal: [100, 100, 300] });
    // One draw, at the second tied endpoint: it replaces the first with probability 1/2.
    const pick = (u: number) => picker.pick(request(), views, none, { rng: scripted(u), pool, reason: '' });
    assert.equal(pick(0.49), 1);
    assert.equal(pick(0.5), 0);
  });

  it('takes its thresholds from params', () => {
    const strict = reg.pickers.get('prefix-threshold-picker')!('p', {
      balanceAbsThreshold: 2,
      cacheThreshold: 0.9,
    });
    const views = [4, 1].map((n, i) => view(`e${i}`, i, { inFlight: n }));
    const ctx = context(1, knowledge({ cached: [80, 0] }));
    assert.equal(strict.pick(request({ promptTokensEstimate: 100 }), views, none, ctx), 1);
    assert.equal(ctx.reason, 'imbalance');
    assert.throws(
      () => reg.pickers.get('prefix-threshold-picker')!('p', { cacheThreshold: -1 }),
      /cacheThreshold must be a number in \[0, 1\]/,
    );
    assert.throws(
      () => reg.pickers.get('prefix-threshold-picker')!('p', { balanceRelThreshold: 0.5 }),
      /balanceRelThreshold must be a number at least 1/,
    );
  });
});

describe('predicted-ttft-scorer: predicted times', () => {
  const toy = (over: Partial<EngineProfile> = {}) => ({ info: { profile: { ...TOY_PROFILE, ...over } } });
  const predict = (
    prompt: number,
    v: EndpointView,
    pool: { cached?: number[]; loads?: Partial<EndpointLoad>[] } = {},
  ): number => predictTtftMs(request({ promptTokensEstimate: prompt }), v, context(1, knowledge(pool)));

  it('an idle toy endpoint: chunks of 64 tokens at 1 ms + 0.01 ms per token', () => {
    const e = view('e', 0, toy());
    close(predict(100, e), 2 * (1 + 0.64), 'two full steps of 64 tokens');
    close(predict(64, e), 1 + 0.64, 'one step');
    close(predict(65, e), 2 * (1 + 0.64), 'a 65th token costs a whole step: the step is priced full');
    close(predict(100, e, { cached: [40] }), 1 + 0.6, '60 uncached tokens in one step');
    close(predict(100, e, { cached: [400] }), 1 + 0.01, 'fully cached: the last token is still computed');
  });

  it('adds the prefill attention of the uncached tokens over the cached prefix', () => {
    // 1000 ms per 10^6 pairs: 1 ms per 1000 pairs. u = 60 after c = 40: 60·(40 + 30) = 4200 pairs.
    const e = view('e', 0, toy({ prefillAttnMsPerMPairs: 1000 }));
    close(predict(100, e, { cached: [40] }), 1.6 + 4.2, 'step plus attention');
    close(predict(100, e), 3.28 + 5, '100·50 pairs');
    // Fully cached: the last token is computed over the 99 before it, 1·(99 + 0.5) pairs.
    close(predict(100, e, { cached: [400] }), 1.01 + 0.0995, 'one token over 99 cached');
  });

  it('a real profile matches the step-time formula written out by hand', () => {
    const p = ENGINE_PROFILES['llama3.1-8b-h100']!;
    // One step (1000 < 8192 tokens), one request: T0 + t_req + (W^1.5 + (b·N)^1.5)^(2/3) + C_pf·N·N/2.
    const gemm = (22.9 * 1000) / 1000;
    const step = 0.68 + 0.0136 + (6.5 ** 1.5 + gemm ** 1.5) ** (2 / 3);
    const expected = step + (1.06 * 1000 * 500) / 1e6;
    close(predict(1000, view('e', 0, { info: { profile: p } })), expected, 'llama3.1-8b-h100', 1e-9);
    // An endpoint without a profile (a provider API) is modelled as this one.
    close(predict(1000, view('e', 0)), expected, 'fallback profile', 1e-9);
  });

  it('counts queued prefill, the harm to the last queued prompt, and full batches', () => {
    const e = view('e', 0, toy());
    // 630 queued + 36 own = 666 tokens: 11 steps. The last queued prefill ends 54 tokens into its
    // step, so 10 of this prompt's tokens ride there and delay it by 10 × 0.01 ms.
    close(
      predict(100, e, { cached: [64], loads: [{ requests: 3, prefilling: 3, prefillTokens: 630 }] }),
      11 * 1.64 + 0.1,
      'queue and harm',
    );
    // 10 queued: 2 steps as when idle, but 54 tokens of the first chunk delay the queued prompt.
    close(
      predict(100, e, { loads: [{ requests: 1, prefilling: 1, prefillTokens: 10 }] }),
      3.28 + 0.54,
      'harm',
    );
  });
});

describe('predicted-ttft-scorer: choices', () => {
  const scorer = reg.scorers.get('predicted-ttft-scorer')!('s', {});
  const toyInfo = { info: { profile: TOY_PROFILE } };
  const metrics = (running: number, waiting: number): EndpointMetrics => ({
    running,
    waiting,
    kvUsage: 0,
    scrapedAtMs: 0,
  });

  /** Scores two toy endpoints for a prompt; returns the scores and the reason. */
  function score(
    prompt: number,
    pool: PoolKnowledge,
    m: (EndpointMetrics | null)[] = [null, null],
  ): { out: number[]; reason: string } {
    const views = m.map((metrics, i) => view(`e${i}`, i, { ...toyInfo, metrics }));
    const out = new Float64Array(views.length);
    const ctx = context(1, pool);
    scorer.score(request({ promptTokensEstimate: prompt }), views, out, ctx);
    return { out: [...out], reason: ctx.reason };
  }

  it('with equal queues, prefers the endpoint holding the prefix (the prefill it saves)', () => {
    const { out, reason } = score(100, knowledge({ cached: [0, 64] }));
    close(out[0]!, 1.36 / 3.28, 'e0');
    assert.equal(out[1], 1);
    assert.equal(reason, 'cache-affinity');
  });

  it('prefers an idle endpoint over the prefix holder with a long prefill queue', () => {
    const pool = knowledge({ cached: [64, 0], loads: [{ requests: 3, prefilling: 3, prefillTokens: 630 }] });
    const { out, reason } = score(100, pool);
    close(out[0]!, 3.28 / 18.14, 'e0');
    assert.equal(out[1], 1);
    assert.equal(reason, 'load-over-cache');
  });

  it('without any cached prefix, says least-ttft', () => {
    const { out, reason } = score(
      100,
      knowledge({ loads: [{ requests: 1, prefilling: 1, prefillTokens: 200 }] }),
    );
    assert.deepEqual(
      out.map((s) => s === 1),
      [false, true],
    );
    assert.equal(reason, 'least-ttft');
  });

  it('does not stack a long prompt onto a short prefill in flight, though its own TTFT would be equal', () => {
    // Own TTFT: 2 steps on either (110 or 100 queued tokens); e0 adds 0.54 ms to the queued prompt.
    const pool = knowledge({ loads: [{ requests: 1, prefilling: 1, prefillTokens: 10 }] });
    const { out } = score(100, pool);
    close(out[0]!, 3.28 / 3.82, 'e0');
    assert.equal(out[1], 1);
    // Through the router, every seed sends it to the idle endpoint (no tie left to break).
    for (let seed = 1; seed <= 5; seed++) {
      const maxScore = reg.pickers.get('max-score-picker')!('p', {});
      const views = [view('e0', 0, toyInfo), view('e1', 1, toyInfo)];
      const s = new Float64Array(out);
      assert.equal(maxScore.pick(request(), views, s, context(seed, pool)), 1);
    }
  });

  it("uses the engine's running + waiting when it exceeds the router's own count", () => {
    // 6 decoding elsewhere leave 58 tokens per step: 120 tokens take 3 steps instead of 2.
    const busy = score(120, knowledge(), [metrics(4, 2), null]);
    close(busy.out[0]!, 3.28 / 4.92, 'e0 busy with another client');
    assert.equal(busy.out[1], 1);
    // The router's own 6 decoding requests count the same; a smaller engine count does not lower it.
    const own = knowledge({ loads: [{ requests: 6 }] });
    const view0 = view('e0', 0, { ...toyInfo, metrics: metrics(1, 1) });
    close(predictTtftMs(request({ promptTokensEstimate: 120 }), view0, context(1, own)), 4.92, 'own count');
    // 12 in the engine: 8 decode (max_num_seqs), and 5 wait for a slot, each slot freeing after
    // 256 mean output tokens × a 1.08 ms decode step ÷ 8 slots.
    const full = view('e0', 0, { ...toyInfo, metrics: metrics(10, 2) });
    close(
      predictTtftMs(request({ promptTokensEstimate: 120 }), full, context(1, knowledge())),
      3 * 1.64 + (5 * 256 * 1.08) / 8,
      'full batch',
    );
  });

  it('through the router: sticks to the prefix holder until its queue outweighs the saved prefill', () => {
    const r = new Router(
      ROUTING_PRESETS.default!,
      reg,
      [TOY_PROFILE, TOY_PROFILE].map((profile) => ({
        profile,
        weight: 1,
        labels: {},
      })),
    );
    const fleet = [view('e0', 0, toyInfo), view('e1', 1, toyInfo)];
    const hashes = [1, 2, 3, 4, 5, 6];
    const pre = (id: string) =>
      request({ id, promptTokensEstimate: 100, prefixHashes: hashes, prefixBlockTokens: 16 });
    r.route(pre('seed'), [fleet[0]!]);
    r.finished('seed', { ok: true, cachedTokens: null, outputTokens: 256 });
    // 96 of 100 tokens cached on e0: 1.04 ms there against 3.28 ms on e1.
    assert.equal(r.route(pre('h1'), fleet).id, 'e0');
    assert.equal(r.lastReason, 'cache-affinity');
    assert.equal(r.lastCachedTokens, 96);
    // A 1000-token prompt queued on e0 (16 steps ahead): the next turn goes to the idle e1.
    r.route(request({ id: 'big', promptTokensEstimate: 1000 }), [fleet[0]!]);
    assert.equal(r.route(pre('h2'), fleet).id, 'e1');
    assert.equal(r.lastReason, 'load-over-cache');
    assert.equal(r.lastCachedTokens, 0);
  });
});

describe('predicted-ttft-scorer: a prompt family’s home among near-ties', () => {
  const scorer = reg.scorers.get('predicted-ttft-scorer')!('s', {});
  const idle = (n: number) =>
    Array.from({ length: n }, (_, i) => view(`e${i}`, i, { info: { profile: TOY_PROFILE } }));
  /** Where the key lands on the scorer's ring: the first candidate clockwise (computed independently). */
  const ringHome = (ids: string[], key: number): string => {
    const ring = new HashRing(ids, 100, 0x7e3a91c5);
    return ids[ring.owner(ring.start(key))]!;
  };
  const scores = (req: RoutingRequest, views: EndpointView[], pool = knowledge()): number[] => {
    const out = new Float64Array(views.length);
    scorer.score(req, views, out, context(1, pool));
    return [...out];
  };

  it('equal predictions: the replica the prefix key hashes to scores 1, the other near-ties 0.99', () => {
    const views = idle(4);
    for (const key of [11, 222, 3333, 44444]) {
      const req = request({ promptTokensEstimate: 2048, prefixHashes: [7, key], prefixBlockTokens: 512 });
      const home = ringHome(['e0', 'e1', 'e2', 'e3'], key);
      const s = scores(req, views);
      assert.deepEqual(
        s.map((v, i) => (v === 1 ? views[i]!.id : v)),
        views.map((v) => (v.id === home ? home : 0.99)),
        `key ${key}`,
      );
    }
  });

  it('the key is the first 1,024 tokens: prompts that differ later share a home; a session id wins', () => {
    const views = idle(4);
    const a = scores(
      request({ promptTokensEstimate: 4096, prefixHashes: [1, 2, 3, 4], prefixBlockTokens: 512 }),
      views,
    );
    const b = scores(
      request({ promptTokensEstimate: 4096, prefixHashes: [1, 2, 9, 9], prefixBlockTokens: 512 }),
      views,
    );
    assert.deepEqual(a, b);
    const withSession = request({
      promptTokensEstimate: 4096,
      prefixHashes: [1, 2],
      prefixBlockTokens: 512,
      sessionId: 'chat-9',
    });
    const s = scores(withSession, views);
    assert.equal(views[s.indexOf(1)]!.id, ringHome(['e0', 'e1', 'e2', 'e3'], stringKey('chat-9')));
  });

  it('does not override a clearly faster candidate, nor one holding more of the prompt', () => {
    const views = idle(2);
    const key = [0, 1, 2, 3, 4, 5].find((k) => ringHome(['e0', 'e1'], k) === 'e1')!;
    const req = request({ promptTokensEstimate: 2048, prefixHashes: [5, key], prefixBlockTokens: 512 });
    // e1 is home but has a long prefill queue: far outside the band, e0 stays best.
    const busy = knowledge({ loads: [{}, { requests: 3, prefilling: 3, prefillTokens: 5000 }] });
    assert.deepEqual(
      scores(req, views, busy).map((v) => v === 1),
      [true, false],
    );
    // e0 holds 512 tokens of the prompt, e1 (home) nothing: e0 stays best.
    assert.deepEqual(
      scores(req, views, knowledge({ cached: [512, 0] })).map((v) => v === 1),
      [true, false],
    );
  });
});
