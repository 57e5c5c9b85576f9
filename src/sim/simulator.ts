/**
 * @module sim/simulator
 * Replays a workload through the gateway's own pool driver on a virtual clock: each pool is a
 * {@link PoolDriver} (the module the live gateway runs: routing with its ledger and prefix index,
 * the admission queue, the length predictor, the autoscaling loop), and each endpoint is the engine
 * model (the module the emulated engine runs) with the same data-layer state the gateway keeps.
 * What is the simulator's own: the event loop, the simulated replicas (sim/scaled-pool.ts) and the
 * statistics (sim/stats.ts). The trace is streamed and per-request results go to a sink as they
 * finish, so memory does not grow with trace length.
 */
import type { InstanceType } from '../autoscaler/types.js';
import { VirtualClock } from '../core/virtual-clock.js';
import { SeededRng } from '../core/rng.js';
import { EndpointState } from '../datalayer/endpoint-state.js';
import { EngineModel } from '../engine-model/engine-model.js';
import type { EngineProfile, EngineRequestResult } from '../engine-model/types.js';
import { builtinRoutingRegistry } from '../plugins/routing/register.js';
import {
  type Admission,
  type DriverEndpoint,
  NO_ROUTE,
  PoolDriver,
  type PoolRequest,
  type QueuePlan,
} from '../pool/driver.js';
import { DEFAULT_BREAKER } from '../pool/plan.js';
import type { PredictorFeatures } from '../scheduler/predictor.js';
import { engineBlockHashes, routingBlockHashes } from '../traces/block-hashes.js';
import type { TraceRecord } from '../traces/record.js';
import { perturbProfile } from './mismatch.js';
import { ScaledPool, type SimEndpoint, ScalingStats, slotSpecs } from './scaled-pool.js';
import { type Judged, SimStats, tpotOf } from './stats.js';
import { summarize } from './summary.js';
import { Timeline } from './timeline.js';
import type {
  RejectReason,
  RequestRecord,
  SimCharts,
  SimEndpointSpec,
  SimOptions,
  SimPoolSpec,
  SimSchedulingOptions,
  SimSummary,
} from './types.js';

export type * from './types.js';
export { MAX_TENANT_GROUPS, idleTtftMs } from './stats.js';

/**
 * An autoscaled pool's queue when none is configured: the activator that holds requests while the
 * pool is at zero or scaling up, long enough for a large model's cold start.
 */
export const ACTIVATOR_BOUNDS = { maxLength: 1024, maxWaitMs: 120_000 } as const;

/** One pool of the run: the driver, its replicas, and (autoscaled) its slots. */
export interface SimPool {
  readonly name: string;
  readonly driver: PoolDriver<SimEndpoint>;
  readonly endpoints: readonly SimEndpoint[];
  readonly sched: SimSchedulingOptions | null;
  readonly scaled: ScaledPool | null;
}

/** A request of the trace as the pool sees it, with what the statistics need. */
interface SimRequest extends PoolRequest, Judged {
  readonly simPool: SimPool;
}

/** One simulation run (use once). */
export class Simulation {
  readonly clock = new VirtualClock();
  readonly pools: SimPool[];
  private readonly byModel = new Map<string, SimPool>();
  private readonly scrapeMs: number;
  private readonly stats: SimStats;
  readonly scaling = new ScalingStats();
  private readonly timeline: Timeline;
  private readonly all: SimEndpoint[] = [];
  private live = true;
  private nextSlot = 0;

  constructor(readonly options: SimOptions) {
    if (options.pools.length === 0) throw new Error('a simulation needs at least one pool');
    const rng = new SeededRng(options.seed ?? 1);
    this.scrapeMs = options.scrapeIntervalMs ?? 0;
    const registry = builtinRoutingRegistry();
    this.pools = options.pools.map((p) => this.pool(p, rng, registry));
    this.timeline = new Timeline(this.nextSlot);
    this.stats = new SimStats(options.slo ?? { ttftScale: 5 }, this.timeline);
  }

