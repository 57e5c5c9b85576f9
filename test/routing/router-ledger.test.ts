/**
 * The router's own knowledge of its pool, through route / firstToken / finished: the load ledger
 * (back to exactly zero once every request has finished, failed attempts and retries included),
 * the decode-length EWMA, the predicted cached prefix, the prefix index's correction from reported
 * cache hits, and the decision record.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PLAIN_ENDPOINT, type EndpointView } from '../../src/framework/endpoint.js';
import type { RoutingOutcome } from '../../src/framework/routing.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { type DecisionRecord, Router, type RoutingProfileSpec } from '../../src/router/router.js';
import { IDLE, request, view } from '../helpers/routing.js';

const reg = builtinRoutingRegistry();
const infos = (n: number) => Array.from({ length: n }, () => PLAIN_ENDPOINT);
const ok = (outputTokens: number | null = null, cachedTokens: number | null = null): RoutingOutcome => ({
  ok: true,
  cachedTokens,
  outputTokens,
});
const FAILED: RoutingOutcome = { ok: false, cachedTokens: null, outputTokens: null };

/** Unknown-profile endpoints hold 262,144 KV tokens: 2621 prefix blocks of 100 tokens. */
const BT = 100;
const fleet = [view('a', 0), view('b', 1), view('c', 2)];
/** Offering one view forces the pick (reason `only-candidate` unless a plugin names one). */
const only = (i: number): EndpointView[] => [fleet[i]!];

