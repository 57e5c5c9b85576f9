/**
 * The hashing policies (chwbl-picker, dualmap-picker) and their shared ring: exact choices checked
 * against a brute-force ring built here independently, and property tests over seeded random
 * states: bounded loads never exceed the bound, and adding a replica to N moves ≈ 1/(N+1) of keys,
 * all to the new replica.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fnv1a } from '../../src/core/hash.js';
import { SeededRng } from '../../src/core/rng.js';
import { ENGINE_PROFILES } from '../../src/engine-model/profiles.js';
import { prefillPairs, stepTimeMs } from '../../src/engine-model/step-time.js';
import { PLAIN_ENDPOINT, type EndpointView } from '../../src/framework/endpoint.js';
import type { EndpointLoad, RoutingRequest } from '../../src/framework/routing.js';
import { CHWBL_RING_SEED, createChwblPicker } from '../../src/plugins/routing/chwbl-picker/index.js';
import { DUALMAP_RING_SEEDS, createDualMapPicker } from '../../src/plugins/routing/dualmap-picker/index.js';
import { EndpointRings, HashRing, prefixKey } from '../../src/plugins/routing/hash-ring.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { Router } from '../../src/router/router.js';
import { context, knowledge, request, view } from '../helpers/routing.js';

// ---- A brute-force ring: every point listed, sorted, and scanned linearly. ----

function fmix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

type Point = readonly [point: number, owner: number];

function bruteRing(ids: readonly (string | null)[], vnodes: number, seed: number): Point[] {
  const pts: Point[] = [];
  ids.forEach((id, m) => {
    if (id === null) return;
    for (let v = 0; v < vnodes; v++) pts.push([fmix32(fnv1a(id, seed) ^ Math.imul(v + 1, 0x9e3779b1)), m]);
  });
  return pts.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/** Owners in the order a walk from `key` meets them, each once. */
function bruteWalk(pts: Point[], key: number, seed: number): number[] {
  const h = fmix32(key ^ seed);
  let at = pts.findIndex((p) => p[0] >= h);
  if (at < 0) at = 0;
  const out: number[] = [];
  for (let s = 0; s < pts.length; s++) {
    const o = pts[(at + s) % pts.length]![1];
    if (!out.includes(o)) out.push(o);
  }
  return out;
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `replica-${i}`);
const fleet = (n: number, inFlight: (i: number) => number = () => 0): EndpointView[] =>
  ids(n).map((id, i) => view(id, i, { inFlight: inFlight(i), maxConcurrency: 1_000 }));
const NO_SCORES = new Float64Array(64);

/** A request whose prefix key is exactly `key` (one 1024-token block). */
const keyed = (key: number, over: Partial<RoutingRequest> = {}): RoutingRequest =>
  request({ prefixHashes: [key], prefixBlockTokens: 1024, promptTokensEstimate: 1000, ...over });

