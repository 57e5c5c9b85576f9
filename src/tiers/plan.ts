/**
 * @module tiers/plan
 * Tier aliases, compiled once per config version, and the per-request decision: which pools to try
 * in which order, which rule decided, and whether the request must stay on local pools. Every plan
 * is built at compile time; deciding only walks the rules and returns one of them. Pure: no I/O, no
 * clock, no randomness.
 */
import { assert } from '../core/assert.js';
import type { CascadeCheck, SwitchyardConfig, TierConfig, TierRuleConfig } from '../config/schema.js';
import type { TierSignals } from './signals.js';

/** Header a client may set to a pool (name or alias) of the alias to choose it directly. */
export const TIER_HEADER = 'x-switchyard-tier';

/** What happens to a small tier's answer: checked, and on a failed check asked of other pools. */
export interface CascadePlan {
  /** The pool whose answers are checked. */
  readonly from: string;
  /** `to`, then its fallback chain, without `from` (local pools only under a localOnly rule). */
  readonly pools: readonly string[];
  readonly checks: readonly CascadeCheck[];
}

/** The decision for one request. Plans are shared and frozen. */
export interface TierPlan {
  /** Pools to try in order: the chosen pool, then its fallback chain. */
  readonly pools: readonly string[];
  /** The rule's name, `header` (chosen by {@link TIER_HEADER}) or `default`. */
  readonly rule: string;
  /** Whether every pool in this plan (and its cascade) is local, because a localOnly rule decided. */
  readonly localOnly: boolean;
  /** Applies when `cascade.from` answers a non-streamed chat request; null when no pool here is `from`. */
  readonly cascade: CascadePlan | null;
}

/** Rule name reported when no rule matched. */
export const DEFAULT_RULE = 'default';
/** Rule name reported when {@link TIER_HEADER} chose the pool. */
export const HEADER_RULE = 'header';

interface CompiledRule {
  readonly plan: TierPlan;
  readonly tokensBelow: number;
  readonly tokensAtLeast: number;
  readonly headers: readonly (readonly [name: string, value: string])[] | null;
  readonly tenants: ReadonlySet<string> | null;
  readonly match: RegExp | null;
  readonly keywords: RegExp | null;
  readonly pii: boolean;
}

/** One compiled tier alias. */
export class TierAlias {
  constructor(
    readonly name: string,
    private readonly rules: readonly CompiledRule[],
    private readonly defaultPlan: TierPlan,
    /** Pool name or alias → the plan that starts with it, for {@link TIER_HEADER}. */
    private readonly hinted: ReadonlyMap<string, TierPlan>,
  ) {}

  /**
   * The plan for a request. The first rule whose conditions all hold decides; else the default.
   * A client's {@link TIER_HEADER} naming one of the alias's pools overrides that decision, except
   * when the deciding rule is localOnly: a client cannot send private data off-site by asking.
   */
  plan(s: TierSignals): TierPlan {
    let decided: TierPlan | null = null;
    for (const rule of this.rules) {
      if (matches(rule, s)) {
        decided = rule.plan;
        break;
      }
    }
    if (decided?.localOnly === true) return decided;
    const hint = s.header(TIER_HEADER);
    return (hint === undefined ? undefined : this.hinted.get(hint)) ?? decided ?? this.defaultPlan;
  }
}

/** Cheap conditions first, so a rule that fails on size or headers never scans the text. */
function matches(r: CompiledRule, s: TierSignals): boolean {
  if (s.promptTokens >= r.tokensBelow || s.promptTokens < r.tokensAtLeast) return false;
  if (r.headers !== null) for (const [name, value] of r.headers) if (s.header(name) !== value) return false;
  if (r.tenants !== null) {
    const tenant = s.tenant;
    if (tenant === undefined || !r.tenants.has(tenant)) return false;
  }
  if (r.match !== null && !r.match.test(s.lastUserText)) return false;
  if (r.keywords !== null && !r.keywords.test(s.lastUserText)) return false;
  return !r.pii || s.pii !== null;
}

