/**
 * The simpler endpoint policies (random, least-kv, least-work, p2c, session, weighted) and the
 * label filter and weighted-score picker: exact expected choices on hand-built states.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Rng, SeededRng } from '../../src/core/rng.js';
import { type EndpointView, PLAIN_ENDPOINT } from '../../src/framework/endpoint.js';
import type { EndpointLoad, Picker, PoolKnowledge, RoutingContext } from '../../src/framework/routing.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import type { SessionAffinityPicker } from '../../src/plugins/routing/session-affinity-picker/index.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { Router } from '../../src/router/router.js';
import { context, knowledge, request, view } from '../helpers/routing.js';

const reg = builtinRoutingRegistry();
const picker = (type: string, params: Record<string, unknown> = {}): Picker =>
  reg.pickers.get(type)!('p', params);
const none = new Float64Array(8);
const infos = (n: number) => Array.from({ length: n }, () => PLAIN_ENDPOINT);

/** An Rng that returns the given values in order (to force which candidates a draw lands on). */
function scripted(...values: number[]): Rng {
  return {
    next: () => {
      const v = values.shift();
      assert.ok(v !== undefined, 'scripted rng ran out of values');
      return v;
    },
  };
}

const ctxWith = (rng: Rng, pool: PoolKnowledge = knowledge()): RoutingContext => ({ rng, pool, reason: '' });
const loads = (...l: Partial<EndpointLoad>[]) => knowledge({ loads: l });

describe('random-picker', () => {
  it('ignores scores, draws uniformly and says so', () => {
    const p = picker('random-picker');
    const three = [view('a', 0), view('b', 1), view('c', 2)];
    const c = ctxWith(scripted(0.1, 0.5, 0.99));
    const picks = [0, 1, 2].map(() => p.pick(request(), three, new Float64Array([1, 0, 0]), c));
    assert.deepEqual(picks, [0, 1, 2]);
    assert.equal(c.reason, 'random');
    const counts = [0, 0, 0];
    const seeded = context(11);
    for (let i = 0; i < 3000; i++) counts[p.pick(request(), three, none, seeded)]!++;
    for (const n of counts) assert.ok(n > 900 && n < 1100, `counts ${counts}`);
  });
});

describe('kv-usage-scorer', () => {
  const scorer = reg.scorers.get('kv-usage-scorer')!('s', {});
  const kv = (id: string, i: number, kvUsage: number | null) =>
    view(id, i, { metrics: kvUsage === null ? null : { running: 0, waiting: 0, kvUsage, scrapedAtMs: 0 } });
  const cases: [string, (number | null)[], number[]][] = [
    [
      'free KV on an absolute scale; an unscraped endpoint scores the mean',
      [0.25, 0.75, null],
      [0.75, 0.25, 0.5],
    ],
    ['nothing scraped is neutral', [null, null], [1, 1]],
    ['usage reported above 1 counts as full', [1.5, 0], [0, 1]],
  ];
  for (const [name, usage, expected] of cases) {
    it(name, () => {
      const out = new Float64Array(usage.length);
      scorer.score(
        request(),
        usage.map((u, i) => kv(`e${i}`, i, u)),
        out,
        context(),
      );
      assert.deepEqual([...out], expected);
    });
  }

  it('least-kv preset routes to the lowest KV usage, skipping a full endpoint', () => {
    const r = new Router(ROUTING_PRESETS['least-kv']!, reg, infos(3));
    const views = [kv('a', 0, 0.6), kv('b', 1, 0.3), view('c', 2, { inFlight: 10 })];
    assert.equal(r.route(request({ id: 'q1' }), views).id, 'b');
    assert.equal(r.route(request({ id: 'q2' }), [kv('a', 0, 0.6), kv('b', 1, 0.7)]).id, 'a');
  });
});