describe('hash ring', () => {
  it('lands every key where a brute-force scan of the sorted points does', () => {
    const members = ['a', 'b', null, 'd'];
    const ring = new HashRing(members, 8, 77);
    const pts = bruteRing(members, 8, 77);
    assert.equal(ring.length, 24);
    const rng = new SeededRng(5);
    for (let k = 0; k < 2000; k++) {
      const key = Math.floor(rng.next() * 2 ** 32);
      assert.equal(ring.owner(ring.start(key)), bruteWalk(pts, key, 77)[0], `key ${key}`);
    }
  });

  it('walks to the next candidate, skipping non-candidates and the given owners', () => {
    const members = ['a', 'b', 'c', 'd'];
    const ring = new HashRing(members, 16, 9);
    const order = bruteWalk(bruteRing(members, 16, 9), 1234, 9);
    const slot = Int32Array.from([0, 1, 2, 3]);
    const start = ring.start(1234);
    assert.equal(ring.owner(ring.next(start, slot, -1, -1)), order[0]);
    assert.equal(ring.owner(ring.next(start, slot, order[0]!, -1)), order[1]);
    assert.equal(ring.owner(ring.next(start, slot, order[0]!, order[1]!)), order[2]);
    slot[order[2]!] = -1;
    assert.equal(ring.owner(ring.next(start, slot, order[0]!, order[1]!)), order[3]);
    slot[order[3]!] = -1;
    assert.equal(ring.next(start, slot, order[0]!, order[1]!), -1);
  });

  it('is rebuilt only when an endpoint id it has not seen appears', () => {
    const rings = new EndpointRings(10, [1, 2]);
    const all = fleet(4);
    rings.prepare(all);
    const first = rings.rings[0];
    rings.prepare([all[0]!, all[2]!]);
    assert.equal(rings.rings[0], first, 'a filtered endpoint keeps its points');
    assert.deepEqual([...rings.slot], [0, -1, 1, -1]);
    rings.prepare(all);
    assert.equal(rings.rings[0], first);
    rings.prepare([...all, view('replica-4', 4)]);
    assert.notEqual(rings.rings[0], first, 'a new replica rebuilds');
    const grown = rings.rings[1];
    rings.prepare([view('other', 0), ...all.slice(1)]);
    assert.notEqual(rings.rings[1], grown, 'a replaced id rebuilds');
  });

  it('keys a request by its first keyTokens of prefix blocks', () => {
    const r = (hashes: number[], bt: number) => request({ prefixHashes: hashes, prefixBlockTokens: bt });
    assert.equal(prefixKey(r([11, 22, 33], 512), 1024), 22);
    assert.equal(prefixKey(r([11, 22, 33], 64), 1024), 33, 'shorter prompt: all its blocks');
    assert.equal(prefixKey(r([11, 22, 33], 4096), 1024), 11, 'at least one block');
    assert.equal(prefixKey(r([-1], 512), 1024), 0xffffffff);
    assert.equal(prefixKey(r([], 512), 1024), -1);
  });
});

