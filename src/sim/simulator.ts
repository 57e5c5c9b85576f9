/**
 * @module sim/simulator
 * Replays a workload through the gateway's own routing code on a virtual clock. Each endpoint is the
 * engine model (the same module the emulated engine runs) with the same data-layer state the live
 * gateway keeps (`EndpointState`: in-flight count, breaker, scraped metrics); each pool routes with
 * the same compiled `Router` the live gateway builds from the same profile. The trace is streamed
 * and per-request results go to a sink as they finish, so memory does not grow with trace length.
 */
import { SwitchyardError } from '../core/errors.js';
import { SeededRng } from '../core/rng.js';
import { VirtualClock } from '../core/virtual-clock.js';
import { EndpointState } from '../datalayer/endpoint-state.js';
import { EngineModel } from '../engine-model/engine-model.js';
import { prefillPairs, stepTimeMs } from '../engine-model/step-time.js';
import type { EngineProfile, EngineRequestResult } from '../engine-model/types.js';
import type { RoutingRequest } from '../framework/routing.js';
import { builtinRoutingRegistry } from '../plugins/routing/register.js';
import { Router, type RoutingProfileSpec } from '../router/router.js';
import { engineBlockHashes, routingBlockHashes } from '../traces/block-hashes.js';
import type { TraceRecord } from '../traces/record.js';
import { LogHistogram, type Percentiles } from './log-histogram.js';
import { Timeline, type TimelinePoint } from './timeline.js';

/** One simulated replica. */
export interface SimEndpointSpec {
  readonly name: string;
  readonly profile: EngineProfile;
  /** The gateway's per-endpoint concurrency limit, as in the live config. */
  readonly maxConcurrency: number;
  /**
   * A replica added during the run: it starts at this simulated time (ms, the trace's time base) and
   * takes the profile's cold start before it serves. Absent: warm from the start.
   */
  readonly startAtMs?: number;
}

export interface SimPoolSpec {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly endpoints: readonly SimEndpointSpec[];
  /** This pool's routing profile; default {@link SimOptions.routing}. */
  readonly routing?: RoutingProfileSpec;
}

export interface SimOptions {
  readonly pools: readonly SimPoolSpec[];
  readonly routing: RoutingProfileSpec;
  readonly seed?: number;
  /** How often engine metrics are scraped into the endpoint views (ms); 0 = fresh at every decision. */
  readonly scrapeIntervalMs?: number;
  /** Requests each engine may hold waiting; more are refused (as the emulated server's 503). */
  readonly maxWaitingPerEngine?: number;
  /** TTFT SLO: absolute ms, or a multiple of the request's own TTFT on an idle replica. */
  readonly slo?: {
    readonly ttftMs?: number;
    readonly ttftScale?: number;
    readonly tpotMs?: number;
    /** Whose idle TTFT `ttftScale` multiplies (default: the serving replica's own profile). */
    readonly referenceProfile?: EngineProfile;
  };
  /** How often the fleet's state (queues, running batches) is sampled for the report (ms; default 1000). */
  readonly sampleIntervalMs?: number;
}

/** What the HTML report draws, beyond the summary. */
export interface SimCharts {
  readonly timeline: readonly TimelinePoint[];
  readonly replicaNames: readonly string[];
  readonly ttftCdf: readonly [number, number][];
  readonly e2eCdf: readonly [number, number][];
}

/** The outcome of one request, as written to `requests.jsonl`. */
export interface RequestRecord {
  readonly id: string;
  readonly arrival_ms: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cached_tokens: number;
  readonly queue_ms: number;
  readonly ttft_ms: number;
  readonly tpot_ms: number;
  readonly e2e_ms: number;
  readonly endpoint: string;
  readonly pool: string;
  readonly status: 'ok' | 'rejected';
  /** Why a request was refused: no endpoint could take it, the engine queue was full, or it exceeds the model's context. */
  readonly reject_reason: 'none' | 'no_endpoint' | 'queue_full' | 'too_long';
  readonly preemptions: number;
  readonly slo_met: boolean;
  /** The routing decision, compactly: its reason, the candidates left after filters, and the prompt tokens the router believed cached on the pick. */
  readonly route: string;
  readonly route_candidates: number;
  readonly predicted_cached_tokens: number;
}

