/**
 * @module router/router
 * The builtin that runs a routing profile: filters, then weighted scorers, then one picker. The
 * profile is compiled once per config version; at request time the router only iterates arrays.
 */
import { SwitchyardError } from '../core/errors.js';
import { type Rng, SeededRng } from '../core/rng.js';
import type { EngineProfile } from '../engine-model/types.js';
import type { EndpointInfo, EndpointView } from '../framework/endpoint.js';
import type {
  EndpointLoad,
  Filter,
  ModelFactors,
  Picker,
  PoolKnowledge,
  RoutingContext,
  RoutingObserver,
  RoutingOutcome,
  RoutingRequest,
  Scorer,
} from '../framework/routing.js';
import type { RoutingRegistry } from '../plugins/routing/register.js';
import { PoolLedger } from './ledger.js';
import type { PrefixIndex } from './prefix-index.js';

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
  /** The pool's knowledge; it outlives this router (see router/ledger.ts). */
  readonly ledger: PoolLedger;
  /** The reason of the last decision (read right after {@link route}). */
  lastReason = '';
  /** Predicted cached prompt tokens on the endpoint of the last decision. */
  lastCachedTokens = 0;
  /** Candidates left after the filters in the last decision. */
  lastCandidates = 0;
  /** The TTFT a cost-model scorer predicted on the endpoint of the last decision (NaN: none). */
  lastPredictedTtftMs = Number.NaN;

  /**
   * Instantiates every plugin of `spec` from `registry`; unknown types throw naming the type.
   * `endpoints` are the pool's endpoints in index order (their profiles size the prefix index),
   * used to start a ledger when none is given; a given `ledger` is kept with what it knows.
   */
  constructor(
    spec: RoutingProfileSpec,
    registry: RoutingRegistry,
    endpoints: readonly EndpointInfo[],
    rng: Rng = new SeededRng(1),
    ledger?: PoolLedger,
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
    this.ledger = ledger ?? PoolLedger.of(endpoints);
    const n = this.ledger.size;
    this.partial = new Float64Array(n);
    this.total = new Float64Array(n);
    this.ctx = { rng, pool: this, reason: '' };
  }

  get size(): number {
    return this.ledger.size;
  }

  get meanOutputTokens(): number {
    return this.ledger.meanOutputTokens;
  }

  load(index: number): EndpointLoad {
    return this.ledger.load(index);
  }

  /** Requests of the pool still waiting for their first token (the scheduler's batch rule). */
  get prefilling(): number {
    return this.ledger.prefilling;
  }

  cachedPrefixTokens(index: number): number {
    return this.ledger.cachedPrefixTokens(index);
  }

  cachedTokensTotal(index: number): number {
    return this.ledger.cachedTokensTotal(index);
  }

  correction(index: number): ModelFactors {
    return this.ledger.correction(index);
  }

  correctedProfile(index: number, base: EngineProfile): EngineProfile {
    return this.ledger.correctedProfile(index, base);
  }

  notePrediction(ttftMs: number): void {
    this.lastPredictedTtftMs = ttftMs;
  }

  /** The pool's prefix index (null until a request with prefix hashes arrives). */
  prefixIndex(): PrefixIndex | null {
    return this.ledger.prefixIndex();
  }

  /**
   * Chooses one endpoint and records the request as routed there (until {@link finished}). Throws
   * SWY_ERR_NO_HEALTHY_ENDPOINT when the filters leave nothing because of health, and
   * SWY_ERR_OVERLOADED when the healthy endpoints are all at capacity. `record`, when given, is
   * filled with the decision's explanation. `nowMs`, the host clock's time, lets the ledger set the
   * request's observed latencies against the prediction (NaN: nothing is learnt).
   */
  route(
    req: RoutingRequest,
    views: readonly EndpointView[],
    record?: DecisionRecord,
    nowMs = Number.NaN,
  ): EndpointView {
    const ctx = this.ctx;
    ctx.reason = '';
    this.lastPredictedTtftMs = Number.NaN;
    const indexed = this.ledger.matchPrefix(req);
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
    this.lastCachedTokens = this.ledger.cachedPrefixTokens(chosen.index);
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
    this.routed(req, chosen.index, indexed, nowMs);
    return chosen;
  }

  /** The request's first token arrived (at `nowMs`): its prefill no longer queues ahead of others. */
  firstToken(reqId: string, nowMs = Number.NaN): void {
    this.ledger.firstToken(reqId, nowMs);
  }

  /** Tokens of the request after its first arrived at `nowMs`. */
  tokens(reqId: string, nowMs: number): void {
    this.ledger.tokens(reqId, nowMs);
  }

  /** The request left its endpoint; stateful plugins and the prefix index learn from the outcome. */
  finished(reqId: string, outcome: RoutingOutcome): void {
    const t = this.ledger.finished(reqId, outcome);
    if (t === undefined) return;
    for (const o of this.observers) o.onFinished?.(t.req, t.index, outcome);
  }

  /** Requests routed and not finished (for tests and leak checks). */
  get outstanding(): number {
    return this.ledger.outstanding;
  }

  private routed(req: RoutingRequest, index: number, indexed: boolean, nowMs: number): void {
    // A retry of the same request id replaces its earlier ticket (the failed attempt finished first).
    if (this.ledger.has(req.id)) this.finished(req.id, { ok: false, cachedTokens: null, outputTokens: null });
    this.ledger.routed(req, index, indexed, nowMs);
    for (const o of this.observers) o.onRouted?.(req, index, this.ctx);
  }
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
