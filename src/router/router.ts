/**
 * @module router/router
 * The builtin that runs a routing profile: filters, then weighted scorers, then one picker. The
 * profile is compiled once per config version; at request time the router only iterates arrays.
 */
import { SwitchyardError } from '../core/errors.js';
import { type Rng, SeededRng } from '../core/rng.js';
import type { EndpointInfo, EndpointView } from '../framework/endpoint.js';
import type {
  EndpointLoad,
  Filter,
  Picker,
  PoolKnowledge,
  RoutingContext,
  RoutingObserver,
  RoutingOutcome,
  RoutingRequest,
  Scorer,
} from '../framework/routing.js';
import type { RoutingRegistry } from '../plugins/routing/register.js';
import { prefillPairs } from '../engine-model/step-time.js';
import { PrefixIndex } from './prefix-index.js';

/** A profile as plugin references (the config shape after presets are expanded). */
export interface RoutingProfileSpec {
  readonly filters: readonly { type: string; params: Readonly<Record<string, unknown>> }[];
  readonly scorers: readonly { type: string; weight: number; params: Readonly<Record<string, unknown>> }[];
  readonly picker: { type: string; params: Readonly<Record<string, unknown>> };
}

/** The explanation of one routing decision (filled only when asked for). */
export interface DecisionRecord {
  /** Why the pick was made (`ctx.reason`), e.g. `prefix-hit`, `least-load`, `sticky`. */
  reason: string;
  /** Endpoints offered to the router. */
  offered: number;
  /** Endpoints each filter removed, in filter order (filters that removed none are left out). */
  removed: { filter: string; count: number }[];
  /** Candidates that reached the scorers, with each scorer's score (same order as the profile). */
  scored: { endpoint: string; total: number; scores: number[] }[];
  /** Scorer names, matching `scored[].scores`. */
  scorers: string[];
  /** The endpoint picked. */
  chosen: string;
  /** Prompt tokens the chosen endpoint is believed to hold in its prefix cache. */
  cachedTokens: number;
}

/** What the router remembers about one routed request until it finishes. */
interface Ticket {
  readonly req: RoutingRequest;
  readonly index: number;
  readonly uncached: number;
  readonly pairs: number;
  readonly predictedBlocks: number;
  readonly kv: number;
  readonly decode: number;
  prefilling: boolean;
}

/** Default KV capacity (tokens) assumed for an endpoint without an engine profile. */
const UNKNOWN_KV_TOKENS = 262_144;

/** A compiled routing profile for one pool, with the pool's routing knowledge. */
export class Router implements PoolKnowledge {
  private readonly filters: readonly Filter[];
  private readonly scorers: readonly Scorer[];
  private readonly weights: Float64Array;
  private readonly picker: Picker;
  private readonly observers: readonly RoutingObserver[];
  private readonly partial: Float64Array;
  private readonly total: Float64Array;
  private readonly ctx: RoutingContext & { rng: Rng };
  // Pool knowledge, by endpoint index.
  private readonly kvTokens: readonly number[];
  private prefix: PrefixIndex | null = null;
  private prefixBlockTokens = 0;
  private readonly matched: Float64Array;
  private readonly loads: MutableLoad[];
  private readonly tickets = new Map<string, Ticket>();
  meanOutputTokens = 256;
  /** The reason of the last decision (read right after {@link route}). */
  lastReason = '';
  /** Predicted cached prompt tokens on the endpoint of the last decision. */
  lastCachedTokens = 0;
  /** Candidates left after the filters in the last decision. */
  lastCandidates = 0;

  /**
   * Instantiates every plugin of `spec` from `registry`; unknown types throw naming the type.
   * `endpoints` are the pool's endpoints in index order (their profiles size the prefix index).
   */
  constructor(
    spec: RoutingProfileSpec,
    registry: RoutingRegistry,
    endpoints: readonly EndpointInfo[],
    rng: Rng = new SeededRng(1),
  ) {
    this.filters = spec.filters.map((f, i) =>
      make(registry.filters, 'filter', f.type, `filters[${i}]`, f.params),
    );
    this.scorers = spec.scorers.map((s, i) =>
      make(registry.scorers, 'scorer', s.type, `scorers[${i}]`, s.params),
    );
    this.weights = Float64Array.from(spec.scorers, (s) => s.weight);
    this.picker = make(registry.pickers, 'picker', spec.picker.type, 'picker', spec.picker.params);
    this.observers = [...this.filters, ...this.scorers, this.picker].filter(
      (p) => p.onRouted !== undefined || p.onFinished !== undefined,
    );
    const n = endpoints.length;
    this.partial = new Float64Array(n);
    this.total = new Float64Array(n);
    this.matched = new Float64Array(n);
    this.kvTokens = endpoints.map((e) =>
      e.profile ? e.profile.numKvBlocks * e.profile.blockSize : UNKNOWN_KV_TOKENS,
    );
    this.loads = endpoints.map(() => ({
      requests: 0,
      prefilling: 0,
      prefillTokens: 0,
      prefillPairs: 0,
      kvTokens: 0,
      decodeTokens: 0,
    }));
    this.ctx = { rng, pool: this, reason: '' };
  }