describe('chwbl-picker', () => {
  const picker = () => createChwblPicker('p', {});
  const pts = bruteRing(ids(4), 100, CHWBL_RING_SEED);
  const order = (key: number) => bruteWalk(pts, key, CHWBL_RING_SEED);

  it('sends an idle pool to the key’s own endpoint on the ring', () => {
    const p = picker();
    for (const key of [1, 99, 123_456, 0xdeadbeef]) {
      const ctx = context();
      assert.equal(p.pick(keyed(key), fleet(4), NO_SCORES, ctx), order(key)[0]);
      assert.equal(ctx.reason, 'hash-ring');
    }
  });

  it('keys by session id first, then prefix blocks, then request id', () => {
    const p = picker();
    const views = fleet(4);
    const pick = (r: RoutingRequest) => p.pick(r, views, NO_SCORES, context());
    const session = fnv1a('s-1');
    assert.equal(pick(keyed(5, { sessionId: 's-1' })), order(session)[0]);
    assert.equal(pick(request({ prefixHashes: [7, 8, 9], prefixBlockTokens: 512 })), order(8)[0]);
    assert.equal(pick(request({ id: 'req-9' })), order(fnv1a('req-9'))[0]);
  });

  it('walks on past endpoints at the bound ⌈1.25·(total + 1)/n⌉', () => {
    const key = 4242;
    const [first, second, third] = order(key) as [number, number, number];
    // total 5 over 4 → bound ⌈1.25·6/4⌉ = 2: the first two are at or over it.
    const inFlight = (i: number) => (i === first ? 3 : i === second ? 2 : 0);
    const ctx = context();
    assert.equal(picker().pick(keyed(key), fleet(4, inFlight), NO_SCORES, ctx), third);
    assert.equal(ctx.reason, 'bounded-overflow');
    // total 4 → bound ⌈1.25·5/4⌉ = 2: the first at 1 is under it.
    const light = (i: number) => (i === first ? 1 : i === second ? 3 : 0);
    const ctx2 = context();
    assert.equal(picker().pick(keyed(key), fleet(4, light), NO_SCORES, ctx2), first);
    assert.equal(ctx2.reason, 'hash-ring');
  });

  it('takes the first candidate on the walk when the key’s endpoint was filtered out', () => {
    const key = 777;
    const [first, second] = order(key) as [number, number];
    const candidates = fleet(4).filter((v) => v.index !== first);
    const ctx = context();
    const i = picker().pick(keyed(key), candidates, NO_SCORES, ctx);
    assert.equal(candidates[i]!.index, second);
    assert.equal(ctx.reason, 'hash-ring');
  });

  it('honours loadFactor: 1.0 means no endpoint above the mean, rounded up', () => {
    const key = 31;
    const [first, second] = order(key) as [number, number];
    // total 3 over 4, c = 1 → bound ⌈4/4⌉ = 1: the first (1 in flight) is full.
    const inFlight = (i: number) => (i === first ? 1 : i === second ? 0 : 1);
    const p = createChwblPicker('p', { loadFactor: 1 });
    assert.equal(p.pick(keyed(key), fleet(4, inFlight), NO_SCORES, context()), second);
    assert.throws(
      () => createChwblPicker('p', { loadFactor: 0.9 }),
      /loadFactor must be a number at least 1/,
    );
    assert.throws(() => createChwblPicker('p', { vnodes: 2.5 }), /vnodes must be an integer/);
  });

  it('property: after every pick the chosen endpoint holds ≤ ⌈c·(total + 1)/n⌉', () => {
    let picks = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new SeededRng(seed);
      const n = 2 + Math.floor(rng.next() * 15);
      const c = [1, 1.1, 1.25, 2][seed % 4]!;
      const p = createChwblPicker('p', { loadFactor: c });
      const load = new Array<number>(n).fill(0);
      // A skewed key space (few hot keys) so the bound actually binds.
      const hot = Array.from({ length: 3 }, () => Math.floor(rng.next() * 2 ** 32));
      for (let step = 0; step < 100; step++) {
        const all = fleet(n, (i) => load[i]!);
        const candidates = rng.next() < 0.2 ? all.filter(() => rng.next() < 0.7) : all;
        if (candidates.length === 0) continue;
        const key = rng.next() < 0.7 ? hot[step % 3]! : Math.floor(rng.next() * 2 ** 32);
        const total = candidates.reduce((s, v) => s + v.inFlight, 0);
        const bound = Math.ceil((c * (total + 1)) / candidates.length);
        const chosen = candidates[p.pick(keyed(key), candidates, NO_SCORES, context(seed))]!;
        load[chosen.index]!++;
        picks++;
        assert.ok(
          load[chosen.index]! <= bound,
          `seed ${seed} step ${step}: ${load[chosen.index]} > ${bound}`,
        );
        // Random finishes.
        for (let i = 0; i < n; i++) if (load[i]! > 0 && rng.next() < 0.15) load[i]!--;
      }
    }
    assert.ok(picks > 3000, `${picks} picks`);
  });

  it('property: adding a replica to N moves ≈ 1/(N+1) of keys, all to the new one', () => {
    const requests = Array.from({ length: 10_000 }, (_, k) => keyed(fmix32(k * 2654435761 + 1)));
    for (let n = 2; n <= 32; n++) {
      const p = picker(); // one instance: the second fleet also exercises the ring rebuild
      const ctx = context();
      const [small, big] = [fleet(n), fleet(n + 1)];
      const before = requests.map((r) => p.pick(r, small, NO_SCORES, ctx));
      const after = requests.map((r) => p.pick(r, big, NO_SCORES, ctx));
      assertFewMoves(before, after, n);
    }
  });
});

/** Moved keys all went to the new replica (index n), and about 1/(n+1) of them moved. */
function assertFewMoves(before: number[], after: number[], n: number): void {
  let moved = 0;
  for (let k = 0; k < before.length; k++) {
    if (before[k] === after[k]) continue;
    assert.equal(after[k], n, `N=${n}: key ${k} moved ${before[k]} → ${after[k]}, not to the new replica`);
    moved++;
  }
  const expected = 1 / (n + 1);
  const frac = moved / before.length;
  assert.ok(moved > 0, `N=${n}: nothing moved`);
  if (n >= 4) {
    assert.ok(Math.abs(frac - expected) <= 0.35 * expected, `N=${n}: moved ${frac}, expected ≈ ${expected}`);
  }
}

