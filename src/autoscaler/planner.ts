/**
 * @module autoscaler/planner
 * The capacity planner: turns a capacity need (reference-replica units) into the cheapest mix of
 * (instance type, price tier) replica counts — Mélange's "cheapest GPU mix that covers the load"
 * (Griggs et al., arXiv 2404.14527) with SkyServe/SpotHedge's spot rules (Mao et al., arXiv
 * 2411.01438; skypilot-org/skypilot `sky/serve/autoscalers.py`, `sky/serve/spot_placer.py`) as
 * constraints.
 *
 * **Problem.** Groups g = (type, tier), on-demand first then spot for each type in catalog order;
 * a group has capacity c_g per replica and price p_g per replica-hour. Choose counts n_g ≥ 0 with
 *
 *     total  = Σ_g c_g n_g               ≥ C          (the need)
 *     onDem  = Σ_{g on-demand} c_g n_g   ≥ (1 − s) C  (s = maxSpotShare: losing every spot replica
 *                                                      still leaves (1 − s) C standing)
 *     c_t n_{t,spot}                     ≤ s_t C      (s_t = maxSpotSharePerType, per type t: one
 *                                                      preemption wave takes at most s_t C)
 *     n_{t,on-demand} + n_{t,spot}       ≤ U_t        (the type's maxReplicas, both tiers together)
 *     Σ_g n_g                            ≤ R          (maxReplicas)
 *
 * minimising Σ p_g n_g; ties go to fewer replicas, then to the larger count in the earliest group
 * (catalog order, on-demand before spot). Spot is bounded only per type: spot capacity beyond s C
 * is allowed when it is the cheap way to round up, since the on-demand floor is what guarantees
 * the capacity that survives. s = 0 means on demand only. Comparisons allow 1e-9 × max(1, C).
 *
 * Both conditions on C are one: with credited = min(total, onDem + s C, C), a plan meets the need
 * iff credited = C. When no plan does (R or U_t too small, or too little on-demand), the planner
 * returns the plan with the **largest credited capacity** (then cheapest, then the same ties) and
 * says so in its note; it never throws for that. A `keep` baseline (replicas that stay whatever
 * happens, see {@link replacementFor}) only adds fixed terms to each sum.
 *
 * **Exact method** (when Π_g (b_g + 1) ≤ `exactLimit`, default 200 000): enumerate every count
 * vector with n_g ≤ b_g = min(group caps, R, ⌈d_g / c_g⌉), d_g the deficit g can cover (the
 * on-demand deficit or the total one, whichever is larger, for on-demand; the total one for spot).
 * The bound loses nothing: a group holding ≥ d_g + c_g alone already meets both needs after one
 * replica is dropped, which is cheaper or as cheap with fewer replicas.
 *
 * **Greedy method** (above the limit), in price per capacity unit order (ties: larger replicas,
 * then catalog order): phase A fills the on-demand deficit with on-demand groups, phase B the
 * remaining total deficit with any group, each group taking ⌈deficit / c_g⌉ replicas or what its
 * caps allow; then replicas whose removal keeps the credited capacity are dropped, most expensive
 * first. A second fill in capacity-per-replica order (densest first, for when R binds) is also
 * tried and the better of the two kept.
 *
 * *Bound.* Let LP be the relaxation with continuous counts, no R and each group capped separately
 * by its own caps (a type's U_t applied to each tier alone). Its optimum is exactly the same
 * two-phase fill done fractionally: phase A should take the cheapest on-demand units (swapping a
 * dearer unit used in A for a cheaper one used in B costs nothing, and taking an unused cheaper
 * unit saves), and phase B is a fractional covering knapsack, solved by price per unit. LP ≤ OPT.
 * If no shared type cap and no R ever cut a take of the price-order fill, the integer fill
 * follows the fractional one but for the last group of each phase, rounded up: phase A costs
 * < LP_A + p_a; its surplus e covers e of phase B's deficit, so phase B's fractional cost for the
 * rest (over supplies less those e units) is ≤ LP_B, and rounding adds < p_b. Hence
 *
 *     cost ≤ LP + p_a + p_b ≤ OPT + p_a + p_b ≤ OPT + 2 × (dearest replica in the catalog),
 *
 * p_a, p_b the prices of one replica of the last group each phase took from. Trimming and the
 * second fill only lower the cost. When a cap did cut the fill, no a-priori bound is claimed
 * (`maxGapUsdPerHour` = ∞), but LP is still a valid lower bound, and both are in `Plan.note`.
 */
