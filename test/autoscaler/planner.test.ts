/** Capacity planner: hand-computed plans, brute-force optimality, the greedy's bound, replacements. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import { SeededRng } from '../../src/core/rng.js';
import {
  type CapacityPlan,
  diffPlacements,
  planCapacity,
  replacementFor,
} from '../../src/autoscaler/planner.js';
import type { InstanceType, Placement, PlanRequest } from '../../src/autoscaler/types.js';

function type(
  name: string,
  capacity: number,
  onDemand: number,
  extra: Partial<InstanceType> = {},
): InstanceType {
  return { name, profile: 'ref', capacity, onDemandUsdPerHour: onDemand, ...extra };
}

function request(capacity: number, catalog: InstanceType[], extra: Partial<PlanRequest> = {}): PlanRequest {
  return { capacity, catalog, maxSpotShare: 0, maxSpotSharePerType: 1, maxReplicas: 100, ...extra };
}

const od = (t: string, count: number): Placement => ({ type: t, tier: 'on-demand', count });
const spot = (t: string, count: number): Placement => ({ type: t, tier: 'spot', count });

describe('planCapacity, hand-computed', () => {
  it('plans nothing for a need of 0', () => {
    const plan = planCapacity(request(0, [type('a', 1, 4)]));
    assert.deepEqual(plan.placements, []);
    assert.equal(plan.capacity, 0);
    assert.equal(plan.usdPerHour, 0);
    assert.equal(plan.method, 'exact');
    assert.equal(plan.feasible, true);
  });

  it('mixes instance types when that is cheaper than one type (Mélange)', () => {
    // a×3 = $12, b×2 = $12, a + b = $10.
    const plan = planCapacity(request(3, [type('a', 1, 4), type('b', 2, 6)]));
    assert.deepEqual(plan.placements, [od('a', 1), od('b', 1)]);
    assert.equal(plan.capacity, 3);
    assert.equal(plan.usdPerHour, 10);
    assert.equal(plan.method, 'exact');
  });

  it('keeps the on-demand floor and the per-type spot share', () => {
    const cat = [type('a', 1, 4, { spotUsdPerHour: 1 })];
    const half = planCapacity(request(4, cat, { maxSpotShare: 0.5, maxSpotSharePerType: 0.5 }));
    assert.deepEqual(half.placements, [od('a', 2), spot('a', 2)]);
    assert.equal(half.usdPerHour, 10);
    const quarter = planCapacity(request(4, cat, { maxSpotShare: 0.5, maxSpotSharePerType: 0.25 }));
    assert.deepEqual(quarter.placements, [od('a', 3), spot('a', 1)]);
    assert.equal(quarter.usdPerHour, 13);
    const none = planCapacity(request(4, cat, { maxSpotShare: 0, maxSpotSharePerType: 1 }));
    assert.deepEqual(none.placements, [od('a', 4)]);
  });

  it('spreads spot across types so one wave takes at most the per-type share', () => {
    const cat = [type('a', 1, 4, { spotUsdPerHour: 1 }), type('b', 1, 5, { spotUsdPerHour: 1.5 })];
    const spread = planCapacity(request(4, cat, { maxSpotShare: 1, maxSpotSharePerType: 0.5 }));
    assert.deepEqual(spread.placements, [spot('a', 2), spot('b', 2)]);
    assert.equal(spread.usdPerHour, 5);
    const one = planCapacity(request(4, cat, { maxSpotShare: 1, maxSpotSharePerType: 1 }));
    assert.deepEqual(one.placements, [spot('a', 4)]);
  });

  it('lets spot round up past the share: the on-demand floor is what must survive', () => {
    // od ≥ 5 from a ($4/unit); s: 4 units of spot for $2, at most floor(10 / 4) = 2 of them.
    // a×5 + s×2 = $24 (capacity 13) beats a×6 + s×1 = $26 and a×10 = $40.
    const cat = [type('a', 1, 4), type('s', 4, 100, { spotUsdPerHour: 2 })];
    const plan = planCapacity(
      request(10, cat, { maxSpotShare: 0.5, maxSpotSharePerType: 1, maxReplicas: 20 }),
    );
    assert.deepEqual(plan.placements, [od('a', 5), spot('s', 2)]);
    assert.equal(plan.usdPerHour, 24);
    assert.equal(plan.capacity, 13);
  });

  it('respects a type cap across both tiers', () => {
    const plan = planCapacity(request(3, [type('a', 1, 1, { maxReplicas: 2 }), type('b', 1, 3)]));
    assert.deepEqual(plan.placements, [od('a', 2), od('b', 1)]);
    assert.equal(plan.usdPerHour, 5);
  });

  it('returns the largest plan, with a note, when the caps cannot meet the need', () => {
    const capped = planCapacity(request(10, [type('a', 1, 1)], { maxReplicas: 4 }));
    assert.deepEqual(capped.placements, [od('a', 4)]);
    assert.equal(capped.capacity, 4);
    assert.equal(capped.feasible, false);
    assert.match(capped.note, /short/);
    assert.equal(capped.maxGapUsdPerHour, Number.POSITIVE_INFINITY);
    // a: 3 replicas at most; credited = min(total, onDem + 0.5 × 6) ≤ 3, cheapest as 3 spot.
    const cat = [type('a', 1, 2, { spotUsdPerHour: 1, maxReplicas: 3 })];
    const floor = planCapacity(request(6, cat, { maxSpotShare: 0.5, maxSpotSharePerType: 1 }));
    assert.deepEqual(floor.placements, [spot('a', 3)]);
    assert.equal(floor.usdPerHour, 3);
    assert.equal(floor.feasible, false);
  });

  it('breaks ties by fewer replicas, then catalog order, then on-demand', () => {
    assert.deepEqual(planCapacity(request(2, [type('a', 1, 2), type('b', 2, 4)])).placements, [od('b', 1)]);
    assert.deepEqual(planCapacity(request(1, [type('a', 1, 2), type('b', 1, 2)])).placements, [od('a', 1)]);
    const same = [type('a', 1, 2, { spotUsdPerHour: 2 })];
    const plan = planCapacity(request(1, same, { maxSpotShare: 1, maxSpotSharePerType: 1 }));
    assert.deepEqual(plan.placements, [od('a', 1)]);
  });

  it('greedy: price-order fill, its bound and the LP lower bound, against the exact optimum', () => {
    // Exact: a-od 1 + a-spot 2 + b-od 1 = $12. Greedy: phase A fills the on-demand deficit 3 with
    // b (cheapest on-demand, $3/unit): 2 replicas ($12); phase B the last unit with a-spot ($1).
    // LP: 1.5 b ($9) + 2 a-spot ($2) = $11; bound: $6 + $1 (one replica of each phase's last group).
    const cat = [type('a', 1, 4, { spotUsdPerHour: 1 }), type('b', 2, 6)];
    const req = request(5, cat, { maxSpotShare: 0.4, maxSpotSharePerType: 0.4, maxReplicas: 10 });
    const exact = planCapacity(req);
    assert.equal(exact.method, 'exact');
    assert.deepEqual(exact.placements, [od('a', 1), spot('a', 2), od('b', 1)]);
    assert.equal(exact.usdPerHour, 12);
    const greedy = planCapacity(req, { exactLimit: 0 });
    assert.equal(greedy.method, 'greedy');
    assert.deepEqual(greedy.placements, [spot('a', 1), od('b', 2)]);
    assert.equal(greedy.usdPerHour, 13);
    assert.equal(greedy.maxGapUsdPerHour, 7);
    assert.ok(Math.abs(greedy.lowerBoundUsdPerHour - 11) < 1e-6);
    assert.match(greedy.note, /optimum \+ \$7\/h/);
  });

  it('greedy: drops replicas a later, larger one made redundant', () => {
    // Phase A: a (ratio 1) to its cap, 2; then b (ratio 1.25) for the last unit: 6 for $7.
    // Trim, dearest first: b cannot go, both a can: b alone, $5 (the optimum). The densest-first
    // fill gives c alone, $100.
    const cat = [type('a', 1, 1, { maxReplicas: 2 }), type('b', 4, 5), type('c', 8, 100)];
    const plan = planCapacity(request(3, cat), { exactLimit: 0 });
    assert.deepEqual(plan.placements, [od('b', 1)]);
    assert.equal(plan.usdPerHour, 5);
    assert.equal(plan.maxGapUsdPerHour, 5);
    assert.ok(Math.abs(plan.lowerBoundUsdPerHour - 3.25) < 1e-6); // 2 a + 1/4 b
  });

  it('greedy: densest-first fill when maxReplicas cuts the price-order fill', () => {
    // Price order takes a (ratio 1) up to R = 2 and is short; densest first takes b ×2.
    const plan = planCapacity(request(8, [type('a', 1, 1), type('b', 4, 8)], { maxReplicas: 2 }), {
      exactLimit: 0,
    });
    assert.deepEqual(plan.placements, [od('b', 2)]);
    assert.equal(plan.feasible, true);
    assert.equal(plan.maxGapUsdPerHour, Number.POSITIVE_INFINITY);
    assert.match(plan.note, /no a-priori bound/);
  });

  it('falls back to the greedy above the exact limit', () => {
    const cat = ['a', 'b', 'c', 'd', 'e', 'f'].map((n, i) =>
      type(n, 1 + i / 2, 2 + i, { spotUsdPerHour: 1 + i / 4 }),
    );
    const plan = planCapacity(
      request(40, cat, { maxSpotShare: 0.6, maxSpotSharePerType: 0.25, maxReplicas: 60 }),
    );
    assert.equal(plan.method, 'greedy');
    assert.ok(plan.searchSpace > 200_000);
    assert.equal(plan.feasible, true);
    checkConstraints(
      plan,
      request(40, cat, { maxSpotShare: 0.6, maxSpotSharePerType: 0.25, maxReplicas: 60 }),
    );
    assert.ok(plan.usdPerHour <= plan.lowerBoundUsdPerHour + plan.maxGapUsdPerHour + 1e-9);
  });

  it('refuses malformed input', () => {
    assert.throws(() => planCapacity(request(1, [type('a', 1, 1), type('a', 2, 1)])), AssertionError);
    assert.throws(() => planCapacity(request(1, [type('a', 0, 1)])), AssertionError);
    assert.throws(() => planCapacity(request(-1, [type('a', 1, 1)])), AssertionError);
    assert.throws(() => planCapacity(request(1, [type('a', 1, 1)], { maxSpotShare: 1.5 })), AssertionError);
  });
});

// ── Brute force ────────────────────────────────────────────────────────────────────────────────

interface Evaluated {
  readonly credited: number;
  readonly usdPerHour: number;
  readonly replicas: number;
}

/** Sums a plan's placements and checks every hard constraint; returns its credited capacity. */
function checkConstraints(plan: CapacityPlan, req: PlanRequest): Evaluated {
  let total = 0;
  let onDemand = 0;
  let usd = 0;
  let replicas = 0;
  const perType = new Map<string, number>();
  for (const pl of plan.placements) {
    const t = req.catalog.find((c) => c.name === pl.type)!;
    assert.ok(pl.count > 0 && Number.isInteger(pl.count));
    total += pl.count * t.capacity;
    replicas += pl.count;
    perType.set(t.name, (perType.get(t.name) ?? 0) + pl.count);
    if (pl.tier === 'on-demand') {
      onDemand += pl.count * t.capacity;
      usd += pl.count * t.onDemandUsdPerHour;
    } else {
      assert.ok(req.maxSpotShare > 0, 'no spot when maxSpotShare is 0');
      assert.ok(
        pl.count * t.capacity <= req.maxSpotSharePerType * req.capacity + 1e-9,
        'per-type spot share',
      );
      usd += pl.count * t.spotUsdPerHour!;
    }
  }
  for (const t of req.catalog)
    assert.ok((perType.get(t.name) ?? 0) <= (t.maxReplicas ?? Infinity), 'type cap');
  assert.ok(replicas <= req.maxReplicas, 'maxReplicas');
  assert.equal(plan.usdPerHour, usd);
  assert.equal(plan.capacity, total);
  const credited = Math.min(total, onDemand + req.maxSpotShare * req.capacity, req.capacity);
  return { credited, usdPerHour: usd, replicas };
}

