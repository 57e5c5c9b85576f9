/**
 * Routing plugins: a conformance suite run against every registered plugin, then table-driven
 * tests of each policy over hand-built snapshots.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SwitchyardError } from '../../src/core/errors.js';
import { PLAIN_ENDPOINT } from '../../src/framework/endpoint.js';
import type { RoutingContext, RoutingRequest } from '../../src/framework/routing.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { Router } from '../../src/router/router.js';
import { context, knowledge, request, view } from '../helpers/routing.js';

const req = (excluded: string[] = []): RoutingRequest => request({ excludedIds: excluded });
const ctx = (seed = 1): RoutingContext => context(seed);
const infos = (n: number) => Array.from({ length: n }, () => PLAIN_ENDPOINT);

const fleet = [
  view('a', 0, { inFlight: 3 }),
  view('b', 1, { inFlight: 0 }),
  view('c', 2, { inFlight: 9, healthy: false }),
  view('d', 3, { inFlight: 10 }),
  view('e', 4, { inFlight: 1, circuit: 'open' }),
];

describe('routing plugin conformance', () => {
  const reg = builtinRoutingRegistry();
  for (const [type, make] of reg.filters) {
    it(`filter ${type}: output is a subset of the input, in order`, () => {
      const out = make('f', {}).filter(req(), fleet, ctx());
      const ids = fleet.map((v) => v.id);
      let last = -1;
      for (const v of out) {
        const at = ids.indexOf(v.id);
        assert.ok(at > last);
        last = at;
      }
    });
  }
  for (const [type, make] of reg.scorers) {
    it(`scorer ${type}: scores lie in [0, 1] and equal inputs score equal`, () => {
      const out = new Float64Array(fleet.length);
      make('s', {}).score(req(), fleet, out, ctx());
      for (const s of out) assert.ok(s >= 0 && s <= 1);
      const same = new Float64Array(2);
      make('s', {}).score(req(), [view('x', 0, { inFlight: 2 }), view('y', 1, { inFlight: 2 })], same, ctx());
      assert.equal(same[0], same[1]);
    });
  }
  for (const [type, make] of reg.pickers) {
    it(`picker ${type}: returns a valid index, and the same seed gives the same picks`, () => {
      const scores = new Float64Array([1, 1, 1, 0.5, 1]);
      const run = (seed: number) => {
        const p = make('p', {});
        const c = ctx(seed);
        return Array.from({ length: 20 }, () => p.pick(req(), fleet, scores, c));
      };
      const a = run(7);
      for (const i of a) assert.ok(i >= 0 && i < fleet.length);
      assert.deepEqual(a, run(7));
    });
  }
});

describe('routing policies', () => {
  const reg = builtinRoutingRegistry();

  it('healthy-filter drops unhealthy, circuit-open and already-tried endpoints', () => {
    const f = reg.filters.get('healthy-filter')!('f', {});
    assert.deepEqual(
      f.filter(req(), fleet, ctx()).map((v) => v.id),
      ['a', 'b', 'd'],
    );
    assert.deepEqual(
      f.filter(req(['b']), fleet, ctx()).map((v) => v.id),
      ['a', 'd'],
    );
    const all = [view('a', 0), view('b', 1, { circuit: 'half-open' })];
    assert.equal(f.filter(req(), all, ctx()), all, 'nothing dropped: the same array back');
  });

  it('capacity-filter drops endpoints at maxConcurrency', () => {
    const f = reg.filters.get('capacity-filter')!('f', {});
    assert.deepEqual(
      f.filter(req(), fleet, ctx()).map((v) => v.id),
      ['a', 'b', 'c', 'e'],
    );
  });

  it('capacity-filter drops endpoints at maxPrefilling from the ledger, scraped or not', () => {
    const f = reg.filters.get('capacity-filter')!('f', {});
    const gate = (maxPrefilling: number | null) => ({
      info: { gate: { maxEngineWaiting: null, maxKvUsage: null, maxPrefilling } },
    });
    const scraped = { running: 0, waiting: 0, kvUsage: 0, scrapedAtMs: 0 };
    const views = [
      view('a', 0, gate(1)), // 1 prefilling ≥ 1: dropped
      view('b', 1, gate(2)), // 1 prefilling < 2: kept
      view('c', 2, { ...gate(2), metrics: scraped }), // 2 ≥ 2, scraped: dropped
      view('d', 3, gate(null)), // no limit: kept whatever the ledger says
      view('e', 4), // no gate at all: kept
      view('f', 5, gate(1)), // nothing prefilling (requests decoding do not count): kept
    ];
    const pool = knowledge({
      loads: [
        { requests: 1, prefilling: 1 },
        { requests: 3, prefilling: 1 },
        { requests: 2, prefilling: 2 },
        { requests: 9, prefilling: 9 },
        { requests: 9, prefilling: 9 },
        { requests: 5, prefilling: 0 },
      ],
    });
    assert.deepEqual(
      f.filter(req(), views, context(1, pool)).map((v) => v.id),
      ['b', 'd', 'e', 'f'],
    );
    // The same gate on an idle ledger keeps everything (the same array back).
    assert.equal(f.filter(req(), views, context(1, knowledge())), views);
  });

  const lor: [string, number[], number[]][] = [
    ['spread', [0, 5, 10], [1, 0.5, 0]],
    ['all equal is neutral', [4, 4], [1, 1]],
    ['single', [7], [1]],
  ];
  for (const [name, inflight, expected] of lor) {
    it(`least-outstanding-scorer: ${name}`, () => {
      const views = inflight.map((n, i) => view(`v${i}`, i, { inFlight: n }));
      const out = new Float64Array(views.length);
      reg.scorers.get('least-outstanding-scorer')!('s', {}).score(req(), views, out, ctx());
      assert.deepEqual([...out], expected);
    });
  }

  it('max-score-picker takes the best and breaks ties evenly with the seeded rng', () => {
    const p = reg.pickers.get('max-score-picker')!('p', {});
    assert.equal(p.pick(req(), fleet.slice(0, 3), new Float64Array([0.2, 0.9, 0.5]), ctx()), 1);
    const counts = [0, 0, 0];
    const c = ctx(3);
    for (let i = 0; i < 3000; i++)
      counts[p.pick(req(), fleet.slice(0, 3), new Float64Array([1, 1, 1]), c)]!++;
    for (const n of counts) assert.ok(n > 900 && n < 1100, `tie counts ${counts}`);
  });

  it('round-robin-picker rotates by endpoint index, undisturbed by a filtered endpoint', () => {
    const p = reg.pickers.get('round-robin-picker')!('p', {});
    const all = [view('a', 0), view('b', 1), view('c', 2)];
    const s = new Float64Array(3);
    const picks = [all, all, [all[0]!, all[2]!], all, all].map((c) => c[p.pick(req(), c, s, ctx())]!.id);
    assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b']);
  });
});

describe('Router', () => {
  const reg = builtinRoutingRegistry();

  it('least-outstanding preset picks the healthy endpoint with the fewest in flight', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(fleet.length));
    assert.equal(r.route(req(), fleet).id, 'b');
    assert.equal(r.route(req(['b']), fleet).id, 'a');
  });

  it('applies weights and clamps out-of-range scores', () => {
    const spec = {
      filters: [],
      scorers: [{ type: 'least-outstanding-scorer', weight: 3, params: {} }],
      picker: { type: 'max-score-picker', params: {} },
    };
    const r = new Router(spec, reg, infos(2));
    assert.equal(r.route(req(), [view('x', 0, { inFlight: 2 }), view('y', 1, { inFlight: 1 })]).id, 'y');
  });

  it('says overloaded when healthy endpoints are full, unavailable when none is healthy', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(2));
    const full = [view('a', 0, { inFlight: 10 }), view('b', 1, { inFlight: 10 })];
    assert.throws(
      () => r.route(req(), full),
      (e: unknown) => (e as SwitchyardError).code === 'SWY_ERR_OVERLOADED',
    );
    const sick = [view('a', 0, { healthy: false }), view('b', 1, { circuit: 'open' })];
    assert.throws(
      () => r.route(req(), sick),
      (e: unknown) => (e as SwitchyardError).code === 'SWY_ERR_NO_HEALTHY_ENDPOINT',
    );
  });

  it('names an unknown plugin type', () => {
    const spec = {
      filters: [{ type: 'nope', params: {} }],
      scorers: [],
      picker: { type: 'max-score-picker', params: {} },
    };
    assert.throws(
      () => new Router(spec, reg, infos(1)),
      /unknown filter type "nope" \(known: healthy-filter, capacity-filter[,)]/,
    );
  });
});