export interface SimSummary {
  readonly requests: number;
  readonly completed: number;
  readonly rejected: number;
  /** Rejections by reason (only reasons that occurred). */
  readonly rejected_by_reason: Readonly<Record<string, number>>;
  readonly duration_s: number;
  readonly ttft_ms: Percentiles;
  readonly tpot_ms: Percentiles;
  readonly e2e_ms: Percentiles;
  readonly queue_ms: Percentiles;
  /** Requests that met the SLO ÷ requests, leaving out those longer than the model's context. */
  readonly slo_attainment: number;
  readonly goodput_rps: number;
  readonly throughput_rps: number;
  /** Requests ÷ the time from the first to the last arrival. */
  readonly arrival_rate_rps: number;
  readonly output_tokens_per_s: number;
  /** Cached prompt tokens / prompt tokens of completed requests; null when the trace has no block ids. */
  readonly prefix_hit_rate: number | null;
  /** Time-average number of requests in the system (Little's law: = throughput × mean E2E). */
  readonly mean_in_system: number;
  /** Requests served by the busiest replica ÷ the pool's mean per replica (1 = even); the worst pool. */
  readonly load_imbalance: number;
  readonly per_endpoint: Readonly<Record<string, number>>;
  readonly replica_seconds: number;
  readonly cost_usd: number;
  readonly cold_starts: number;
  /** Routing decisions by reason. */
  readonly routing_reasons: Readonly<Record<string, number>>;
}

/** The routing decision of one request, as its record reports it. */
interface RouteNote {
  readonly reason: string;
  readonly candidates: number;
  readonly cached: number;
}

const NO_ROUTE: RouteNote = { reason: 'none', candidates: 0, cached: 0 };

interface SimEndpoint {
  /** Index of this replica across all pools (timeline column). */
  readonly slot: number;
  readonly spec: SimEndpointSpec;
  readonly state: EndpointState;
  readonly engine: EngineModel;
  served: number;
}

interface SimPool {
  readonly name: string;
  readonly endpoints: readonly SimEndpoint[];
  readonly router: Router;
}

/** One simulation run (use once). */
export class Simulation {
  readonly clock = new VirtualClock();
  private readonly pools: SimPool[];
  private readonly byModel = new Map<string, SimPool>();
  private readonly scrapeMs: number;
  private readonly slo: NonNullable<SimOptions['slo']>;
  private readonly hist = {
    ttft: new LogHistogram(),
    tpot: new LogHistogram(),
    e2e: new LogHistogram(),
    queue: new LogHistogram(),
  };
  private requests = 0;
  private completed = 0;
  private rejected = 0;
  private readonly rejectedBy: Record<string, number> = {};
  private readonly reasons: Record<string, number> = {};
  private sloMet = 0;
  private outputTokens = 0;
  private promptTokens = 0;
  private cachedTokens = 0;
  private inSystem = 0;
  private inSystemArea = 0;
  private lastChangeMs = 0;
  private firstArrivalMs = Number.NaN;
  private lastArrivalMs = Number.NaN;
  private lastEventMs = 0;
  private hashes = false;
  private sink: ((r: RequestRecord) => void) | null = null;
  private readonly timeline: Timeline;
  private readonly all: SimEndpoint[] = [];
  private live = true;

  constructor(readonly options: SimOptions) {
    if (options.pools.length === 0) throw new Error('a simulation needs at least one pool');
    const rng = new SeededRng(options.seed ?? 1);
    this.scrapeMs = options.scrapeIntervalMs ?? 0;
    this.slo = options.slo ?? { ttftScale: 5 };
    const registry = builtinRoutingRegistry();
    let slot = 0;
    this.pools = options.pools.map((p) => {
      const endpoints = p.endpoints.map((e) => ({
        slot: slot++,
        spec: e,
        state: new EndpointState(e.name, p.name, e.maxConcurrency, this.clock, {
          failureThreshold: 3,
          openMs: 10_000,
        }),
        engine: new EngineModel(e.profile, this.clock, {
          maxWaiting: options.maxWaitingPerEngine ?? 4096,
          ...(e.startAtMs !== undefined ? { coldStart: true, startMs: e.startAtMs } : {}),
        }),
        served: 0,
      }));
      for (const e of endpoints) if (e.spec.startAtMs !== undefined) e.state.healthy = false;
      this.all.push(...endpoints);
      const pool = {
        name: p.name,
        endpoints,
        router: new Router(
          p.routing ?? options.routing,
          registry,
          p.endpoints.map((e) => ({ profile: e.profile, weight: 1, labels: {} })),
          rng,
        ),
      };
      for (const m of [p.name, ...(p.aliases ?? [])]) this.byModel.set(m, pool);
      return pool;
    });
    this.timeline = new Timeline(slot);
  }