  private pool(p: SimPoolSpec, rng: SeededRng, registry: ReturnType<typeof builtinRoutingRegistry>): SimPool {
    const scaling = p.scaling ?? null;
    if (scaling !== null && p.endpoints.length > 0)
      throw new Error(`pool ${p.name}: an autoscaled pool's replicas come from its catalog, not endpoints`);
    const sched =
      p.scheduling ??
      this.options.scheduling ??
      (scaling === null ? null : { order: 'fcfs' as const, bounds: ACTIVATOR_BOUNDS });
    const specs = scaling === null ? p.endpoints.map((e) => ({ e, type: null })) : slotSpecs(p.name, scaling);
    const endpoints = specs.map(({ e, type }) => this.endpoint(p.name, e, type));
    this.all.push(...endpoints);
    const driver: PoolDriver<SimEndpoint> = new PoolDriver(p.name, this.clock, rng, registry, {
      settled: (a) => this.settled(a),
      refresh: () => {
        if (this.scrapeMs === 0) for (const e of endpoints) if (e.scaled?.phase !== 'off') this.scrape(e);
      },
      idle: (e) => pool.scaled?.idle(e.ref),
      onDrop: (reason) => {
        if (reason !== 'cancelled') this.stats.droppedBy[reason] = (this.stats.droppedBy[reason] ?? 0) + 1;
      },
    });
    const routing = p.routing ?? this.options.routing;
    driver.useRouter(driver.prepareRouting(routing), routing);
    driver.setQueue(sched === null ? null : simQueuePlan(sched));
    const scaled =
      scaling === null
        ? null
        : new ScaledPool(p.name, endpoints, scaling, {
            clock: this.clock,
            stats: this.scaling,
            state: (spec, id) => this.endpointState(p.name, spec, id),
            engine: (spec, cold) => this.engineFor(spec, cold),
            changed: () => driver.setEndpoints(upEndpoints(endpoints)),
            ready: () => driver.pump(),
            running: () => this.running(),
          });
    const pool: SimPool = { name: p.name, driver, endpoints, sched, scaled };
    driver.setScaling(scaled?.loop ?? null);
    driver.setEndpoints(upEndpoints(endpoints));
    if (scaled !== null) this.clock.setTimer(0, () => scaled.start());
    // A replica that finishes its cold start is capacity freed: waiting requests may go.
    for (const e of endpoints) {
      const at = e.spec.startAtMs;
      if (at !== undefined) this.clock.setTimer(at + e.spec.profile.coldStartMs, () => driver.pump());
    }
    for (const m of [p.name, ...(p.aliases ?? [])]) this.byModel.set(m, pool);
    return pool;
  }

  private endpoint(pool: string, e: SimEndpointSpec, type: InstanceType | null): SimEndpoint {
    const state = this.endpointState(pool, e, e.name);
    const ep: SimEndpoint = {
      slot: this.nextSlot++,
      spec: e,
      state,
      engine: new EngineModel(this.engineProfile(e), this.clock, {
        maxWaiting: this.options.maxWaitingPerEngine ?? 4096,
        ...(e.startAtMs !== undefined ? { coldStart: true, startMs: e.startAtMs } : {}),
      }),
      served: 0,
      scaled:
        type === null
          ? null
          : {
              type,
              phase: 'off',
              tier: 'on-demand',
              sinceMs: Number.NaN,
              generation: 0,
              lostAtMs: Number.NaN,
              running: new Set<string>(),
            },
      driven: null as unknown as DriverEndpoint<SimEndpoint>,
    };
    ep.driven = { id: e.name, state, ref: ep };
    if (e.startAtMs !== undefined || ep.scaled !== null) state.healthy = false;
    return ep;
  }

  /**
   * The views carry the replica's profile, as the live gateway's do, so cost-model policies
   * predict with the engine the replica runs.
   */
  private endpointState(pool: string, e: SimEndpointSpec, id: string): EndpointState {
    return new EndpointState(
      id,
      pool,
      e.maxConcurrency,
      this.clock,
      this.options.breaker ?? DEFAULT_BREAKER,
      {
        profile: e.profile,
        weight: 1,
        labels: {},
        ...(e.gate ? { gate: e.gate } : {}),
      },
    );
  }

  /** The engine a replica runs: its profile, or one the router does not know (its own, or drawn by `mismatch`). */
  private engineProfile(spec: SimEndpointSpec): EngineProfile {
    if (spec.engine !== undefined) return spec.engine;
    const m = this.options.mismatch;
    return m === undefined ? spec.profile : perturbProfile(spec.profile, spec.name, m);
  }

  private engineFor(spec: SimEndpointSpec, cold: boolean): EngineModel {
    return new EngineModel(this.engineProfile(spec), this.clock, {
      maxWaiting: this.options.maxWaitingPerEngine ?? 4096,
      ...(cold ? { coldStart: true, startMs: this.clock.now() } : {}),
    });
  }

  /** Whether the replay still has work: arrivals to come or requests in the system. */
  private running(): boolean {
    return this.live || this.stats.inSystem > 0;
  }