describe('Router load ledger', () => {
  it('adds each request at route time, drops its prefill at the first token, the rest at finish', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(3));
    assert.equal(r.meanOutputTokens, 256);
    r.route(request({ id: 'q1', promptTokensEstimate: 1000 }), only(0));
    assert.deepEqual(r.load(0), {
      requests: 1,
      prefilling: 1,
      prefillTokens: 1000,
      prefillPairs: 1000 * 500, // n·(c + n/2) with c = 0
      kvTokens: 1000 + 256,
      decodeTokens: 256,
    });
    r.route(request({ id: 'q2', promptTokensEstimate: 40 }), only(0));
    assert.deepEqual(r.load(0), {
      requests: 2,
      prefilling: 2,
      prefillTokens: 1040,
      prefillPairs: 500_000 + 800,
      kvTokens: 1256 + 296,
      decodeTokens: 512,
    });
    r.firstToken('q1');
    r.firstToken('q1'); // a second first token changes nothing
    assert.deepEqual(r.load(0), {
      requests: 2,
      prefilling: 1,
      prefillTokens: 40,
      prefillPairs: 800,
      kvTokens: 1552,
      decodeTokens: 512,
    });
    assert.deepEqual(r.load(1), IDLE);
    assert.equal(r.outstanding, 2);
    // Finishing without a first token (an error before any output) still releases the prefill.
    r.finished('q2', FAILED);
    r.finished('q1', ok(256));
    r.finished('q1', ok(256)); // unknown by now: ignored
    assert.deepEqual(r.load(0), IDLE);
    assert.equal(r.outstanding, 0);
  });

  it('updates the mean output length as a 1/64 EWMA of successful requests only', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(1));
    r.route(request({ id: 'a' }), only(0));
    r.finished('a', ok(320));
    assert.equal(r.meanOutputTokens, 257); // 256 + (320 − 256)/64
    r.route(request({ id: 'b' }), only(0));
    r.finished('b', FAILED);
    r.route(request({ id: 'c' }), only(0));
    r.finished('c', ok(null));
    assert.equal(r.meanOutputTokens, 257, 'failures and unknown lengths leave it');
    r.route(request({ id: 'd' }), only(0));
    r.finished('d', ok(1));
    assert.equal(r.meanOutputTokens, 253); // 257 + (1 − 257)/64
    // A request routed now expects the new mean; the ledger releases what it added, not the new mean.
    r.route(request({ id: 'e', promptTokensEstimate: 7 }), only(0));
    assert.equal(r.load(0).decodeTokens, 253);
    assert.equal(r.load(0).kvTokens, 260);
    r.route(request({ id: 'f', promptTokensEstimate: 7 }), only(0));
    r.finished('e', ok(0));
    assert.equal(r.meanOutputTokens, 253 - 253 / 64);
    assert.equal(r.load(0).decodeTokens, 253);
    r.finished('f', ok(253));
    assert.deepEqual(r.load(0), IDLE);
  });

  it('a failed attempt and its retry under the same id leave the ledger at zero', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(3));
    // The gateway's way: the failed attempt finishes, then the retry is routed elsewhere.
    const req = request({ id: 'x', promptTokensEstimate: 300 });
    assert.equal(r.route(req, fleet.slice(0, 1)).id, 'a');
    r.finished('x', FAILED);
    assert.deepEqual(r.load(0), IDLE);
    const retry = request({ id: 'x', promptTokensEstimate: 300, excludedIds: ['a'] });
    assert.notEqual(r.route(retry, fleet).id, 'a', 'the tried endpoint is excluded');
    const at = r.route(retry, only(1)).index; // the same id routed again without a finish
    assert.equal(at, 1);
    assert.equal(r.outstanding, 1, 'the second route replaced the first ticket');
    assert.deepEqual(
      [0, 1, 2].map((i) => r.load(i).requests),
      [0, 1, 0],
    );
    r.firstToken('x');
    r.finished('x', ok(256));
    for (let i = 0; i < 3; i++) assert.deepEqual(r.load(i), IDLE, `endpoint ${i}`);
    assert.equal(r.outstanding, 0);
    assert.equal(r.meanOutputTokens, 256);
  });

  it('counts predicted cache hits out of the queued prefill, and returns to zero', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(3));
    const pre = (id: string, prompt: number, hashes: number[]) =>
      request({ id, promptTokensEstimate: prompt, prefixHashes: hashes, prefixBlockTokens: BT });
    r.route(pre('p1', 350, [1, 2, 3]), only(0));
    assert.equal(r.lastCachedTokens, 0);
    assert.equal(r.prefixIndex()!.capacityOf(0), 2621);
    // 3 blocks of p1 are on endpoint 0: 300 of 420 prompt tokens are predicted cached there.
    r.route(pre('p2', 420, [1, 2, 3, 4]), only(0));
    assert.equal(r.lastCachedTokens, 300);
    assert.deepEqual(
      [0, 1, 2].map((i) => r.cachedPrefixTokens(i)),
      [300, 0, 0],
    );
    assert.deepEqual(r.load(0), {
      requests: 2,
      prefilling: 2,
      prefillTokens: 350 + 120,
      prefillPairs: 350 * 175 + 120 * (300 + 60),
      kvTokens: 350 + 256 + 420 + 256,
      decodeTokens: 512,
    });
    // A prompt smaller than its matched blocks: capped at the prompt, nothing left to prefill.
    r.route(pre('p3', 250, [1, 2, 3]), only(0));
    assert.equal(r.lastCachedTokens, 250);
    assert.equal(r.load(0).prefillTokens, 470);
    assert.equal(r.load(0).prefillPairs, 61_250 + 43_200);
    // A different block size carries no signal in this pool.
    r.route(
      request({ id: 'p4', promptTokensEstimate: 400, prefixHashes: [1, 2], prefixBlockTokens: 16 }),
      only(0),
    );
    assert.equal(r.lastCachedTokens, 0);
    assert.equal(r.cachedTokensTotal(0), 400, 'four blocks of 100 tokens on endpoint 0');
    assert.equal(r.cachedTokensTotal(1), 0);
    for (const id of ['p1', 'p2', 'p3', 'p4']) r.firstToken(id);
    for (const id of ['p4', 'p2', 'p3', 'p1']) r.finished(id, ok(256));
    assert.deepEqual(r.load(0), IDLE);
  });

  it('shrinks the endpoint prefix capacity when the engine reports fewer cached tokens than predicted', () => {
    const r = new Router(ROUTING_PRESETS['least-outstanding']!, reg, infos(2));
    const pre = (id: string, hashes: number[]) =>
      request({ id, promptTokensEstimate: 1000, prefixHashes: hashes, prefixBlockTokens: BT });
    r.route(pre('w', [1, 2, 3]), only(0));
    r.finished('w', ok(1, 0)); // nothing predicted: no correction
    assert.equal(r.prefixIndex()!.capacityOf(0), 2621);
    r.route(pre('hit', [1, 2, 3, 4]), only(0)); // predicted 3 blocks
    r.finished('hit', ok(1, 399)); // 3 blocks reported: exact
    assert.equal(r.prefixIndex()!.capacityOf(0), 2621);
    r.route(pre('miss', [1, 2, 3, 4, 5]), only(0)); // predicted 4 blocks
    r.finished('miss', ok(1, 100)); // 1 block reported
    assert.equal(r.prefixIndex()!.capacityOf(0), 2358); // ⌊2621 × 0.9⌋
    r.route(pre('fail', [1, 2, 3, 4, 5, 6]), only(0));
    r.finished('fail', { ok: false, cachedTokens: 0, outputTokens: null });
    assert.equal(r.prefixIndex()!.capacityOf(0), 2358, 'a failed request teaches nothing');
    assert.equal(r.prefixIndex()!.capacityOf(1), 2621);
  });
});