import { assert } from '../core/assert.js';
import type { InstanceType, Placement, Plan, PlanRequest, PriceTier } from './types.js';

/** Largest search space (count vectors) enumerated exactly; above it the greedy runs. */
export const EXACT_LIMIT_DEFAULT = 200_000;

export interface PlannerOptions {
  /** Enumerate when the search space has at most this many count vectors (0: always greedy). */
  readonly exactLimit?: number;
  /**
   * Most spot replicas per type, on top of the request's shares (e.g. 0 for a type whose spot
   * market is preempting: SpotHedge benches that location, `sky/serve/spot_placer.py`). Counts
   * include `keep`.
   */
  readonly spotMaxReplicas?: Readonly<Record<string, number>>;
  /** Replicas that stay in any case; the planner only adds to them. Default: none. */
  readonly keep?: readonly Placement[];
}

/** A {@link Plan} with what the planner knows about its quality. */
export interface CapacityPlan extends Plan {
  /** Whether the plan meets the need under every constraint (otherwise it is the largest found). */
  readonly feasible: boolean;
  /** A lower bound on the price of any plan that meets the need (LP relaxation; +∞: none can). */
  readonly lowerBoundUsdPerHour: number;
  /** Proven: `usdPerHour` ≤ optimum + this. 0 when exact; +∞ when short or no bound is proven. */
  readonly maxGapUsdPerHour: number;
  /** Count vectors in the exact method's search space (compared with `exactLimit`). */
  readonly searchSpace: number;
}

interface Group {
  readonly type: string;
  readonly tier: PriceTier;
  readonly typeIndex: number;
  readonly capacity: number;
  readonly usdPerHour: number;
  /** Replicas kept from the baseline. */
  readonly kept: number;
  /** Most replicas this group may add on its own caps (tier caps and the type's remaining room). */
  readonly maxAdd: number;
}

interface Problem {
  readonly need: number;
  /** s × C: the most spot capacity credited toward the need. */
  readonly spotCredit: number;
  readonly tol: number;
  readonly groups: readonly Group[];
  /** Per type: replicas it may still add, both tiers together. */
  readonly typeRoom: readonly number[];
  /** Replicas the pool may still add. */
  readonly replicaRoom: number;
  readonly keptTotal: number;
  readonly keptOnDemand: number;
  /** Deficits after the baseline: total, and on-demand ((1 − s) C − kept on-demand). */
  readonly deficit: number;
  readonly deficitOnDemand: number;
}

/** A vector of added counts, evaluated (kept replicas included in the sums). */
interface Candidate {
  readonly add: readonly number[];
  readonly credited: number;
  readonly usdPerHour: number;
  readonly replicas: number;
}

/**
 * The cheapest mix of instance types and tiers that provides `req.capacity`; see the module
 * comment for the constraints, the method and its bound. Throws (AssertionError) only on malformed
 * input; an impossible need yields the largest plan the caps allow.
 */
export function planCapacity(req: PlanRequest, opts: PlannerOptions = {}): CapacityPlan {
  validateRequest(req, opts);
  const p = buildProblem(req, opts);
  const limit = opts.exactLimit ?? EXACT_LIMIT_DEFAULT;
  const lowerBound = lpLowerBound(p) + keptUsdPerHour(p);
  if (req.capacity === 0 && p.keptTotal === 0) {
    return finish(p, evaluate(p, zeros(p)), 'exact', 0, lowerBound, 1, 'nothing needed');
  }
  const bounds = exactBounds(p);
  const space = searchSpace(bounds);
  if (space <= limit) {
    const best = enumerate(p, bounds);
    return finish(p, best, 'exact', 0, lowerBound, space, `exact: best of ${space} count vectors`);
  }
  const byPrice = greedyFill(p, priceOrder(p));
  const byDensity = greedyFill(p, densityOrder(p));
  const best = better(p, byDensity.best, byPrice.best) ? byDensity.best : byPrice.best;
  const proven = !byPrice.cut && isMet(p, byPrice.best.credited);
  const gap = proven ? byPrice.lastPriceA + byPrice.lastPriceB : Number.POSITIVE_INFINITY;
  const how = proven
    ? `cost ≤ optimum + $${usd(gap)}/h (one replica of the last group of each phase)`
    : 'a type or replica cap cut the price-order fill, so no a-priori bound';
  const lp = Number.isFinite(lowerBound)
    ? `optimum ≥ $${usd(lowerBound)}/h (LP)`
    : 'even the LP cannot meet the need';
  const note = `greedy (search space ${space} > ${limit}): ${how}; ${lp}`;
  return finish(p, best, 'greedy', gap, lowerBound, space, note);
}