  get size(): number {
    return this.loads.length;
  }

  load(index: number): EndpointLoad {
    return this.loads[index]!;
  }

  /** Requests of the pool still waiting for their first token (the scheduler's batch rule). */
  get prefilling(): number {
    let n = 0;
    for (const l of this.loads) n += l.prefilling;
    return n;
  }

  cachedPrefixTokens(index: number): number {
    return this.matched[index]!;
  }

  cachedTokensTotal(index: number): number {
    return this.prefix === null ? 0 : this.prefix.blocks(index) * this.prefixBlockTokens;
  }

  /** The pool's prefix index (null until a request with prefix hashes arrives). */
  prefixIndex(): PrefixIndex | null {
    return this.prefix;
  }

  /**
   * Chooses one endpoint and records the request as routed there (until {@link finished}). Throws
   * SWY_ERR_NO_HEALTHY_ENDPOINT when the filters leave nothing because of health, and
   * SWY_ERR_OVERLOADED when the healthy endpoints are all at capacity. `record`, when given, is
   * filled with the decision's explanation.
   */
  route(req: RoutingRequest, views: readonly EndpointView[], record?: DecisionRecord): EndpointView {
    const ctx = this.ctx;
    ctx.reason = '';
    const indexed = this.matchPrefix(req);
    let candidates = views;
    if (record !== undefined) {
      record.offered = views.length;
      record.removed = [];
    }
    for (const f of this.filters) {
      const before = candidates.length;
      candidates = f.filter(req, candidates, ctx);
      if (record !== undefined && candidates.length < before) {
        record.removed.push({ filter: f.type, count: before - candidates.length });
      }
      if (candidates.length === 0) throw emptyError(req, views);
    }
    const n = candidates.length;
    const total = this.total.length >= n ? this.total : new Float64Array(n);
    total.fill(0, 0, n);
    const partial = this.partial.length >= n ? this.partial : new Float64Array(n);
    const perScorer = record !== undefined ? this.scorers.map(() => new Float64Array(n)) : null;
    for (let s = 0; s < this.scorers.length; s++) {
      partial.fill(0, 0, n);
      this.scorers[s]!.score(req, candidates, partial, ctx);
      const w = this.weights[s]!;
      // The framework, not the plugin, enforces the [0, 1] contract.
      for (let i = 0; i < n; i++) {
        const v = Math.min(1, Math.max(0, partial[i]! || 0));
        total[i]! += w * v;
        if (perScorer !== null) perScorer[s]![i] = v;
      }
    }
    const idx = this.picker.pick(req, candidates, total.subarray(0, n), ctx);
    const chosen = candidates[idx];
    if (chosen === undefined) throw new Error(`picker ${this.picker.name} returned index ${idx} of ${n}`);
    if (ctx.reason === '') ctx.reason = n === 1 ? 'only-candidate' : this.picker.type;
    this.lastReason = ctx.reason;
    this.lastCachedTokens = this.matched[chosen.index]!;
    this.lastCandidates = n;
    if (record !== undefined) {
      record.reason = ctx.reason;
      record.scorers = this.scorers.map((s) => s.type);
      record.scored = candidates.map((c, i) => ({
        endpoint: c.id,
        total: total[i]!,
        scores: perScorer!.map((p) => p[i]!),
      }));
      record.chosen = chosen.id;
      record.cachedTokens = this.lastCachedTokens;
    }
    this.routed(req, chosen.index, indexed);
    return chosen;
  }

  /** The request's first token arrived: its prefill no longer queues ahead of others. */
  firstToken(reqId: string): void {
    const t = this.tickets.get(reqId);
    if (t === undefined || !t.prefilling) return;
    t.prefilling = false;
    const l = this.loads[t.index]!;
    l.prefilling--;
    l.prefillTokens -= t.uncached;
    l.prefillPairs -= t.pairs;
  }