interface Slot {
  readonly t: InstanceType;
  readonly spot: boolean;
  readonly bound: number;
}

function slots(req: PlanRequest): Slot[] {
  const out: Slot[] = [];
  for (const t of req.catalog) {
    const bound = Math.min(
      req.maxReplicas,
      t.maxReplicas ?? Infinity,
      Math.ceil(req.capacity / t.capacity) + 2,
    );
    out.push({ t, spot: false, bound });
    if (t.spotUsdPerHour !== undefined) out.push({ t, spot: true, bound });
  }
  return out;
}

/** Every count vector within the slots' bounds (a looser bound than the planner's own). */
function bruteForce(req: PlanRequest): Evaluated {
  const s = slots(req);
  const n = s.map(() => 0);
  let best: Evaluated = { credited: -1, usdPerHour: 0, replicas: 0 };
  for (;;) {
    const e = evaluateVector(req, s, n);
    if (e !== null && isBetter(e, best)) best = e;
    let i = 0;
    while (i < n.length && n[i] === s[i]!.bound) n[i++] = 0;
    if (i === n.length) return best;
    n[i]!++;
  }
}

function evaluateVector(req: PlanRequest, s: readonly Slot[], n: readonly number[]): Evaluated | null {
  let total = 0;
  let onDemand = 0;
  let usd = 0;
  let replicas = 0;
  const perType = new Map<string, number>();
  for (let i = 0; i < s.length; i++) {
    const { t, spot: isSpot } = s[i]!;
    const k = n[i]!;
    total += k * t.capacity;
    replicas += k;
    perType.set(t.name, (perType.get(t.name) ?? 0) + k);
    if (isSpot && k * t.capacity > req.maxSpotSharePerType * req.capacity) return null;
    if (!isSpot) onDemand += k * t.capacity;
    usd += k * (isSpot ? t.spotUsdPerHour! : t.onDemandUsdPerHour);
  }
  if (replicas > req.maxReplicas) return null;
  for (const t of req.catalog) if ((perType.get(t.name) ?? 0) > (t.maxReplicas ?? Infinity)) return null;
  const credited = Math.min(total, onDemand + req.maxSpotShare * req.capacity, req.capacity);
  return { credited, usdPerHour: usd, replicas };
}