/** Placements to start and to drain to go from `current` to `target` (same type and tier merged). */
export function diffPlacements(
  current: readonly Placement[],
  target: readonly Placement[],
): { add: Placement[]; remove: Placement[] } {
  const delta = new Map<string, { type: string; tier: PriceTier; count: number }>();
  const bump = (pl: Placement, sign: number) => {
    assert(Number.isInteger(pl.count) && pl.count >= 0, `placement count must be a whole number ≥ 0`);
    const key = `${pl.tier}\u0000${pl.type}`;
    const d = delta.get(key) ?? { type: pl.type, tier: pl.tier, count: 0 };
    d.count += sign * pl.count;
    delta.set(key, d);
  };
  for (const pl of target) bump(pl, 1);
  for (const pl of current) bump(pl, -1);
  const add: Placement[] = [];
  const remove: Placement[] = [];
  for (const d of delta.values()) {
    if (d.count > 0) add.push({ type: d.type, tier: d.tier, count: d.count });
    if (d.count < 0) remove.push({ type: d.type, tier: d.tier, count: -d.count });
  }
  return { add, remove };
}

/** What to start when a replica of `lost` gets its preemption notice (or otherwise goes). */
export interface Replacement {
  /** The fleet to aim for: the survivors plus {@link Replacement.add}. */
  readonly target: CapacityPlan;
  /** Replicas to start now. */
  readonly add: Placement[];
}

/**
 * The replacement for one replica of `lost` out of `current`. The survivors (current less that
 * one replica) are kept as they are — no churn of replicas that still serve — and the shortfall
 * is planned on top of them with the lost type's spot market benched: no new spot replicas of that
 * type (SpotHedge marks a preempted location PREEMPTED and places elsewhere; SkyServe's dynamic
 * fallback fills the gap with on-demand: skypilot-org/skypilot `sky/serve/spot_placer.py`,
 * `FallbackRequestRateAutoscaler` in `sky/serve/autoscalers.py`). The cheapest of the other spot types
 * and on-demand fills the gap, within every share and cap of `req`. The bench lasts for this call
 * only: the next ordinary {@link planCapacity} (the controller's next decision) may move back to
 * that spot type, which is when SkyServe drops its on-demand fallback.
 */
export function replacementFor(
  lost: { readonly type: string; readonly tier: PriceTier },
  current: readonly Placement[],
  req: PlanRequest,
  opts: PlannerOptions = {},
): Replacement {
  const survivors = withoutOne(current, lost);
  const spotMaxReplicas = { ...opts.spotMaxReplicas };
  if (lost.tier === 'spot') {
    const left = survivors.filter((pl) => pl.type === lost.type && pl.tier === 'spot');
    const n = left.reduce((sum, pl) => sum + pl.count, 0);
    spotMaxReplicas[lost.type] = Math.min(n, spotMaxReplicas[lost.type] ?? n);
  }
  const target = planCapacity(req, { ...opts, keep: survivors, spotMaxReplicas });
  return { target, add: diffPlacements(survivors, target.placements).add };
}

function withoutOne(current: readonly Placement[], lost: { type: string; tier: PriceTier }): Placement[] {
  const i = current.findIndex((pl) => pl.type === lost.type && pl.tier === lost.tier && pl.count > 0);
  assert(i >= 0, `replacementFor: no ${lost.tier} replica of ${lost.type} in the current placements`);
  return current.map((pl, j) => (j === i ? { ...pl, count: pl.count - 1 } : pl)).filter((pl) => pl.count > 0);
}

// ── Problem set-up ─────────────────────────────────────────────────────────────────────────────