describe('dualmap-picker', () => {
  const members = ids(6);
  const ring1 = bruteRing(members, 160, DUALMAP_RING_SEEDS[0]);
  const ring2 = bruteRing(members, 160, DUALMAP_RING_SEEDS[1]);
  const KEY = 0xc0ffee;
  const walk1 = bruteWalk(ring1, KEY, DUALMAP_RING_SEEDS[0]);
  const walk2 = bruteWalk(ring2, KEY, DUALMAP_RING_SEEDS[1]);
  const A = walk1[0]!;
  const B = walk2.find((o) => o !== A)!;
  const S1 = walk1.find((o) => o !== A && o !== B)!;
  const S2 = walk2.find((o) => o !== A && o !== B)!;
  const req = keyed(KEY); // 1000 prompt tokens; no profile → 0.127 ms per token

  /** Picks for `req` with cached prefixes and loads given by pool index. */
  const pick = (
    cached: Record<number, number>,
    loads: Record<number, Partial<EndpointLoad>>,
    views = fleet(6),
    params: Record<string, unknown> = {},
  ) => {
    const arr = <T>(m: Record<number, T>, d: T) => Array.from({ length: 6 }, (_, i) => m[i] ?? d);
    const ctx = context(3, knowledge({ cached: arr(cached, 0), loads: arr(loads, {}) }));
    const i = createDualMapPicker('p', params).pick(req, views, NO_SCORES, ctx);
    return { index: views[i]!.index, reason: ctx.reason };
  };

  it('prefers the candidate holding more of the prompt', () => {
    assert.deepEqual(pick({ [B]: 512 }, {}), { index: B, reason: 'cache-affinity' });
    assert.deepEqual(pick({ [A]: 512, [B]: 256 }, {}), { index: A, reason: 'cache-affinity' });
    // A non-candidate's cache does not matter.
    assert.deepEqual(pick({ [S1]: 1000, [A]: 1 }, {}), { index: A, reason: 'cache-affinity' });
  });

  it('on equal cache, takes the candidate with fewer KV tokens routed to it', () => {
    assert.deepEqual(pick({}, { [A]: { kvTokens: 900 }, [B]: { kvTokens: 100 } }), {
      index: B,
      reason: 'load-balance',
    });
    assert.deepEqual(pick({}, { [A]: { kvTokens: 100 }, [B]: { kvTokens: 900 } }), {
      index: A,
      reason: 'load-balance',
    });
  });

  it('falls back to the faster candidate when affinity would cost over half the SLO', () => {
    // B: (19 000 queued + 500 uncached) × 0.127 = 2476.5 ms ≤ 2500 → affinity holds.
    assert.deepEqual(pick({ [B]: 500 }, { [B]: { prefillTokens: 19_000 } }), {
      index: B,
      reason: 'cache-affinity',
    });
    // B: (19 500 + 500) × 0.127 = 2540 ms > 2500 → A at 127 ms.
    assert.deepEqual(pick({ [B]: 500 }, { [B]: { prefillTokens: 19_500 } }), {
      index: A,
      reason: 'slo-fallback',
    });
    // A tighter SLO moves the threshold: 1000 ms / 2 = 500 ms.
    const tight = pick({ [B]: 500 }, { [B]: { prefillTokens: 4000 } }, fleet(6), { ttftSloMs: 1000 });
    assert.deepEqual(tight, { index: A, reason: 'slo-fallback' });
  });

  it('spreads a hot prefix to the rings’ next endpoints when both candidates break the SLO', () => {
    const hot = { [A]: { prefillTokens: 50_000 }, [B]: { prefillTokens: 60_000 } };
    const s2Lighter = S2 === S1 ? {} : { [S1]: { prefillTokens: 1000 } };
    assert.deepEqual(pick({}, { ...hot, ...s2Lighter }), { index: S2, reason: 'hotspot' });
    // Successors busier still: the faster of the two candidates.
    const worse = { ...hot, [S1]: { prefillTokens: 90_000 }, [S2]: { prefillTokens: 90_000 } };
    assert.deepEqual(pick({}, worse), { index: A, reason: 'slo-fallback' });
    // Only the two candidates are left: the faster one.
    const two = fleet(6).filter((v) => v.index === A || v.index === B);
    assert.deepEqual(pick({}, hot, two), { index: A, reason: 'slo-fallback' });
  });

  it('prices prefill with the endpoint’s engine profile when it has one', () => {
    const profile = ENGINE_PROFILES['qwen2.5-7b-h100']!;
    const n = profile.maxNumBatchedTokens;
    const msPerToken =
      stepTimeMs(profile, { requests: 1, tokens: n, prefillPairs: prefillPairs(n, 0), decodeContext: 0 }) / n;
    const queued = Math.floor(2500 / msPerToken) - 500; // just inside half the SLO
    const views = ids(6).map((id, i) =>
      view(id, i, { maxConcurrency: 1_000, info: { ...PLAIN_ENDPOINT, profile } }),
    );
    assert.deepEqual(pick({ [B]: 500 }, { [B]: { prefillTokens: queued } }, views), {
      index: B,
      reason: 'cache-affinity',
    });
    assert.deepEqual(pick({ [B]: 500 }, { [B]: { prefillTokens: queued + 100 } }, views), {
      index: A,
      reason: 'slo-fallback',
    });
  });

  it('property: each ring moves ≈ 1/(N+1) of keys when a replica is added, all to the new one', () => {
    const keys = Array.from({ length: 10_000 }, (_, k) => fmix32(k * 2654435761 + 7));
    for (const seed of DUALMAP_RING_SEEDS) {
      for (let n = 2; n <= 32; n++) {
        const small = new HashRing(ids(n), 160, seed);
        const big = new HashRing(ids(n + 1), 160, seed);
        const before = keys.map((k) => small.owner(small.start(k)));
        const after = keys.map((k) => big.owner(big.start(k)));
        assertFewMoves(before, after, n);
      }
    }
  });

  it('the two rings give independent first choices', () => {
    const small = new HashRing(ids(8), 160, DUALMAP_RING_SEEDS[0]);
    const other = new HashRing(ids(8), 160, DUALMAP_RING_SEEDS[1]);
    let same = 0;
    for (let k = 0; k < 10_000; k++) if (small.owner(small.start(k)) === other.owner(other.start(k))) same++;
    assert.ok(
      same > 1000 && same < 1500,
      `same first choice for ${same} of 10 000 keys (independent: ≈ 1250)`,
    );
  });
});

describe('hashing presets through the Router', () => {
  const reg = builtinRoutingRegistry();
  const infos = Array.from({ length: 4 }, () => PLAIN_ENDPOINT);

  it('chwbl keeps a session on one endpoint while it is under the bound', () => {
    const r = new Router(ROUTING_PRESETS.chwbl!, reg, infos);
    const views = fleet(4);
    const home = r.route(request({ id: 'a', sessionId: 'chat-1' }), views).id;
    assert.equal(r.lastReason, 'hash-ring');
    assert.equal(r.route(request({ id: 'b', sessionId: 'chat-1' }), views).id, home);
  });

  it('dualmap sends a repeated prefix back to the endpoint that cached it', () => {
    const r = new Router(ROUTING_PRESETS.dualmap!, reg, infos);
    const views = fleet(4);
    const prompt = { prefixHashes: [1, 2, 3], prefixBlockTokens: 512, promptTokensEstimate: 1600 };
    const first = r.route(request({ id: 'a', ...prompt }), views).id;
    assert.equal(r.lastReason, 'load-balance');
    assert.equal(r.route(request({ id: 'b', ...prompt }), views).id, first);
    assert.equal(r.lastReason, 'cache-affinity');
  });
});