function isBetter(a: Evaluated, b: Evaluated): boolean {
  if (a.credited !== b.credited) return a.credited > b.credited;
  if (a.usdPerHour !== b.usdPerHour) return a.usdPerHour < b.usdPerHour;
  return a.replicas < b.replicas;
}

function pick<T>(rng: SeededRng, xs: readonly T[]): T {
  return xs[Math.floor(rng.next() * xs.length)]!;
}

/** A random small case with dyadic prices and capacities (sums are exact in floating point). */
function randomCase(rng: SeededRng): PlanRequest {
  for (;;) {
    const catalog: InstanceType[] = [];
    const nTypes = 1 + Math.floor(rng.next() * 3);
    for (let i = 0; i < nTypes; i++) {
      const onDemand = (1 + Math.floor(rng.next() * 64)) / 8;
      const extra: { spotUsdPerHour?: number; maxReplicas?: number } = {};
      if (rng.next() < 0.7) extra.spotUsdPerHour = (onDemand * (1 + Math.floor(rng.next() * 6))) / 8;
      if (rng.next() < 0.3) extra.maxReplicas = Math.floor(rng.next() * 6);
      catalog.push(type(`t${i}`, pick(rng, [0.5, 1, 1.5, 2, 3, 4]), onDemand, extra));
    }
    const req: PlanRequest = {
      capacity: Math.floor(rng.next() * 21) / 2,
      catalog,
      maxSpotShare: pick(rng, [0, 0.25, 0.5, 0.75, 1]),
      maxSpotSharePerType: pick(rng, [0.25, 0.5, 0.75, 1]),
      maxReplicas: 1 + Math.floor(rng.next() * 16),
    };
    const space = slots(req).reduce((size, s) => size * (s.bound + 1), 1);
    if (space <= 40_000) return req;
  }
}