  /** Time series and distributions for the report (after {@link run}). */
  charts(): SimCharts {
    return {
      timeline: this.timeline.points(),
      replicaNames: this.all.map((e) => e.spec.name),
      ttftCdf: this.stats.hist.ttft.cdf(),
      e2eCdf: this.stats.hist.e2e.cdf(),
    };
  }

  /** Replays `records` (in arrival order); `sink` gets each request's record as it finishes. */
  async run(
    records: AsyncIterable<TraceRecord> | Iterable<TraceRecord>,
    sink?: (r: RequestRecord) => void,
  ): Promise<SimSummary> {
    this.stats.sink = sink ?? null;
    if (this.scrapeMs > 0) {
      const scrape = (): void => {
        for (const p of this.pools)
          for (const e of p.endpoints) if (e.scaled?.phase !== 'off') this.scrape(e);
        // Fresh metrics may open a metric gate or show a replica healthy again, as the gateway's collector pumps.
        for (const p of this.pools) p.driver.pump();
        if (this.running()) this.clock.setTimer(this.scrapeMs, scrape);
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
    const waiting = this.pools.reduce((k, p) => k + p.driver.waiting, 0);
    if (waiting > 0) throw new Error(`${waiting} requests never left the gateway queue`);
    return summarize(this.pools, this.stats, this.scaling);
  }

  private arrive(r: TraceRecord, id: string): void {
    const now = this.clock.now();
    const stats = this.stats;
    if (Number.isNaN(stats.firstArrivalMs)) {
      stats.firstArrivalMs = now;
      this.sample();
    }
    stats.lastArrivalMs = now;
    const pool = (r.model !== undefined ? this.byModel.get(r.model) : undefined) ?? this.pools[0]!;
    const req = this.request(r, id, pool, now);
    stats.arrived(req);
    stats.enter(now); // waiting in the gateway counts as in the system
    const a = pool.driver.arrive(req);
    if (a.cold) this.scaling.coldWaits++;
    if (a.state === 'waiting') {
      stats.queued++;
      if (pool.driver.waiting > stats.maxWaiting) stats.maxWaiting = pool.driver.waiting;
    }
  }

  private request(r: TraceRecord, id: string, pool: SimPool, now: number): SimRequest {
    const sched = pool.sched;
    const tenant = r.tenant ?? 'default';
    const promptTokens = Math.max(1, r.inputTokens);
    let features: PredictorFeatures | undefined;
    const profile = pool.endpoints[0]!.spec.profile;
    const edfLimit =
      sched?.order === 'edf' && sched.ttftDeadlineMs === undefined
        ? {
            deadlineMs:
              now + this.stats.ttftLimitMs(this.options.slo?.referenceProfile ?? profile, promptTokens),
          }
        : {};
    return {
      id,
      trace: r,
      pool: pool.name,
      simPool: pool,
      arrivalMs: now,
      priority: r.priority ?? sched?.defaultPriority ?? 'normal',
      tenant,
      routing: {
        id,
        pool: pool.name,
        promptTokensEstimate: r.promptTokensEstimate ?? r.inputTokens,
        excluded: null,
        prefixHashes: routingBlockHashes(r),
        prefixBlockTokens: r.prefixBlockTokens ?? r.hashBlockTokens ?? 1,
        sessionId: r.session ?? null,
        tenant: r.tenant ?? null,
      },
      features: () => {
        features ??= {
          promptTokens,
          maxTokens: null, // traces do not say what the client asked for
          tenant,
          model: pool.name,
          lastUserText: null, // nor what it said
          sessionId: r.session ?? null,
          prefixHashes: routingBlockHashes(r),
        };
        return features;
      },
      ...(sched?.order === 'sjf' && sched.oracleSizes ? { oracleOutputTokens: r.outputTokens } : {}),
      ...edfLimit,
    };
  }

  /** The driver settled an admission: send it to its engine, or count why it left. */
  private settled(a: Admission<SimEndpoint>): void {
    const p = a.req as SimRequest;
    const now = this.clock.now();
    if (a.state === 'running') {
      this.send(a, p);
      return;
    }
    this.stats.leave(now);
    const reason = (a.state === 'dropped' ? a.dropReason : 'no_endpoint') as RejectReason;
    this.stats.refused(p, now, 'none', reason, NO_ROUTE);
  }

  /** Sends a started request to its chosen engine. */
  private send(a: Admission<SimEndpoint>, p: SimRequest): void {
    const now = this.clock.now();
    const ep = a.endpoint!.ref;
    const driver = p.simPool.driver;
    const route = a.route;
    this.stats.routed(route);
    const r = p.trace;
    const promptTokens = Math.max(1, r.inputTokens);
    const outputTokens = Math.max(1, r.outputTokens);
    const blockHashes = engineBlockHashes(r, ep.spec.profile.blockSize);
    if (blockHashes !== undefined) this.stats.hashes = true;
    ep.scaled?.running.add(p.id);
    const accepted = ep.engine.submit(
      { id: p.id, promptTokens, outputTokens, arrivalKey: p.id, ...(blockHashes ? { blockHashes } : {}) },
      {
        onTokens: (count) => driver.tokens(a, count),
        onFinish: (res) => this.engineFinished(a, p, ep, res),
      },
    );
    if (!accepted) {
      ep.scaled?.running.delete(p.id);
      driver.finished(a, { ok: false, cachedTokens: null, outputTokens: null, tpotMs: Number.NaN }, false);
      this.stats.leave(now);
      const tooLong = promptTokens + outputTokens > ep.spec.profile.maxModelLen;
      this.stats.refused(p, now, ep.spec.name, tooLong ? 'too_long' : 'queue_full', route);
      return;
    }
    const wait = now - p.arrivalMs;
    this.stats.sent(p, wait);
    if (a.cold) this.scaling.coldWait.add(wait);
  }

  private engineFinished(
    a: Admission<SimEndpoint>,
    p: SimRequest,
    ep: SimEndpoint,
    res: EngineRequestResult,
  ): void {
    ep.scaled?.running.delete(p.id);
    const driver = p.simPool.driver;
    this.stats.leave(res.finishedMs);
    if (res.reason === 'cancelled') {
      // Its replica was preempted under it (the only cancel in a simulation).
      this.stats.refused(p, this.clock.now(), ep.spec.name, 'preempted', a.route);
      driver.finished(a, { ok: false, cachedTokens: null, outputTokens: null, tpotMs: Number.NaN });
      return;
    }
    ep.served++;
    this.stats.finished(p, res, ep.spec.profile, ep.spec.name, a.route);
    driver.finished(a, {
      ok: true,
      cachedTokens: res.cachedTokens,
      outputTokens: res.outputTokens,
      tpotMs: tpotOf(res),
    });
  }

  /** Samples queue lengths and batches into the timeline, every `sampleIntervalMs` while there is work. */
  private sample(): void {
    const now = this.clock.now();
    const b = this.timeline.at(now - this.stats.firstArrivalMs);
    b.samples++;
    let up = 0;
    for (const e of this.all)
      if (e.scaled === null ? (e.spec.startAtMs ?? now) <= now : e.scaled.phase !== 'off') up++;
    b.replicasSum += up;
    if (up > this.scaling.maxReplicas) this.scaling.maxReplicas = up;
    for (const e of this.all) {
      const s = e.engine.stats();
      b.waitingSum += s.waiting;
      b.runningSum += s.running;
      b.perReplicaSum[e.slot]! += s.running + s.waiting;
    }
    if (this.running()) this.clock.setTimer(this.options.sampleIntervalMs ?? 1000, () => this.sample());
  }

  private scrape(e: SimEndpoint): void {
    const s = e.engine.stats();
    // As the live health check sees a cold engine's 503; a draining or stopped replica takes nothing.
    e.state.healthy = e.scaled === null ? s.ready : e.scaled.phase === 'ready';
    e.state.metrics = {
      running: s.running,
      waiting: s.waiting,
      kvUsage: s.kvUsage,
      scrapedAtMs: this.clock.now(),
    };
  }
}

/** The replicas that are up (an autoscaled slot with none is left out, as the gateway lists only registered ones). */
function upEndpoints(endpoints: readonly SimEndpoint[]): DriverEndpoint<SimEndpoint>[] {
  const out: DriverEndpoint<SimEndpoint>[] = [];
  for (const e of endpoints) if (e.scaled === null || e.scaled.phase !== 'off') out.push(e.driven);
  return out;
}

/** The simulator's scheduling options as the driver's queue plan. */
function simQueuePlan(s: SimSchedulingOptions): QueuePlan {
  const { ttftDeadlineMs, oracleSizes: _oracle, defaultPriority, predictor, ...options } = s;
  return {
    options,
    ...(predictor !== undefined ? { predictor } : {}),
    ttftDeadlineMs: ttftDeadlineMs ?? Number.POSITIVE_INFINITY,
    defaultPriority: defaultPriority ?? 'normal',
    key: JSON.stringify(s),
  };
}