describe('Router decision record', () => {
  const spec: RoutingProfileSpec = {
    filters: [
      { type: 'healthy-filter', params: {} },
      { type: 'capacity-filter', params: {} },
    ],
    scorers: [
      { type: 'least-outstanding-scorer', weight: 2, params: {} },
      { type: 'kv-usage-scorer', weight: 1, params: {} },
    ],
    picker: { type: 'max-score-picker', params: {} },
  };
  const kv = (kvUsage: number) => ({ running: 0, waiting: 0, kvUsage, scrapedAtMs: 0 });
  const views = [
    view('a', 0, { inFlight: 2, metrics: kv(0.5) }),
    view('b', 1, { inFlight: 10 }), // at its concurrency limit
    view('c', 2, { healthy: false }),
    view('d', 3, { inFlight: 6, metrics: kv(0.25) }),
    view('e', 4, { inFlight: 4 }), // not scraped: the mean free KV of the others
    view('f', 5), // already tried
  ];

  it('explains filters, every scorer, the totals, the pick, its reason and its cached tokens', () => {
    const r = new Router(spec, reg, infos(6));
    r.route(request({ id: 'warm', promptTokensEstimate: 200, prefixHashes: [1, 2], prefixBlockTokens: BT }), [
      views[0]!,
    ]);
    assert.equal(r.lastReason, 'only-candidate');
    r.finished('warm', ok(256));
    const record = {} as DecisionRecord;
    const chosen = r.route(
      request({
        id: 'q',
        promptTokensEstimate: 250,
        prefixHashes: [1, 2, 3],
        prefixBlockTokens: BT,
        excludedIds: ['f'],
      }),
      views,
      record,
    );
    assert.equal(chosen.id, 'a');
    // least-outstanding over 2, 6, 4 in flight: (6 − x)/4 → 1, 0, 0.5; free KV 0.5, 0.75, mean 0.625.
    assert.deepEqual(record, {
      offered: 6,
      removed: [
        { filter: 'healthy-filter', count: 2 },
        { filter: 'capacity-filter', count: 1 },
      ],
      reason: 'max-score-picker',
      scorers: ['least-outstanding-scorer', 'kv-usage-scorer'],
      scored: [
        { endpoint: 'a', total: 2.5, scores: [1, 0.5] },
        { endpoint: 'd', total: 0.75, scores: [0, 0.75] },
        { endpoint: 'e', total: 1.625, scores: [0.5, 0.625] },
      ],
      chosen: 'a',
      cachedTokens: 200,
    });
    assert.equal(r.lastReason, 'max-score-picker');
    assert.equal(r.lastCachedTokens, 200);
    assert.equal(r.lastCandidates, 3);
  });

  it('reports the last reason of each decision, as the picker or scorer set it', () => {
    const r = new Router(ROUTING_PRESETS.default!, reg, infos(3));
    const pre = (id: string, hashes: number[]) =>
      request({ id, promptTokensEstimate: 1000, prefixHashes: hashes, prefixBlockTokens: BT });
    // The scorer names its reason even for a lone candidate; `only-candidate` is the fallback when
    // no plugin set one (the decision-record test above shows it).
    r.route(pre('one', [1, 2]), only(2));
    assert.equal(r.lastReason, 'least-ttft');
    assert.equal(r.lastCandidates, 1);
    r.finished('one', ok(256));
    r.route(pre('cold', [7, 8]), fleet);
    assert.equal(r.lastReason, 'least-ttft');
    r.finished('cold', ok(256));
    assert.equal(r.route(pre('warm', [1, 2, 3]), fleet).id, 'c');
    assert.equal(r.lastReason, 'cache-affinity');
    assert.equal(r.lastCachedTokens, 200);
    r.finished('warm', ok(256));
    // Filters that leave nothing: the typed errors, and no decision recorded.
    assert.throws(
      () => r.route(pre('sick', [1]), [view('a', 0, { healthy: false })]),
      (e: Error & { code?: string }) => e.code === 'SWY_ERR_NO_HEALTHY_ENDPOINT',
    );
    assert.throws(
      () => r.route(pre('full', [1]), [view('a', 0, { inFlight: 10 })]),
      (e: Error & { code?: string }) => e.code === 'SWY_ERR_OVERLOADED',
    );
    assert.equal(r.outstanding, 0);
  });
});