const CASES = 300;

describe('planCapacity against brute force', () => {
  it(`finds the optimum (or the largest plan when short) in ${CASES} random cases`, () => {
    const rng = new SeededRng(20261123);
    let short = 0;
    let withSpot = 0;
    for (let k = 0; k < CASES; k++) {
      const req = randomCase(rng);
      const want = bruteForce(req);
      const plan = planCapacity(req);
      const ctx = `case ${k}: ${JSON.stringify(req)} → ${JSON.stringify(plan)}`;
      assert.equal(plan.method, 'exact', ctx);
      const got = checkConstraints(plan, req);
      assert.deepEqual(got, want, ctx);
      assert.equal(plan.feasible, want.credited === req.capacity, ctx);
      if (plan.feasible) assert.ok(plan.lowerBoundUsdPerHour <= want.usdPerHour + 1e-9, ctx);
      if (!plan.feasible) short++;
      if (plan.placements.some((p) => p.tier === 'spot')) withSpot++;
    }
    // The cases exercise both outcomes and the spot constraints.
    assert.ok(short >= 20 && short <= CASES - 100, `short plans: ${short}`);
    assert.ok(withSpot >= 50, `plans with spot: ${withSpot}`);
  });

  it('greedy stays within its stated bound of the optimum', () => {
    const rng = new SeededRng(20261123);
    let proven = 0;
    let feasibleCases = 0;
    let optimal = 0;
    for (let k = 0; k < CASES; k++) {
      const req = randomCase(rng);
      const want = bruteForce(req);
      const plan = planCapacity(req, { exactLimit: 0 });
      const ctx = `case ${k}: ${JSON.stringify(req)} → ${JSON.stringify(plan)}`;
      assert.equal(plan.method, req.capacity === 0 ? 'exact' : 'greedy', ctx);
      const got = checkConstraints(plan, req);
      const met = want.credited === req.capacity;
      assert.ok(!plan.feasible || met, ctx);
      if (!met) {
        assert.equal(plan.maxGapUsdPerHour, Number.POSITIVE_INFINITY, ctx);
        continue;
      }
      feasibleCases++;
      assert.ok(plan.lowerBoundUsdPerHour <= want.usdPerHour + 1e-9, ctx);
      if (plan.feasible && got.usdPerHour === want.usdPerHour) optimal++;
      if (plan.maxGapUsdPerHour === Number.POSITIVE_INFINITY) continue;
      proven++;
      const dearest = Math.max(...req.catalog.map((t) => t.onDemandUsdPerHour));
      assert.ok(plan.maxGapUsdPerHour <= 2 * dearest, ctx);
      assert.ok(got.usdPerHour <= want.usdPerHour + plan.maxGapUsdPerHour, ctx);
      assert.ok(got.usdPerHour <= plan.lowerBoundUsdPerHour + plan.maxGapUsdPerHour + 1e-9, ctx);
    }
    assert.ok(proven >= feasibleCases * 0.9, `bound proven in ${proven} of ${feasibleCases}`);
    assert.ok(optimal >= feasibleCases * 0.8, `greedy optimal in ${optimal} of ${feasibleCases}`);
  });
});