function validateRequest(req: PlanRequest, opts: PlannerOptions): void {
  assert(Number.isFinite(req.capacity) && req.capacity >= 0, 'capacity must be a finite number ≥ 0');
  assert(req.maxSpotShare >= 0 && req.maxSpotShare <= 1, 'maxSpotShare must lie in [0, 1]');
  assert(
    req.maxSpotSharePerType >= 0 && req.maxSpotSharePerType <= 1,
    'maxSpotSharePerType must lie in [0, 1]',
  );
  assert(Number.isInteger(req.maxReplicas) && req.maxReplicas >= 0, 'maxReplicas must be a whole number ≥ 0');
  const limit = opts.exactLimit ?? EXACT_LIMIT_DEFAULT;
  assert(limit >= 0, 'exactLimit must be ≥ 0');
  const names = new Set<string>();
  for (const t of req.catalog) {
    assert(!names.has(t.name), `catalog: duplicate instance type ${t.name}`);
    names.add(t.name);
    assert(Number.isFinite(t.capacity) && t.capacity > 0, `catalog ${t.name}: capacity must be > 0`);
    assert(price(t.onDemandUsdPerHour), `catalog ${t.name}: onDemandUsdPerHour must be a finite number ≥ 0`);
    assert(
      t.spotUsdPerHour === undefined || price(t.spotUsdPerHour),
      `catalog ${t.name}: bad spotUsdPerHour`,
    );
    const max = t.maxReplicas;
    assert(max === undefined || (Number.isInteger(max) && max >= 0), `catalog ${t.name}: bad maxReplicas`);
  }
  for (const [name, n] of Object.entries(opts.spotMaxReplicas ?? {})) {
    assert(Number.isInteger(n) && n >= 0, `spotMaxReplicas.${name} must be a whole number ≥ 0`);
  }
}

function price(x: number): boolean {
  return Number.isFinite(x) && x >= 0;
}

function buildProblem(req: PlanRequest, opts: PlannerOptions): Problem {
  const C = req.capacity;
  const tol = 1e-9 * Math.max(1, C);
  const kept = keptCounts(req.catalog, opts.keep ?? []);
  const groups: Group[] = [];
  const typeRoom: number[] = [];
  let keptTotal = 0;
  let keptOnDemand = 0;
  let keptReplicas = 0;
  req.catalog.forEach((t, typeIndex) => {
    const od = kept.get(`on-demand\u0000${t.name}`) ?? 0;
    const sp = kept.get(`spot\u0000${t.name}`) ?? 0;
    const room = Math.max(0, (t.maxReplicas ?? Number.POSITIVE_INFINITY) - od - sp);
    typeRoom.push(room);
    keptTotal += t.capacity * (od + sp);
    keptOnDemand += t.capacity * od;
    keptReplicas += od + sp;
    const base = { type: t.name, typeIndex, capacity: t.capacity };
    groups.push({ ...base, tier: 'on-demand', usdPerHour: t.onDemandUsdPerHour, kept: od, maxAdd: room });
    if (t.spotUsdPerHour === undefined) return;
    const spotRoom = Math.min(room, spotCap(req, t, opts) - sp);
    groups.push({
      ...base,
      tier: 'spot',
      usdPerHour: t.spotUsdPerHour,
      kept: sp,
      maxAdd: Math.max(0, spotRoom),
    });
  });
  const spotCredit = req.maxSpotShare * C;
  return {
    need: C,
    spotCredit,
    tol,
    groups,
    typeRoom,
    replicaRoom: Math.max(0, req.maxReplicas - keptReplicas),
    keptTotal,
    keptOnDemand,
    deficit: Math.max(0, C - keptTotal),
    deficitOnDemand: Math.max(0, C - spotCredit - keptOnDemand),
  };
}

/** Most spot replicas of type `t` (kept ones included): the per-type share, the option, s = 0. */
function spotCap(req: PlanRequest, t: InstanceType, opts: PlannerOptions): number {
  if (req.maxSpotShare === 0) return 0;
  const byShare = Math.floor((req.maxSpotSharePerType * req.capacity) / t.capacity + 1e-9);
  return Math.min(byShare, opts.spotMaxReplicas?.[t.name] ?? Number.POSITIVE_INFINITY);
}

function keptCounts(catalog: readonly InstanceType[], keep: readonly Placement[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const pl of keep) {
    const t = catalog.find((c) => c.name === pl.type);
    assert(t !== undefined, `keep: instance type ${pl.type} is not in the catalog`);
    assert(pl.tier === 'on-demand' || t.spotUsdPerHour !== undefined, `keep: ${pl.type} has no spot price`);
    assert(Number.isInteger(pl.count) && pl.count >= 0, 'keep: counts must be whole numbers ≥ 0');
    const key = `${pl.tier}\u0000${pl.type}`;
    counts.set(key, (counts.get(key) ?? 0) + pl.count);
  }
  return counts;
}

// ── Evaluation and ordering ────────────────────────────────────────────────────────────────────