  /** Time series and distributions for the report (after {@link run}). */
  charts(): SimCharts {
    return {
      timeline: this.timeline.points(),
      replicaNames: this.all.map((e) => e.spec.name),
      ttftCdf: this.hist.ttft.cdf(),
      e2eCdf: this.hist.e2e.cdf(),
    };
  }

  /** Replays `records` (in arrival order); `sink` gets each request's record as it finishes. */
  async run(
    records: AsyncIterable<TraceRecord> | Iterable<TraceRecord>,
    sink?: (r: RequestRecord) => void,
  ): Promise<SimSummary> {
    this.sink = sink ?? null;
    if (this.scrapeMs > 0) {
      const scrape = (): void => {
        this.scrapeAll();
        if (this.live || this.inSystem > 0) this.clock.setTimer(this.scrapeMs, scrape);
      };
      this.clock.setTimer(0, scrape);
    }
    let n = 0;
    let prevArrival = Number.NEGATIVE_INFINITY;
    for await (const r of records) {
      if (r.arrivalMs < prevArrival) throw new Error(`trace is not in arrival order at request ${n}`);
      prevArrival = r.arrivalMs;
      this.clock.runUntil(r.arrivalMs);
      this.arrive(r, `r${n++}`);
    }
    this.live = false;
    this.clock.runAll();
    return this.summary();
  }

  private arrive(r: TraceRecord, id: string): void {
    const now = this.clock.now();
    if (Number.isNaN(this.firstArrivalMs)) {
      this.firstArrivalMs = now;
      this.sample();
    }
    this.lastArrivalMs = now;
    this.requests++;
    this.timeline.at(now - this.firstArrivalMs).arrivals++;
    const pool = (r.model !== undefined ? this.byModel.get(r.model) : undefined) ?? this.pools[0]!;
    const req: RoutingRequest = {
      id,
      pool: pool.name,
      promptTokensEstimate: r.inputTokens,
      excluded: null,
      prefixHashes: routingBlockHashes(r),
      prefixBlockTokens: r.hashBlockTokens ?? 1,
      sessionId: r.session ?? null,
      tenant: r.tenant ?? null,
    };
    if (this.scrapeMs === 0) for (const e of pool.endpoints) this.scrape(e);
    const views = pool.endpoints.map((e, i) => e.state.view(i));
    const router = pool.router;
    let ep: SimEndpoint;
    try {
      ep = pool.endpoints[router.route(req, views).index]!;
    } catch (err) {
      if (!(err instanceof SwitchyardError)) throw err;
      this.reject(r, id, pool.name, 'none', 'no_endpoint', NO_ROUTE);
      return;
    }
    const route: RouteNote = {
      reason: router.lastReason,
      candidates: router.lastCandidates,
      cached: router.lastCachedTokens,
    };
    this.reasons[route.reason] = (this.reasons[route.reason] ?? 0) + 1;
    const promptTokens = Math.max(1, r.inputTokens);
    const outputTokens = Math.max(1, r.outputTokens);
    const blockHashes = engineBlockHashes(r, ep.spec.profile.blockSize);
    if (blockHashes !== undefined) this.hashes = true;
    ep.state.inFlight++;
    this.enter(now);
    let first = true;
    const accepted = ep.engine.submit(
      { id, promptTokens, outputTokens, ...(blockHashes ? { blockHashes } : {}) },
      {
        onTokens: () => {
          if (!first) return;
          first = false;
          router.firstToken(id);
        },
        onFinish: (res) => {
          router.finished(id, { ok: true, cachedTokens: res.cachedTokens, outputTokens: res.outputTokens });
          this.finished(ep, pool.name, res, route);
        },
      },
    );
    if (!accepted) {
      router.finished(id, { ok: false, cachedTokens: null, outputTokens: null });
      ep.state.inFlight--;
      this.leave(now);
      const tooLong = promptTokens + outputTokens > ep.spec.profile.maxModelLen;
      this.reject(r, id, pool.name, ep.spec.name, tooLong ? 'too_long' : 'queue_full', route);
    }
  }