describe('diffPlacements and replacementFor', () => {
  it('diffs per type and tier', () => {
    const d = diffPlacements([od('a', 2), spot('b', 1)], [od('a', 1), spot('b', 3), od('c', 1)]);
    assert.deepEqual(d.add, [spot('b', 2), od('c', 1)]);
    assert.deepEqual(d.remove, [od('a', 1)]);
    assert.deepEqual(diffPlacements([od('a', 1), od('a', 1)], [od('a', 2)]), { add: [], remove: [] });
  });

  const cat = [type('a', 1, 4, { spotUsdPerHour: 1 }), type('b', 1, 5, { spotUsdPerHour: 2 })];
  const req = request(4, cat, { maxSpotShare: 0.5, maxSpotSharePerType: 0.5, maxReplicas: 10 });

  it('replaces a preempted spot replica elsewhere, keeping the survivors', () => {
    const current = planCapacity(req).placements;
    assert.deepEqual(current, [od('a', 2), spot('a', 2)]);
    // a-spot benched; the unit missing is cheapest as b-spot ($2) rather than a-od ($4).
    const r = replacementFor({ type: 'a', tier: 'spot' }, current, req);
    assert.deepEqual(r.add, [spot('b', 1)]);
    assert.deepEqual(r.target.placements, [od('a', 2), spot('a', 1), spot('b', 1)]);
    assert.equal(r.target.usdPerHour, 11);
    // With b-spot also benched, on-demand fills the gap (SkyServe's fallback).
    const fallback = replacementFor({ type: 'a', tier: 'spot' }, current, req, { spotMaxReplicas: { b: 0 } });
    assert.deepEqual(fallback.add, [od('a', 1)]);
  });

  it('adds nothing when the survivors still meet the need, and tops up a lost on-demand replica', () => {
    const spare = replacementFor({ type: 'a', tier: 'spot' }, [od('a', 3), spot('a', 2)], req);
    assert.deepEqual(spare.add, []);
    assert.deepEqual(spare.target.placements, [od('a', 3), spot('a', 1)]);
    const lostOd = replacementFor({ type: 'a', tier: 'on-demand' }, [od('a', 2), spot('a', 2)], req);
    assert.deepEqual(lostOd.add, [od('a', 1)]);
    assert.throws(() => replacementFor({ type: 'b', tier: 'spot' }, [od('a', 2)], req), AssertionError);
  });
});