/** Compiles every tier alias of a validated (cross-checked) config. */
export function compileTiers(cfg: Readonly<SwitchyardConfig>): ReadonlyMap<string, TierAlias> {
  const poolOf = new Map<string, string>();
  for (const [pool, def] of Object.entries(cfg.pools)) {
    for (const name of [pool, ...def.aliases]) poolOf.set(name, pool);
  }
  const out = new Map<string, TierAlias>();
  for (const [name, tier] of Object.entries(cfg.tiers)) out.set(name, compileTier(name, tier, cfg, poolOf));
  return out;
}

function compileTier(
  name: string,
  tier: TierConfig,
  cfg: Readonly<SwitchyardConfig>,
  poolOf: ReadonlyMap<string, string>,
): TierAlias {
  const resolve = (ref: string): string => {
    const pool = poolOf.get(ref);
    assert(pool !== undefined, `tiers.${name}: pool "${ref}" was not cross-checked`);
    return pool;
  };
  const isLocal = (pool: string): boolean => cfg.pools[pool]?.local === true;
  const fallback = new Map<string, string[]>();
  for (const [from, to] of Object.entries(tier.fallback)) fallback.set(resolve(from), to.map(resolve));

  /** The pool, then its own fallback list (one level: fallbacks of fallbacks are not followed). */
  const chain = (pool: string, localOnly: boolean): string[] => {
    const pools = [...new Set([pool, ...(fallback.get(pool) ?? [])])];
    return localOnly ? pools.filter(isLocal) : pools;
  };
  const cascadeFor = (localOnly: boolean): CascadePlan | null => {
    if (tier.cascade === undefined) return null;
    const from = resolve(tier.cascade.from);
    const pools = chain(resolve(tier.cascade.to), localOnly).filter((p) => p !== from);
    if (pools.length === 0) return null;
    return Object.freeze({
      from,
      pools: Object.freeze(pools),
      checks: Object.freeze([...tier.cascade.checks]),
    });
  };
  const cascades = [cascadeFor(false), cascadeFor(true)] as const;
  const planOf = (pool: string, rule: string, localOnly: boolean): TierPlan => {
    const pools = chain(pool, localOnly);
    const cascade = cascades[localOnly ? 1 : 0];
    return Object.freeze({
      pools: Object.freeze(pools),
      rule,
      localOnly,
      cascade: cascade !== null && pools.includes(cascade.from) ? cascade : null,
    });
  };

  const rules = tier.rules.map((r, i) =>
    compileRule(r, planOf(resolve(r.pool), r.name ?? `rules[${i}]`, r.localOnly)),
  );
  const used = new Set([
    resolve(tier.default),
    ...tier.rules.map((r) => resolve(r.pool)),
    ...fallback.keys(),
  ]);
  for (const to of fallback.values()) for (const p of to) used.add(p);
  if (tier.cascade !== undefined) for (const p of [tier.cascade.from, tier.cascade.to]) used.add(resolve(p));
  const hinted = new Map<string, TierPlan>();
  for (const pool of used) {
    const plan = planOf(pool, HEADER_RULE, false);
    hinted.set(pool, plan);
    for (const alias of cfg.pools[pool]?.aliases ?? []) hinted.set(alias, plan);
  }
  return new TierAlias(name, rules, planOf(resolve(tier.default), DEFAULT_RULE, false), hinted);
}

function compileRule(r: TierRuleConfig, plan: TierPlan): CompiledRule {
  const w = r.when;
  return {
    plan,
    tokensBelow: w.promptTokensBelow ?? Number.POSITIVE_INFINITY,
    tokensAtLeast: w.promptTokensAtLeast ?? 0,
    headers:
      w.header === undefined
        ? null
        : Object.entries(w.header).map(([name, value]) => [name.toLowerCase(), value] as const),
    tenants: w.tenant === undefined ? null : new Set(w.tenant),
    match: w.match === undefined ? null : new RegExp(w.match, 'i'),
    keywords: w.keywords === undefined ? null : keywordPattern(w.keywords),
    pii: w.pii === true,
  };
}

/** One pattern for a keyword list: any of them as a whole word or phrase, in any case. */
function keywordPattern(keywords: readonly string[]): RegExp {
  const alternatives = keywords.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])`, 'iu');
}