  private finished(ep: SimEndpoint, pool: string, res: EngineRequestResult, route: RouteNote): void {
    ep.state.inFlight--;
    ep.served++;
    this.leave(res.finishedMs);
    this.completed++;
    const ttft = res.firstTokenMs - res.arrivalMs;
    const e2e = res.finishedMs - res.arrivalMs;
    const queue = res.firstScheduledMs - res.arrivalMs;
    const tpot =
      res.outputTokens > 1 ? (res.finishedMs - res.firstTokenMs) / (res.outputTokens - 1) : Number.NaN;
    this.hist.ttft.add(ttft);
    this.hist.e2e.add(e2e);
    this.hist.queue.add(queue);
    if (!Number.isNaN(tpot)) this.hist.tpot.add(tpot);
    this.outputTokens += res.outputTokens;
    this.promptTokens += res.promptTokens;
    this.cachedTokens += res.cachedTokens;
    const b = this.timeline.at(res.finishedMs - this.firstArrivalMs);
    b.completions++;
    b.ttftSum += ttft;
    b.promptTokens += res.promptTokens;
    b.cachedTokens += res.cachedTokens;
    const met = this.meetsSlo(ep.spec.profile, res.promptTokens, ttft, tpot);
    if (met) this.sloMet++;
    this.sink?.({
      id: res.id,
      arrival_ms: res.arrivalMs,
      input_tokens: res.promptTokens,
      output_tokens: res.outputTokens,
      cached_tokens: res.cachedTokens,
      queue_ms: queue,
      ttft_ms: ttft,
      tpot_ms: tpot,
      e2e_ms: e2e,
      endpoint: ep.spec.name,
      pool,
      status: 'ok',
      reject_reason: 'none',
      preemptions: res.preemptions,
      slo_met: met,
      route: route.reason,
      route_candidates: route.candidates,
      predicted_cached_tokens: route.cached,
    });
  }

  private reject(
    r: TraceRecord,
    id: string,
    pool: string,
    endpoint: string,
    reason: RequestRecord['reject_reason'],
    route: RouteNote,
  ): void {
    this.rejected++;
    this.rejectedBy[reason] = (this.rejectedBy[reason] ?? 0) + 1;
    this.timeline.at(this.clock.now() - this.firstArrivalMs).rejections++;
    this.sink?.({
      id,
      arrival_ms: r.arrivalMs,
      input_tokens: r.inputTokens,
      output_tokens: r.outputTokens,
      cached_tokens: 0,
      queue_ms: Number.NaN,
      ttft_ms: Number.NaN,
      tpot_ms: Number.NaN,
      e2e_ms: Number.NaN,
      endpoint,
      pool,
      status: 'rejected',
      reject_reason: reason,
      preemptions: 0,
      slo_met: false,
      route: route.reason,
      route_candidates: route.candidates,
      predicted_cached_tokens: route.cached,
    });
  }

  private meetsSlo(p: EngineProfile, promptTokens: number, ttft: number, tpot: number): boolean {
    const s = this.slo;
    const ttftLimit = s.ttftMs ?? (s.ttftScale ?? 5) * idleTtftMs(s.referenceProfile ?? p, promptTokens);
    if (ttft > ttftLimit) return false;
    return s.tpotMs === undefined || Number.isNaN(tpot) || tpot <= s.tpotMs;
  }

  /** Samples queue lengths and batches into the timeline, every `sampleIntervalMs` while there is work. */
  private sample(): void {
    const b = this.timeline.at(this.clock.now() - this.firstArrivalMs);
    b.samples++;
    const now = this.clock.now();
    for (const e of this.all) if ((e.spec.startAtMs ?? now) <= now) b.replicasSum++;
    for (const e of this.all) {
      const s = e.engine.stats();
      b.waitingSum += s.waiting;
      b.runningSum += s.running;
      b.perReplicaSum[e.slot]! += s.running + s.waiting;
    }
    if (this.live || this.inSystem > 0) {
      this.clock.setTimer(this.options.sampleIntervalMs ?? 1000, () => this.sample());
    }
  }