describe('least-work-scorer', () => {
  const scorer = reg.scorers.get('least-work-scorer')!('s', {});
  const cases: [string, Partial<EndpointLoad>[], number[]][] = [
    [
      'queued prefill plus outstanding decode, rescaled over the candidates',
      [{ prefillTokens: 100, decodeTokens: 300 }, {}, { prefillTokens: 200 }],
      [0, 1, 0.5],
    ],
    ['equal work is neutral', [{ decodeTokens: 50 }, { prefillTokens: 50 }], [1, 1]],
  ];
  for (const [name, l, expected] of cases) {
    it(name, () => {
      const views = l.map((_, i) => view(`e${i}`, i));
      const out = new Float64Array(views.length);
      scorer.score(request(), views, out, context(1, knowledge({ loads: l })));
      assert.deepEqual([...out], expected);
    });
  }

  it('least-work preset follows the router ledger: one long prompt outweighs one short one', () => {
    const r = new Router(ROUTING_PRESETS['least-work']!, reg, infos(2), new SeededRng(4));
    const views = [view('a', 0), view('b', 1)];
    const first = r.route(request({ id: 'long', promptTokensEstimate: 4000 }), views).id;
    const other = first === 'a' ? 'b' : 'a';
    // Same request count on both after this, but far less work where the short one went.
    assert.equal(r.route(request({ id: 'short', promptTokensEstimate: 10 }), views).id, other);
    assert.equal(r.route(request({ id: 'next', promptTokensEstimate: 10 }), views).id, other);
    r.finished('long', { ok: true, cachedTokens: null, outputTokens: null });
    assert.equal(r.route(request({ id: 'after', promptTokensEstimate: 10 }), views).id, first);
  });
});

describe('p2c-picker', () => {
  const four = (inFlight: number[]) => inFlight.map((n, i) => view(`e${i}`, i, { inFlight: n }));

  it('draws two distinct candidates and keeps the less loaded', () => {
    const p = picker('p2c-picker');
    const c = four([5, 2, 7, 1]);
    // 0.6 × 4 → e2; 0.0 × 3 → e0 (the others are e0, e1, e3): 7 vs 5 in flight → e0.
    const ctx = ctxWith(scripted(0.6, 0.0));
    assert.equal(p.pick(request(), c, none, ctx), 0);
    assert.equal(ctx.reason, 'p2c');
    // e0 first, then 0.0 × 3 → e1 (e0 is skipped): 5 vs 2 → e1; e3, the global best, was not drawn.
    assert.equal(p.pick(request(), c, none, ctxWith(scripted(0.1, 0.0))), 1);
    // A lone candidate is taken without drawing.
    assert.equal(p.pick(request(), c.slice(0, 1), none, ctxWith(scripted())), 0);
  });

  it('breaks an in-flight tie by queued prefill tokens; load=work compares tokens first', () => {
    const c = four([3, 3]);
    const pool = loads({ prefillTokens: 900, decodeTokens: 0 }, { prefillTokens: 100, decodeTokens: 2000 });
    assert.equal(picker('p2c-picker').pick(request(), c, none, ctxWith(scripted(0.0, 0.0), pool)), 1);
    assert.equal(
      picker('p2c-picker', { load: 'work' }).pick(request(), c, none, ctxWith(scripted(0.0, 0.0), pool)),
      0,
    );
    assert.throws(() => picker('p2c-picker', { load: 'tokens' }), /load must be one of requests, work/);
  });

  it('never picks the worse of its pair', () => {
    const p = picker('p2c-picker');
    const inFlight = [4, 0, 9, 2, 6, 1, 8, 3];
    const c = four(inFlight);
    const seeded = new SeededRng(9);
    const drawn: number[] = [];
    const recording: Rng = {
      next: () => {
        const v = seeded.next();
        drawn.push(v);
        return v;
      },
    };
    const ctx = ctxWith(recording);
    const n = c.length;
    const seen = new Set<number>();
    for (let k = 0; k < 500; k++) {
      drawn.length = 0;
      const chosen = p.pick(request(), c, none, ctx);
      const a = Math.floor(drawn[0]! * n);
      let b = Math.floor(drawn[1]! * (n - 1));
      if (b >= a) b++;
      assert.notEqual(a, b);
      assert.ok(chosen === a || chosen === b);
      assert.equal(inFlight[chosen], Math.min(inFlight[a]!, inFlight[b]!));
      seen.add(chosen);
    }
    // Only the most loaded endpoint (9 in flight) can never win its pair.
    assert.deepEqual([...seen].sort(), [0, 1, 3, 4, 5, 6, 7]);
  });
});