function zeros(p: Problem): number[] {
  return p.groups.map(() => 0);
}

function evaluate(p: Problem, add: readonly number[]): Candidate {
  let total = p.keptTotal;
  let onDemand = p.keptOnDemand;
  let usdPerHour = 0;
  let replicas = 0;
  for (let i = 0; i < add.length; i++) {
    const g = p.groups[i]!;
    const n = add[i]!;
    total += g.capacity * n;
    if (g.tier === 'on-demand') onDemand += g.capacity * n;
    usdPerHour += g.usdPerHour * n;
    replicas += n;
  }
  const credited = Math.min(total, onDemand + p.spotCredit, p.need);
  return { add, credited, usdPerHour, replicas };
}

function isMet(p: Problem, credited: number): boolean {
  return credited >= p.need - p.tol;
}

/** Whether `a` beats `b`: more credited capacity, then cheaper, fewer replicas, earlier groups. */
function better(p: Problem, a: Candidate, b: Candidate): boolean {
  if (Math.abs(a.credited - b.credited) > p.tol) return a.credited > b.credited;
  const costTol = 1e-9 * Math.max(1, Math.abs(b.usdPerHour));
  if (Math.abs(a.usdPerHour - b.usdPerHour) > costTol) return a.usdPerHour < b.usdPerHour;
  if (a.replicas !== b.replicas) return a.replicas < b.replicas;
  for (let i = 0; i < a.add.length; i++) {
    if (a.add[i] !== b.add[i]) return a.add[i]! > b.add[i]!;
  }
  return false;
}

/** Whether adding `add` stays within the shared caps (each group's own cap is the loop bound). */
function withinSharedCaps(p: Problem, add: readonly number[]): boolean {
  let replicas = 0;
  const perType = p.typeRoom.map(() => 0);
  for (let i = 0; i < add.length; i++) {
    replicas += add[i]!;
    perType[p.groups[i]!.typeIndex]! += add[i]!;
  }
  return replicas <= p.replicaRoom && perType.every((n, t) => n <= p.typeRoom[t]!);
}

// ── Exact ──────────────────────────────────────────────────────────────────────────────────────

function exactBounds(p: Problem): number[] {
  return p.groups.map((g) => {
    const d = g.tier === 'on-demand' ? Math.max(p.deficit, p.deficitOnDemand) : p.deficit;
    return Math.min(g.maxAdd, p.replicaRoom, Math.ceil(d / g.capacity));
  });
}

/** Π (b + 1). */
function searchSpace(bounds: readonly number[]): number {
  return bounds.reduce((size, b) => size * (b + 1), 1);
}

/** Every vector with 0 ≤ add[i] ≤ bounds[i], as an odometer (lowest digit first). */
function enumerate(p: Problem, bounds: readonly number[]): Candidate {
  const add = zeros(p);
  let best = evaluate(p, add.slice());
  for (;;) {
    let i = 0;
    while (i < add.length && add[i] === bounds[i]) add[i++] = 0;
    if (i === add.length) return best;
    add[i]!++;
    if (!withinSharedCaps(p, add)) continue;
    const c = evaluate(p, add);
    if (better(p, c, best)) best = evaluate(p, add.slice());
  }
}

// ── Greedy ─────────────────────────────────────────────────────────────────────────────────────

function priceOrder(p: Problem): number[] {
  const ratio = (i: number) => p.groups[i]!.usdPerHour / p.groups[i]!.capacity;
  return p.groups
    .map((_, i) => i)
    .sort((a, b) => ratio(a) - ratio(b) || p.groups[b]!.capacity - p.groups[a]!.capacity || a - b);
}

function densityOrder(p: Problem): number[] {
  const ratio = (i: number) => p.groups[i]!.usdPerHour / p.groups[i]!.capacity;
  return p.groups
    .map((_, i) => i)
    .sort((a, b) => p.groups[b]!.capacity - p.groups[a]!.capacity || ratio(a) - ratio(b) || a - b);
}

interface Fill {
  readonly best: Candidate;
  /** A shared type cap or R limited some take below what the group's own caps allowed. */
  readonly cut: boolean;
  /** Price of one replica of the last group phase A / phase B took from (0: none). */
  readonly lastPriceA: number;
  readonly lastPriceB: number;
}