  /** The request left its endpoint; stateful plugins and the prefix index learn from the outcome. */
  finished(reqId: string, outcome: RoutingOutcome): void {
    const t = this.tickets.get(reqId);
    if (t === undefined) return;
    this.firstToken(reqId);
    this.tickets.delete(reqId);
    const l = this.loads[t.index]!;
    l.requests--;
    l.kvTokens -= t.kv;
    l.decodeTokens -= t.decode;
    if (outcome.ok && outcome.outputTokens !== null) {
      // Slow EWMA: a decode-length estimate for load, not a per-request prediction.
      this.meanOutputTokens += (outcome.outputTokens - this.meanOutputTokens) / 64;
    }
    if (outcome.ok && outcome.cachedTokens !== null && this.prefix !== null) {
      this.prefix.correct(
        t.index,
        t.predictedBlocks,
        Math.floor(outcome.cachedTokens / this.prefixBlockTokens),
      );
    }
    for (const o of this.observers) o.onFinished?.(t.req, t.index, outcome);
  }

  /** Requests routed and not finished (for tests and leak checks). */
  get outstanding(): number {
    return this.tickets.size;
  }

  /**
   * Fills `matched` with the prompt tokens each endpoint is believed to hold; returns whether the
   * request's prefix signal fits this pool's index (then the routed request is recorded in it).
   */
  private matchPrefix(req: RoutingRequest): boolean {
    const bt = req.prefixBlockTokens;
    if (req.prefixHashes.length === 0) {
      this.matched.fill(0);
      return false;
    }
    if (this.prefix === null) {
      this.prefixBlockTokens = bt;
      this.prefix = new PrefixIndex(this.kvTokens.map((t) => t / bt));
    }
    if (bt !== this.prefixBlockTokens) {
      // One block size per pool; a request hashed differently carries no usable signal here.
      this.matched.fill(0);
      return false;
    }
    this.prefix.match(req.prefixHashes, this.matched);
    const cap = req.promptTokensEstimate;
    for (let e = 0; e < this.matched.length; e++) this.matched[e] = Math.min(cap, this.matched[e]! * bt);
    return true;
  }

  private routed(req: RoutingRequest, index: number, indexed: boolean): void {
    const cached = this.matched[index]!;
    const uncached = Math.max(0, req.promptTokensEstimate - cached);
    const decode = this.meanOutputTokens;
    const kv = req.promptTokensEstimate + decode;
    const t: Ticket = {
      req,
      index,
      uncached,
      pairs: prefillPairs(uncached, cached),
      predictedBlocks: this.prefixBlockTokens > 0 ? Math.floor(cached / this.prefixBlockTokens) : 0,
      kv,
      decode,
      prefilling: true,
    };
    // A retry of the same request id replaces its earlier ticket (the failed attempt finished first).
    if (this.tickets.has(req.id))
      this.finished(req.id, { ok: false, cachedTokens: null, outputTokens: null });
    this.tickets.set(req.id, t);
    const l = this.loads[index]!;
    l.requests++;
    l.prefilling++;
    l.prefillTokens += uncached;
    l.prefillPairs += t.pairs;
    l.kvTokens += kv;
    l.decodeTokens += decode;
    if (indexed) this.prefix!.insert(index, req.prefixHashes);
    for (const o of this.observers) o.onRouted?.(req, index, this.ctx);
  }
}

interface MutableLoad {
  requests: number;
  prefilling: number;
  prefillTokens: number;
  prefillPairs: number;
  kvTokens: number;
  decodeTokens: number;
}

function make<P>(
  factories: ReadonlyMap<string, (name: string, params: Readonly<Record<string, unknown>>) => P>,
  kind: string,
  type: string,
  name: string,
  params: Readonly<Record<string, unknown>>,
): P {
  const factory = factories.get(type);
  if (factory === undefined) {
    throw new Error(`unknown ${kind} type "${type}" (known: ${[...factories.keys()].join(', ')})`);
  }
  return factory(name, params);
}

function emptyError(req: RoutingRequest, views: readonly EndpointView[]): SwitchyardError {
  const healthy = views.some((v) => v.healthy && v.circuit !== 'open');
  if (healthy) {
    return new SwitchyardError('SWY_ERR_OVERLOADED', `all endpoints of model "${req.pool}" are at capacity`);
  }
  return new SwitchyardError('SWY_ERR_NO_HEALTHY_ENDPOINT', `no healthy endpoint for model "${req.pool}"`);
}