describe('session-affinity-picker', () => {
  const sess = (id: string, sessionId: string | null) => request({ id, sessionId });
  const fleet = (a: number, b: number, c: number, over: Partial<EndpointView> = {}) => [
    view('a', 0, { inFlight: a, ...over }),
    view('b', 1, { inFlight: b }),
    view('c', 2, { inFlight: c }),
  ];

  it('sticks to the home endpoint, overflows when it is overloaded, then sticks to the new one', () => {
    const r = new Router(ROUTING_PRESETS.session!, reg, infos(3));
    const steps: [string, EndpointView[], string, string][] = [
      ['t1', fleet(0, 2, 1), 'a', 'new-session'],
      ['t2', fleet(5, 0, 0), 'a', 'sticky'], // 5 < 0.9 × 10: stays despite idler endpoints
      ['t3', fleet(8, 0, 0), 'a', 'sticky'],
      ['t4', fleet(9, 3, 1), 'c', 'overflow'], // 9 ≥ 0.9 × 10
      ['t5', fleet(0, 0, 4), 'c', 'sticky'], // the session now lives on c
      ['t6', fleet(0, 0, 0, { healthy: false }), 'c', 'sticky'],
    ];
    for (const [id, views, want, reason] of steps) {
      assert.equal(r.route(sess(id, 'S'), views).id, want, id);
      assert.equal(r.lastReason, reason, id);
    }
    // Home filtered out (unhealthy) → overflow to the least loaded of the rest.
    const sick = [view('a', 0), view('b', 1, { inFlight: 1 }), view('c', 2, { healthy: false })];
    assert.equal(r.route(sess('t7', 'S'), sick).id, 'a');
    assert.equal(r.lastReason, 'overflow');
  });

  it('overflows when queued uncached prefill on the home endpoint exceeds maxPrefillTokens', () => {
    const p = picker('session-affinity-picker', { maxPrefillTokens: 1000 });
    p.onRouted!(sess('r0', 'S'), 0, context());
    const c = fleet(0, 1, 2);
    const at = (prefill: number) => ctxWith(new SeededRng(1), loads({ prefillTokens: prefill }));
    const ctx = at(1000);
    assert.equal(p.pick(sess('r1', 'S'), c, none, ctx), 0);
    assert.equal(ctx.reason, 'sticky');
    const over = at(1001);
    assert.equal(p.pick(sess('r2', 'S'), c, none, over), 1);
    assert.equal(over.reason, 'overflow');
    const alone = at(1001);
    assert.equal(p.pick(sess('r3', 'S'), c.slice(0, 1), none, alone), 0, 'nowhere else to go');
    assert.equal(alone.reason, 'sticky');
  });

  it('sends requests without a session to the least loaded, ties broken by queued prefill', () => {
    const p = picker('session-affinity-picker');
    const ctx = ctxWith(new SeededRng(1), loads({ prefillTokens: 500 }, { prefillTokens: 50 }, {}));
    assert.equal(p.pick(sess('r', null), fleet(1, 1, 4), none, ctx), 1);
    assert.equal(ctx.reason, 'no-session');
  });

  it('forgets the least recently routed session when the table is full', () => {
    const p = picker('session-affinity-picker', { maxSessions: 2 }) as SessionAffinityPicker;
    const routed = (s: string, index: number) => p.onRouted(sess(`r-${s}`, s), index);
    routed('s1', 0);
    routed('s2', 1);
    routed('s1', 0); // s1 used again: s2 is now the oldest
    routed('s3', 2);
    assert.equal(p.sessions, 2);
    const c = fleet(3, 3, 3);
    const reasonFor = (s: string) => {
      const ctx = context(2);
      const i = p.pick(sess('q', s), c, none, ctx);
      return `${ctx.reason}@${i}`;
    };
    assert.equal(reasonFor('s1'), 'sticky@0');
    assert.equal(reasonFor('s3'), 'sticky@2');
    assert.match(reasonFor('s2'), /^new-session@/);
    assert.throws(() => picker('session-affinity-picker', { maxInFlightRatio: 1.5 }), /in \[0, 1\]/);
    assert.throws(() => picker('session-affinity-picker', { maxSessions: 2.5 }), /integer/);
  });
});

describe('weighted-round-robin-picker', () => {
  const weighted = (w: number[]) => w.map((weight, i) => view('abcdef'[i]!, i, { info: { weight } }));

  it("gives exact 5:1:1 shares over a cycle, in nginx's smooth order", () => {
    const p = picker('weighted-round-robin-picker');
    const c = weighted([5, 1, 1]);
    const ctx = context();
    const picks = Array.from({ length: 14 }, () => c[p.pick(request(), c, none, ctx)]!.id).join('');
    assert.equal(picks, 'aabacaa'.repeat(2));
    assert.equal(ctx.reason, 'weighted');
  });

  it('freezes a filtered-out endpoint and resumes it where it left off', () => {
    const p = picker('weighted-round-robin-picker');
    const all = weighted([1, 1, 1]);
    const ctx = context();
    const picks = [all, all.slice(1), all, all].map((c) => c[p.pick(request(), c, none, ctx)]!.id);
    // current after each pick: a (−2,1,1); b of b,c only (−2,0,2); c (−1,1,0); b (0,−1,1).
    assert.deepEqual(picks, ['a', 'b', 'c', 'b']);
  });

  it('weighted preset splits by the configured weights through the router', () => {
    const r = new Router(ROUTING_PRESETS.weighted!, reg, infos(2));
    const c = weighted([3, 1]);
    const picks = Array.from({ length: 8 }, (_, k) => r.route(request({ id: `q${k}` }), c).id).join('');
    assert.equal(picks, 'aaba'.repeat(2));
  });
});