/** Phase A (on-demand deficit, on-demand groups), phase B (total deficit, all groups), then trim. */
function greedyFill(p: Problem, order: readonly number[]): Fill {
  const add = zeros(p);
  const typeUsed = p.typeRoom.map(() => 0);
  let replicas = 0;
  let cut = false;
  const phase = (deficit: number, onDemandOnly: boolean): { left: number; lastPrice: number } => {
    let left = deficit;
    let lastPrice = 0;
    for (const i of order) {
      const g = p.groups[i]!;
      if (left <= p.tol) break;
      if (onDemandOnly && g.tier !== 'on-demand') continue;
      const own = Math.min(Math.ceil((left - p.tol) / g.capacity), g.maxAdd - add[i]!);
      const take = Math.min(own, p.typeRoom[g.typeIndex]! - typeUsed[g.typeIndex]!, p.replicaRoom - replicas);
      if (take < own) cut = true;
      if (take <= 0) continue;
      add[i]! += take;
      typeUsed[g.typeIndex]! += take;
      replicas += take;
      left -= take * g.capacity;
      lastPrice = g.usdPerHour;
    }
    return { left, lastPrice };
  };
  const a = phase(p.deficitOnDemand, true);
  const addedA = p.deficitOnDemand - a.left;
  const b = phase(p.deficit - addedA, false);
  trim(p, add);
  return { best: evaluate(p, add), cut, lastPriceA: a.lastPrice, lastPriceB: b.lastPrice };
}

/** Drops replicas, dearest first, while the credited capacity holds. */
function trim(p: Problem, add: number[]): void {
  const order = add.map((_, i) => i);
  order.sort((a, b) => p.groups[b]!.usdPerHour - p.groups[a]!.usdPerHour || b - a);
  const credited = evaluate(p, add).credited;
  for (const i of order) {
    while (add[i]! > 0) {
      add[i]!--;
      if (evaluate(p, add).credited >= credited - p.tol) continue;
      add[i]!++;
      break;
    }
  }
}

/** The LP relaxation's optimum (see the module comment): fractional two-phase fill by price. */
function lpLowerBound(p: Problem): number {
  const used = zeros(p);
  let usdPerHour = 0;
  const phase = (deficit: number, onDemandOnly: boolean): number => {
    let left = deficit - p.tol;
    for (const i of priceOrder(p)) {
      const g = p.groups[i]!;
      if (left <= 0) break;
      if (onDemandOnly && g.tier !== 'on-demand') continue;
      const units = Math.min(left, (g.maxAdd - used[i]!) * g.capacity);
      if (units <= 0) continue;
      used[i]! += units / g.capacity;
      usdPerHour += (units / g.capacity) * g.usdPerHour;
      left -= units;
    }
    return Math.max(0, left);
  };
  if (phase(p.deficitOnDemand, true) > 0) return Number.POSITIVE_INFINITY;
  const addedA = used.reduce((sum, n, i) => sum + n * p.groups[i]!.capacity, 0);
  if (phase(p.deficit - addedA, false) > 0) return Number.POSITIVE_INFINITY;
  return usdPerHour;
}

// ── Result ─────────────────────────────────────────────────────────────────────────────────────

function keptUsdPerHour(p: Problem): number {
  return p.groups.reduce((sum, g) => sum + g.kept * g.usdPerHour, 0);
}

function finish(
  p: Problem,
  c: Candidate,
  method: 'exact' | 'greedy',
  gap: number,
  lowerBound: number,
  space: number,
  how: string,
): CapacityPlan {
  const placements: Placement[] = [];
  let capacity = 0;
  p.groups.forEach((g, i) => {
    const count = g.kept + c.add[i]!;
    capacity += count * g.capacity;
    if (count > 0) placements.push({ type: g.type, tier: g.tier, count });
  });
  const feasible = isMet(p, c.credited);
  const short = feasible
    ? ''
    : `; short: no plan within the caps meets ${p.need}, this one credits ${round(c.credited)} ` +
      `(on-demand floor ${round(p.need - p.spotCredit)}, spot counted up to ${round(p.spotCredit)})` +
      (method === 'greedy' ? ', the largest the greedy found' : ', the most any plan can');
  return {
    placements,
    capacity,
    usdPerHour: c.usdPerHour + keptUsdPerHour(p),
    method,
    note: how + short,
    feasible,
    lowerBoundUsdPerHour: lowerBound,
    maxGapUsdPerHour: feasible ? gap : Number.POSITIVE_INFINITY,
    searchSpace: space,
  };
}

function usd(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toFixed(4))) : '∞';
}

function round(x: number): string {
  return String(Number(x.toFixed(6)));
}