  private scrapeAll(): void {
    for (const p of this.pools) for (const e of p.endpoints) this.scrape(e);
  }

  private scrape(e: SimEndpoint): void {
    const s = e.engine.stats();
    e.state.healthy = s.ready; // as the live health check sees a cold engine's 503
    e.state.metrics = {
      running: s.running,
      waiting: s.waiting,
      kvUsage: s.kvUsage,
      scrapedAtMs: this.clock.now(),
    };
  }

  private enter(now: number): void {
    this.account(now);
    this.inSystem++;
  }

  private leave(now: number): void {
    this.account(now);
    this.inSystem--;
  }

  private account(now: number): void {
    this.inSystemArea += this.inSystem * (now - this.lastChangeMs);
    this.lastChangeMs = now;
    if (now > this.lastEventMs) this.lastEventMs = now;
  }

  private summary(): SimSummary {
    const start = Number.isNaN(this.firstArrivalMs) ? 0 : this.firstArrivalMs;
    const spanMs = Math.max(0, this.lastEventMs - start);
    const spanS = spanMs / 1000;
    const perEndpoint: Record<string, number> = {};
    const endMs = start + spanMs;
    let replicaMs = 0;
    let cost = 0;
    let coldStarts = 0;
    // Imbalance within each pool that served anything (pools serve different models); the worst pool.
    let imbalance = Number.NaN;
    for (const p of this.pools) {
      let served = 0;
      let max = 0;
      for (const e of p.endpoints) {
        perEndpoint[e.spec.name] = e.served;
        // A replica counts (and costs) from its start, cold start included, to the end of the run.
        const upMs = Math.max(0, endMs - Math.max(start, e.spec.startAtMs ?? start));
        replicaMs += upMs;
        cost += (e.spec.profile.costPerHourUsd * upMs) / 3_600_000;
        if (e.spec.startAtMs !== undefined && e.spec.startAtMs <= endMs) coldStarts++;
        served += e.served;
        max = Math.max(max, e.served);
      }
      if (served > 0)
        imbalance = Math.max(Number.isNaN(imbalance) ? 0 : imbalance, max / (served / p.endpoints.length));
    }
    const rate = (x: number) => (spanS > 0 ? x / spanS : 0);
    const tooLong = this.rejectedBy.too_long ?? 0;
    return {
      requests: this.requests,
      completed: this.completed,
      rejected: this.rejected,
      rejected_by_reason: { ...this.rejectedBy },
      routing_reasons: { ...this.reasons },
      duration_s: spanS,
      ttft_ms: this.hist.ttft.summary(),
      tpot_ms: this.hist.tpot.summary(),
      e2e_ms: this.hist.e2e.summary(),
      queue_ms: this.hist.queue.summary(),
      // A prompt longer than the model's context is the client's error (the gateway answers 400),
      // not a miss of the service's SLO.
      slo_attainment: this.requests > tooLong ? this.sloMet / (this.requests - tooLong) : Number.NaN,
      goodput_rps: rate(this.sloMet),
      throughput_rps: rate(this.completed),
      arrival_rate_rps:
        this.lastArrivalMs > this.firstArrivalMs
          ? this.requests / ((this.lastArrivalMs - this.firstArrivalMs) / 1000)
          : 0,
      output_tokens_per_s: rate(this.outputTokens),
      prefix_hit_rate: this.hashes && this.promptTokens > 0 ? this.cachedTokens / this.promptTokens : null,
      mean_in_system: spanMs > 0 ? this.inSystemArea / spanMs : 0,
      load_imbalance: imbalance,
      per_endpoint: perEndpoint,
      replica_seconds: replicaMs / 1000,
      cost_usd: cost,
      cold_starts: coldStarts,
    };
  }
}

/** TTFT of a prompt alone on an idle replica with a cold cache: its prefill chunks, back to back. */
export function idleTtftMs(p: EngineProfile, promptTokens: number): number {
  let done = 0;
  let ms = 0;
  while (done < promptTokens) {
    const n = Math.min(p.maxNumBatchedTokens, promptTokens - done);
    ms += stepTimeMs(p, { requests: 1, tokens: n, prefillPairs: prefillPairs(n, done), decodeContext: 0 });
    done += n;
  }
  return ms;
}