describe('label-filter', () => {
  const labelled = [
    view('edge-small', 0, { info: { labels: { tier: 'small', locality: 'edge' } } }),
    view('cloud-small', 1, { info: { labels: { tier: 'small', locality: 'cloud' } } }),
    view('onprem-small', 2, { info: { labels: { tier: 'small', locality: 'onprem' } } }),
    view('edge-large', 3, { info: { labels: { tier: 'large', locality: 'edge' } } }),
    view('unlabelled', 4),
  ];
  const ids = (params: Record<string, unknown>) =>
    reg.filters.get('label-filter')!('f', params)
      .filter(request(), labelled, context())
      .map((v) => v.id);

  it('keeps endpoints whose labels match every key, with one value or a list', () => {
    assert.deepEqual(ids({ labels: { tier: 'small', locality: ['edge', 'onprem'] } }), [
      'edge-small',
      'onprem-small',
    ]);
    assert.deepEqual(ids({ labels: { locality: 'edge' } }), ['edge-small', 'edge-large']);
    assert.deepEqual(ids({ labels: { zone: 'eu' } }), []);
  });

  it('an empty selector keeps everything and returns the same array', () => {
    const f = reg.filters.get('label-filter')!('f', { labels: {} });
    assert.equal(f.filter(request(), labelled, context()), labelled);
  });

  it('refuses a malformed selector, naming the key', () => {
    assert.throws(() => ids({ labels: ['tier'] }), /labels must map/);
    assert.throws(() => ids({ labels: { tier: [] } }), /labels\.tier must/);
    assert.throws(() => ids({ labels: { tier: 3 } }), /labels\.tier must/);
  });
});

describe('weighted-score-picker', () => {
  const three = [view('a', 0), view('b', 1), view('c', 2)];

  it('without a temperature, picks in proportion to the score and never a zero score', () => {
    const p = picker('weighted-score-picker');
    const s = new Float64Array([0, 3, 1]);
    // u × Σ = u × 4: [0, 3) → b, [3, 4) → c.
    const draws = [0.0, 0.5, 0.74, 0.8, 0.999].map((u) => p.pick(request(), three, s, ctxWith(scripted(u))));
    assert.deepEqual(draws, [1, 1, 1, 2, 2]);
    const counts = [0, 0, 0];
    const ctx = context(5);
    for (let i = 0; i < 4000; i++) counts[p.pick(request(), three, s, ctx)]!++;
    assert.equal(counts[0], 0);
    assert.ok(counts[1]! > 2850 && counts[1]! < 3150, `counts ${counts}`);
    assert.equal(ctx.reason, 'weighted-score');
  });

  it('temperature 0 is argmax; a positive one is a softmax over range-normalised scores', () => {
    const s = new Float64Array([0.2, 0.9, 0.5]);
    assert.equal(picker('weighted-score-picker', { temperature: 0 }).pick(request(), three, s, context()), 1);
    // T = 1 on scores {0, 1}: weights e^−1 and 1, so a wins for u < e^−1 / (1 + e^−1) ≈ 0.2689.
    const soft = picker('weighted-score-picker', { temperature: 1 });
    const pair = three.slice(0, 2);
    const two = new Float64Array([0, 1]);
    assert.equal(soft.pick(request(), pair, two, ctxWith(scripted(0.26))), 0);
    assert.equal(soft.pick(request(), pair, two, ctxWith(scripted(0.27))), 1);
    // The same spread scaled by 10 (a scorer weight of 10) gives the same split.
    assert.equal(soft.pick(request(), pair, new Float64Array([0, 10]), ctxWith(scripted(0.26))), 0);
    assert.equal(soft.pick(request(), pair, new Float64Array([5, 5]), ctxWith(scripted(0.7))), 1);
    assert.throws(() => picker('weighted-score-picker', { temperature: -1 }), /temperature must be/);
  });
});
