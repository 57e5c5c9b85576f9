/**
 * @module sim/simulator
 * Replays a workload through the gateway's own routing code on a virtual clock. Each endpoint is the
 * engine model (the same module the emulated engine runs) with the same data-layer state the live
 * gateway keeps (`EndpointState`: in-flight count, breaker, scraped metrics); each pool routes with
 * the same compiled `Router` the live gateway builds from the same profile. With `scheduling`, each
 * pool also has the gateway's admission queue (`PoolScheduler`, the same driving code the gateway
 * runs): requests wait there while every endpoint is at its concurrency gate. The trace is streamed
 * and per-request results go to a sink as they finish, so memory does not grow with trace length.
 */
import { PoolAutoscaler, type AutoscalerSpec } from '../autoscaler/controller.js';
import { MetricsWindow } from '../autoscaler/metrics-window.js';
import type {
  Actuator,
  InstanceType,
  Placement,
  PriceTier,
  ReplicaStatus,
  ScalingPolicy,
} from '../autoscaler/types.js';
import type { TimerHandle } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';
import { SeededRng } from '../core/rng.js';
import { VirtualClock } from '../core/virtual-clock.js';
import { EndpointState } from '../datalayer/endpoint-state.js';
import type { EndpointGate, EndpointView } from '../framework/endpoint.js';
import { EngineModel } from '../engine-model/engine-model.js';
import { getProfile } from '../engine-model/profiles.js';
import { prefillPairs, stepTimeMs } from '../engine-model/step-time.js';
import type { EngineProfile, EngineRequestResult } from '../engine-model/types.js';
import type { RoutingRequest } from '../framework/routing.js';
import { builtinRoutingRegistry } from '../plugins/routing/register.js';
import { Router, type RoutingProfileSpec } from '../router/router.js';
import { PoolScheduler, type SchedulerOptions } from '../scheduler/pool-scheduler.js';
import {
  OutputLengthPredictor,
  type PredictorFeatures,
  type PredictorOptions,
} from '../scheduler/predictor.js';
import { type DropReason, PRIORITY_CLASSES, type PriorityClass, type QueueItem } from '../scheduler/types.js';
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
  /**
   * Capacity gates besides `maxConcurrency`, as the live config's `maxEngineWaiting` / `maxKvUsage`
   * (judged on the simulated engine's scraped metrics) and `maxPrefilling` (the router's ledger).
   */
  readonly gate?: EndpointGate;
}

export interface SimPoolSpec {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly endpoints: readonly SimEndpointSpec[];
  /** This pool's routing profile; default {@link SimOptions.routing}. */
  readonly routing?: RoutingProfileSpec;
  /** This pool's admission queue; default {@link SimOptions.scheduling}. */
  readonly scheduling?: SimSchedulingOptions;
  /**
   * Autoscale this pool: its replicas are started and drained by the autoscaler (the same
   * controller the gateway runs) through a simulated actuator, instead of `endpoints`, which must
   * then be empty. The pool gets an admission queue (FCFS with the gateway's default bounds unless
   * `scheduling` says otherwise): it is the activator that holds requests while the pool is at zero.
   */
  readonly scaling?: SimScalingSpec;
}

/** An autoscaled pool in the simulator. */
export interface SimScalingSpec {
  readonly policy: ScalingPolicy;
  readonly autoscaler: AutoscalerSpec;
  /** The gateway's per-replica concurrency gate (default 256). */
  readonly maxConcurrency?: number;
  readonly gate?: EndpointGate;
  /** Engine profiles by name for the catalog's types, besides the built-in ones (tests, custom hardware). */
  readonly profiles?: Readonly<Record<string, EngineProfile>>;
  /**
   * Replicas already serving when the run starts (default 0), as a fleet that was running before
   * the replayed span: warm, no cold start. The autoscaler's first target is this count, which
   * the policy then moves (a restarted autoscaler finds its pool running).
   */
  readonly initialReplicas?: number;
  /**
   * Spot preemptions (e.g. autoscaler/spot.ts `SpotMarket`): for a spot replica started at
   * `startMs`, when its notice comes and when it is taken away (null: never, in this run). The
   * replica stops taking requests at the notice (its replacement is asked for then) and what it
   * still runs at `stopMs` is lost.
   */
  readonly spot?: {
    preemption(replicaId: string, type: string, startMs: number): { noticeMs: number; stopMs: number } | null;
  };
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
  /**
   * The gateway's admission queue, one per pool (absent: none, as before scheduling existed — a
   * request no endpoint can take is rejected with `no_endpoint`). Give endpoints a finite
   * `maxConcurrency` so that requests wait in the gateway rather than in the engines.
   */
  readonly scheduling?: SimSchedulingOptions;
}

/** The gateway's scheduling options (as in its config), plus what only a simulation can choose. */
export interface SimSchedulingOptions extends SchedulerOptions {
  /** `edf`: a request's TTFT deadline, ms after its arrival (default: its TTFT SLO limit). */
  readonly ttftDeadlineMs?: number;
  /**
   * `sjf`: rank by the trace's true output length instead of the online predictor's estimate. A
   * reference for what perfect prediction would give; no gateway can run it.
   */
  readonly oracleSizes?: boolean;
  /** The class of records that carry none (the config's `defaultPriority`; default `normal`). */
  readonly defaultPriority?: PriorityClass;
  /** `sjf`: the output-length predictor's options (benchmarks compare its features). */
  readonly predictor?: PredictorOptions;
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
  /** Engine-side: from reaching the engine to its first scheduled step. */
  readonly queue_ms: number;
  /** Gateway-side: from arrival to being sent to an endpoint (0 without scheduling); for a dropped request, until the drop. */
  readonly gateway_queue_ms: number;
  /** Time to first token and end to end are counted from the arrival at the gateway. */
  readonly ttft_ms: number;
  readonly tpot_ms: number;
  readonly e2e_ms: number;
  readonly endpoint: string;
  readonly pool: string;
  readonly priority: PriorityClass;
  readonly tenant: string;
  readonly status: 'ok' | 'rejected';
  /**
   * Why a request was refused: no endpoint could take it (without scheduling), a full queue (the
   * gateway's, or without scheduling the engine's), it exceeds the model's context, or the gateway
   * queue dropped it: `shed` for a more urgent newcomer, `wait_timeout` past its max wait,
   * `deadline` past its EDF deadline; `preempted` when its spot replica was taken away while it ran.
   */
  readonly reject_reason: RejectReason;
  readonly preemptions: number;
  readonly slo_met: boolean;
  /** The routing decision, compactly: its reason, the candidates left after filters, and the prompt tokens the router believed cached on the pick. */
  readonly route: string;
  readonly route_candidates: number;
  readonly predicted_cached_tokens: number;
}

export type RejectReason =
  | 'none'
  | 'no_endpoint'
  | 'too_long'
  | 'preempted'
  | Exclude<DropReason, 'cancelled'>;

/** Outcomes of one priority class or one tenant. */
export interface GroupSummary {
  readonly requests: number;
  readonly completed: number;
  /** As {@link SimSummary.slo_attainment}, over this group's requests. */
  readonly slo_attainment: number;
  readonly ttft_ms: { readonly p50: number; readonly p99: number };
  readonly e2e_ms: { readonly p50: number; readonly p99: number };
  readonly gateway_queue_ms: { readonly p50: number; readonly p99: number };
}

/** The admission queues' activity (present when any pool has one). */
export interface QueueSummary {
  /** The queue order, or the pools' distinct orders joined by `,`. */
  readonly order: string;
  /** Requests that had to wait (not started at arrival). */
  readonly queued: number;
  /** The longest any pool's queue got. */
  readonly max_waiting: number;
  /** Requests the queues dropped, by reason (only reasons that occurred). */
  readonly dropped_by_reason: Readonly<Record<string, number>>;
}

/** What the autoscalers did (over every autoscaled pool). */
export interface ScalingSummary {
  /** Policy names, joined by `,` when pools differ. */
  readonly policy: string;
  readonly decisions: number;
  /** Changes of a pool's target count. */
  readonly scale_changes: number;
  readonly max_replicas: number;
  /** Replica-seconds by price tier (cold starts and drains included). */
  readonly replica_seconds_by_tier: Readonly<Record<PriceTier, number>>;
  readonly spot_preemptions: number;
  /** Requests that arrived while their pool had no ready replica, so waited on a cold start (or were dropped). */
  readonly cold_start_waits: number;
  /** Their added wait in the gateway (ms) until sent, p50 / p99 / max. */
  readonly cold_start_wait_ms: { readonly p50: number; readonly p99: number; readonly max: number };
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
  /** Arrival → sent to an endpoint, of requests that were sent (all 0 without scheduling). */
  readonly gateway_queue_ms: Percentiles;
  /** The admission queues; null without scheduling. */
  readonly scheduling: QueueSummary | null;
  /** Per priority class and per tenant (the first {@link MAX_TENANT_GROUPS} seen; the rest under `(other)`). */
  readonly by_class: Readonly<Record<string, GroupSummary>>;
  readonly by_tenant: Readonly<Record<string, GroupSummary>>;
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
  /** The autoscaled pools' activity; null when no pool is autoscaled. */
  readonly autoscaling: ScalingSummary | null;
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
  /** Replaced by a fresh (cold) engine each time an autoscaled slot starts a replica. */
  engine: EngineModel;
  served: number;
  /** Autoscaled slots: the replica's lifecycle and accounting; null for a fixed endpoint. */
  readonly scaled: ScaledSlot | null;
}

/** A slot of an autoscaled pool that holds at most one replica at a time. */
interface ScaledSlot {
  readonly type: InstanceType;
  phase: 'off' | 'starting' | 'ready' | 'draining';
  tier: PriceTier;
  /** When the current replica was asked for (NaN: off). */
  sinceMs: number;
  /** Bumped at each start, so timers of an earlier replica in this slot do nothing. */
  generation: number;
  /** The replica is being preempted: lost (its requests failed) at this time. */
  lostAtMs: number;
  /** Ids of the requests it is running (what a preemption loses). */
  readonly running: Set<string>;
}

interface SimPool {
  readonly name: string;
  readonly endpoints: readonly SimEndpoint[];
  readonly router: Router;
  /** The gateway's admission queue and its options; null without scheduling. */
  scheduler: PoolScheduler | null;
  readonly sched: SimSchedulingOptions | null;
  /** VTC: the queue is told the tokens each tenant is served. */
  readonly fair: boolean;
  /** SJF's job sizes, learned from this pool's finished requests; null when nothing ranks by them. */
  readonly predictor: OutputLengthPredictor | null;
  /** The queue's one expiry timer, and when it fires (+Infinity: none armed). */
  expiry: TimerHandle | null;
  expiryAtMs: number;
  /** Autoscaling: the controller and its metrics window; null for a fixed pool. */
  autoscaler: PoolAutoscaler | null;
  window: MetricsWindow | null;
  readonly scaling: SimScalingSpec | null;
  /** Some endpoint has a `maxPrefilling` gate: a first token may open it, so it pumps the queue. */
  readonly prefillGated: boolean;
}

/** A request from its arrival until it is sent, dropped or refused. */
interface Pending {
  readonly id: string;
  readonly record: TraceRecord;
  readonly pool: SimPool;
  readonly arrivalMs: number;
  readonly priority: PriorityClass;
  readonly tenant: string;
  /** What the predictor saw at arrival; it learns from the same features at the finish. */
  readonly features: PredictorFeatures | null;
  /** It arrived while its autoscaled pool had no ready replica. */
  readonly cold?: boolean;
}

/**
 * An autoscaled pool's queue when none is configured: the activator that holds requests while the
 * pool is at zero or scaling up, long enough for a large model's cold start.
 */
export const ACTIVATOR_BOUNDS = { maxLength: 1024, maxWaitMs: 120_000 } as const;
/** How often an autoscaled pool's metrics window is sampled (ms), as the gateway's loop does. */
const SCALING_SAMPLE_MS = 1000;

/** Tenants broken out in {@link SimSummary.by_tenant}; later ones share one group, so memory stays bounded. */
export const MAX_TENANT_GROUPS = 64;
const OTHER_TENANTS = '(other)';

/** Counters and histograms of one class or tenant. */
class GroupStats {
  requests = 0;
  completed = 0;
  sloMet = 0;
  tooLong = 0;
  readonly ttft = new LogHistogram();
  readonly e2e = new LogHistogram();
  readonly wait = new LogHistogram();

  summary(): GroupSummary {
    const judged = this.requests - this.tooLong;
    const pair = (h: LogHistogram) => ({ p50: h.quantile(0.5), p99: h.quantile(0.99) });
    return {
      requests: this.requests,
      completed: this.completed,
      slo_attainment: judged > 0 ? this.sloMet / judged : Number.NaN,
      ttft_ms: pair(this.ttft),
      e2e_ms: pair(this.e2e),
      gateway_queue_ms: pair(this.wait),
    };
  }
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
    gatewayQueue: new LogHistogram(),
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
  // Scheduling: requests waiting in a gateway queue (by id), and what the queues did.
  private readonly pending = new Map<string, Pending>();
  private queued = 0;
  private maxWaiting = 0;
  private readonly droppedBy: Record<string, number> = {};
  private readonly byClass = new Map<string, GroupStats>();
  private readonly byTenant = new Map<string, GroupStats>();
  // Autoscaling: replicas started, preempted, their time and cost; requests that met a cold pool.
  private readonly scaleStats = {
    starts: 0,
    preemptions: 0,
    upMs: { 'on-demand': 0, spot: 0 } as Record<PriceTier, number>,
    cost: 0,
    coldWaits: 0,
    coldWait: new LogHistogram(),
    maxReplicas: 0,
  };

  constructor(readonly options: SimOptions) {
    if (options.pools.length === 0) throw new Error('a simulation needs at least one pool');
    const rng = new SeededRng(options.seed ?? 1);
    this.scrapeMs = options.scrapeIntervalMs ?? 0;
    this.slo = options.slo ?? { ttftScale: 5 };
    const registry = builtinRoutingRegistry();
    let slot = 0;
    this.pools = options.pools.map((p) => {
      const scaling = p.scaling ?? null;
      if (scaling !== null && p.endpoints.length > 0)
        throw new Error(`pool ${p.name}: an autoscaled pool's replicas come from its catalog, not endpoints`);
      const sched =
        p.scheduling ??
        options.scheduling ??
        (scaling === null ? null : { order: 'fcfs' as const, bounds: ACTIVATOR_BOUNDS });
      const specs =
        scaling === null ? p.endpoints.map((e) => ({ e, type: null })) : this.slotSpecs(p.name, scaling);
      const endpoints = specs.map(({ e, type }) => ({
        slot: slot++,
        spec: e,
        // The views carry the replica's profile, as the live gateway's do, so cost-model policies
        // predict with the engine the replica runs.
        state: new EndpointState(
          e.name,
          p.name,
          e.maxConcurrency,
          this.clock,
          { failureThreshold: 3, openMs: 10_000 },
          { profile: e.profile, weight: 1, labels: {}, ...(e.gate ? { gate: e.gate } : {}) },
        ),
        engine: new EngineModel(e.profile, this.clock, {
          maxWaiting: options.maxWaitingPerEngine ?? 4096,
          ...(e.startAtMs !== undefined ? { coldStart: true, startMs: e.startAtMs } : {}),
        }),
        served: 0,
        scaled:
          type === null
            ? null
            : {
                type,
                phase: 'off' as const,
                tier: 'on-demand' as const,
                sinceMs: Number.NaN,
                generation: 0,
                lostAtMs: Number.NaN,
                running: new Set<string>(),
              },
      }));
      for (const e of endpoints)
        if (e.spec.startAtMs !== undefined || e.scaled !== null) e.state.healthy = false;
      this.all.push(...endpoints);
      const pool: SimPool = {
        name: p.name,
        endpoints,
        router: new Router(
          p.routing ?? options.routing,
          registry,
          endpoints.map((e) => e.state.info),
          rng,
        ),
        scheduler: null,
        sched,
        fair: sched?.order === 'vtc',
        predictor:
          sched?.order === 'sjf' && !sched.oracleSizes ? new OutputLengthPredictor(sched.predictor) : null,
        expiry: null,
        expiryAtMs: Number.POSITIVE_INFINITY,
        autoscaler: null,
        window: null,
        scaling,
        prefillGated: endpoints.some((e) => (e.spec.gate?.maxPrefilling ?? null) !== null),
      };
      if (sched !== null) this.schedule(pool, sched);
      if (scaling !== null) this.autoscale(pool, scaling);
      for (const m of [p.name, ...(p.aliases ?? [])]) this.byModel.set(m, pool);
      return pool;
    });
    this.timeline = new Timeline(slot);
  }

  /** Gives `pool` its admission queue, driven through the same hooks the gateway implements. */
  private schedule(pool: SimPool, sched: SimSchedulingOptions): void {
    const { ttftDeadlineMs: _deadline, oracleSizes: _oracle, defaultPriority: _class, ...opts } = sched;
    pool.scheduler = new PoolScheduler(opts, {
      tryStart: (item) => this.start(this.pending.get(item.id)!, true),
      load: () => {
        let inFlight = 0;
        let limit = 0;
        for (const e of pool.endpoints) {
          inFlight += e.state.inFlight;
          if (e.state.healthy) limit += e.state.maxConcurrency;
        }
        return { inFlight, limit, prefilling: pool.router.prefilling };
      },
      drop: (item, reason) => this.dropped(item, reason),
    });
    // A replica that finishes its cold start is capacity freed: waiting requests may go.
    for (const e of pool.endpoints) {
      const at = e.spec.startAtMs;
      if (at !== undefined) this.clock.setTimer(at + e.spec.profile.coldStartMs, () => this.pump(pool));
    }
  }

  /** The slots of an autoscaled pool: per instance type, room for its max replicas plus as many draining. */
  private slotSpecs(pool: string, scaling: SimScalingSpec): { e: SimEndpointSpec; type: InstanceType }[] {
    const max = scaling.autoscaler.maxReplicas;
    return scaling.autoscaler.catalog.flatMap((t) => {
      const profile = scaling.profiles?.[t.profile] ?? getProfile(t.profile);
      const n = 2 * Math.min(max, t.maxReplicas ?? max);
      return Array.from({ length: n }, (_, i) => ({
        e: {
          name: `${pool}/${t.name}-${i}`,
          profile,
          maxConcurrency: scaling.maxConcurrency ?? 256,
          ...(scaling.gate ? { gate: scaling.gate } : {}),
        },
        type: t,
      }));
    });
  }

  /** Gives `pool` its autoscaler: a metrics window sampled every second, and the policy's ticks. */
  private autoscale(pool: SimPool, scaling: SimScalingSpec): void {
    const window = new MetricsWindow();
    const actuator = new SimActuator(pool, {
      start: (e, tier) => this.startReplica(pool, e, tier),
      drain: (e) => this.drainReplica(e),
    });
    pool.window = window;
    pool.autoscaler = new PoolAutoscaler(scaling.autoscaler, scaling.policy, window, actuator);
    const sample = (): void => {
      if (!this.running()) return; // the run is over: nothing more to decide
      const now = this.clock.now();
      let inFlight = 0;
      let engineWaiting = 0;
      let kv = 0;
      let ready = 0;
      for (const e of pool.endpoints) {
        inFlight += e.state.inFlight;
        if (e.scaled!.phase !== 'ready') continue;
        const st = e.engine.stats();
        engineWaiting += st.waiting;
        kv += st.kvUsage;
        ready++;
      }
      window.sample(now, {
        inFlight,
        queued: pool.scheduler?.waiting ?? 0,
        engineWaiting,
        kvUsage: ready > 0 ? kv / ready : Number.NaN,
      });
      if (this.running()) this.clock.setTimer(SCALING_SAMPLE_MS, sample);
    };
    const tick = (): void => {
      if (!this.running()) return;
      window.at(this.clock.now()); // the policy's windows end now
      pool.autoscaler!.tick(this.clock.now());
      if (this.running()) this.clock.setTimer(scaling.policy.intervalMs, tick);
    };
    this.clock.setTimer(0, () => {
      const now = this.clock.now();
      pool.autoscaler!.start(now, scaling.initialReplicas ?? 0);
      // The initial replicas were running before the run: warm now, not cold starts.
      for (const e of pool.endpoints) {
        const slot = e.scaled!;
        if (slot.phase !== 'starting') continue;
        slot.phase = 'ready'; // its cold-start timer finds it ready and does nothing
        this.scaleStats.starts--;
        e.engine = new EngineModel(e.spec.profile, this.clock, {
          maxWaiting: this.options.maxWaitingPerEngine ?? 4096,
        });
        e.state.healthy = true;
      }
      sample();
      this.clock.setTimer(scaling.policy.intervalMs, tick);
    });
  }

  /** The actuator starts a replica in slot `e`: a fresh engine, cold until the profile's start time. */
  private startReplica(pool: SimPool, e: SimEndpoint, tier: PriceTier): void {
    const slot = e.scaled!;
    const now = this.clock.now();
    slot.phase = 'starting';
    slot.tier = tier;
    slot.sinceMs = now;
    slot.lostAtMs = Number.NaN;
    const gen = ++slot.generation;
    this.scaleStats.starts++;
    e.engine = new EngineModel(e.spec.profile, this.clock, {
      maxWaiting: this.options.maxWaitingPerEngine ?? 4096,
      coldStart: true,
      startMs: now,
    });
    pool.router.prefixIndex()?.clear(pool.endpoints.indexOf(e)); // a new replica's cache is empty
    e.state.healthy = false;
    this.clock.setTimer(e.spec.profile.coldStartMs, () => {
      if (slot.generation !== gen || slot.phase !== 'starting') return;
      slot.phase = 'ready';
      e.state.healthy = true;
      this.pump(pool);
    });
    const pre =
      tier === 'spot'
        ? (pool.scaling!.spot?.preemption(`${e.spec.name}#${gen}`, slot.type.name, now) ?? null)
        : null;
    if (pre !== null) {
      this.clock.setTimer(Math.max(0, pre.noticeMs - now), () => {
        // After the run no notice matters (a replacement would draw a later one, without end).
        if (slot.generation !== gen || slot.phase === 'off' || !this.running()) return;
        this.scaleStats.preemptions++;
        slot.lostAtMs = pre.stopMs;
        if (slot.phase !== 'draining') this.drainReplica(e);
        pool.autoscaler!.preempted(this.clock.now());
        this.clock.setTimer(slot.lostAtMs - this.clock.now(), () => {
          if (slot.generation !== gen || slot.phase === 'off') return;
          // The notice ran out: what still runs there is lost (the engine ends it as cancelled).
          for (const id of [...slot.running]) e.engine.cancel(id);
          this.stopReplica(e);
        });
      });
    }
  }

  /** No new requests for `e`; it stops once its requests have finished (a starting one stops now). */
  private drainReplica(e: SimEndpoint): void {
    const slot = e.scaled!;
    e.state.healthy = false;
    if (slot.phase === 'starting' || e.state.inFlight === 0) {
      this.stopReplica(e);
      return;
    }
    slot.phase = 'draining';
  }

  private stopReplica(e: SimEndpoint): void {
    this.stopReplicaAt(e, this.clock.now());
  }

  private stopReplicaAt(e: SimEndpoint, now: number): void {
    const slot = e.scaled!;
    const upMs = Math.max(0, now - slot.sinceMs);
    this.scaleStats.upMs[slot.tier] += upMs;
    const type = slot.type;
    this.scaleStats.cost +=
      ((slot.tier === 'spot' ? type.spotUsdPerHour! : type.onDemandUsdPerHour) * upMs) / 3_600_000;
    slot.phase = 'off';
    slot.sinceMs = Number.NaN;
    slot.generation++;
    e.state.healthy = false;
  }

  /** Whether the replay still has work: arrivals to come or requests in the system. */
  private running(): boolean {
    return this.live || this.inSystem > 0;
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
        // Fresh metrics may open a metric gate, so queues are re-checked, as the gateway does.
        for (const p of this.pools) this.pump(p);
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
    if (this.pending.size > 0) throw new Error(`${this.pending.size} requests never left the gateway queue`);
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
    const priority = r.priority ?? pool.sched?.defaultPriority ?? 'normal';
    const tenant = r.tenant ?? 'default';
    this.group(this.byClass, priority).requests++;
    this.group(this.byTenant, tenant).requests++;
    let cold = false;
    if (pool.autoscaler !== null) {
      pool.window!.arrival(now);
      cold = !pool.endpoints.some((e) => e.scaled!.phase === 'ready');
      if (cold) {
        this.scaleStats.coldWaits++;
        pool.autoscaler.wake(now); // the activator: a request for a pool at zero asks for a replica now
      }
    }
    const s = pool.scheduler;
    if (s === null) {
      const p: Pending = { id, record: r, pool, arrivalMs: now, priority, tenant, features: null };
      if (!this.start(p, false)) this.reject(p, 'none', 'no_endpoint', NO_ROUTE);
      return;
    }
    const promptTokens = Math.max(1, r.inputTokens);
    const features: PredictorFeatures | null =
      pool.predictor === null
        ? null
        : {
            promptTokens,
            maxTokens: null, // traces do not say what the client asked for
            tenant,
            model: pool.name,
            lastUserText: null, // nor what it said
            sessionId: r.session ?? null,
            prefixHashes: routingBlockHashes(r),
          };
    const sched = pool.sched!;
    let predicted = 0;
    if (features !== null) predicted = pool.predictor!.predict(features);
    else if (sched.order === 'sjf') predicted = Math.max(1, r.outputTokens); // the labelled oracle
    const deadlineMs =
      sched.order === 'edf'
        ? now + (sched.ttftDeadlineMs ?? this.ttftLimitMs(this.referenceProfile(pool), promptTokens))
        : Number.POSITIVE_INFINITY;
    this.pending.set(id, { id, record: r, pool, arrivalMs: now, priority, tenant, features, cold });
    this.enter(now); // waiting in the gateway counts as in the system
    const item: QueueItem = {
      id,
      arrivalMs: now,
      tenant,
      priority,
      promptTokens,
      predictedOutputTokens: predicted,
      deadlineMs,
    };
    if (s.arrive(item, now) === 'queued') {
      this.queued++;
      if (s.waiting > this.maxWaiting) this.maxWaiting = s.waiting;
      this.armExpiry(pool, s.expire(now));
    }
  }

  /**
   * Routes `p` and sends it to the chosen engine. False when no endpoint can take it now (the
   * router found every candidate at its gate, or none healthy); true once it has left the gateway,
   * sent or refused by the engine. `queued`: it entered the system at its arrival (scheduling on).
   */
  private start(p: Pending, queued: boolean): boolean {
    const now = this.clock.now();
    const { id, record: r, pool } = p;
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
    // An autoscaled pool routes over its replicas that are up, as the live gateway's pool lists
    // only registered replicas (its empty slots would be filtered out as unhealthy anyway).
    const views: EndpointView[] = [];
    for (let i = 0; i < pool.endpoints.length; i++) {
      const e = pool.endpoints[i]!;
      if (e.scaled !== null && e.scaled.phase === 'off') continue;
      if (this.scrapeMs === 0) this.scrape(e);
      views.push(e.state.view(i));
    }
    const router = pool.router;
    let ep: SimEndpoint;
    try {
      ep = pool.endpoints[router.route(req, views).index]!;
    } catch (err) {
      if (!(err instanceof SwitchyardError)) throw err;
      return false;
    }
    this.pending.delete(id);
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
    ep.scaled?.running.add(id);
    if (!queued) this.enter(now);
    let first = true;
    const fair = pool.fair ? pool.scheduler : null;
    const accepted = ep.engine.submit(
      { id, promptTokens, outputTokens, ...(blockHashes ? { blockHashes } : {}) },
      {
        onTokens: (count) => {
          fair?.onServed(p.tenant, 0, count);
          if (!first) return;
          first = false;
          router.firstToken(id);
          pool.window?.firstToken(this.clock.now(), this.clock.now() - p.arrivalMs);
          // The request left prefill: an endpoint at its `maxPrefilling` gate may take the next one.
          if (pool.prefillGated) this.pump(pool);
        },
        onFinish: (res) => {
          ep.scaled?.running.delete(id);
          if (res.reason === 'cancelled') {
            // Its replica was preempted under it (the only cancel in a simulation).
            router.finished(id, { ok: false, cachedTokens: null, outputTokens: null });
            ep.state.inFlight--;
            this.leave(res.finishedMs);
            this.reject(p, ep.spec.name, 'preempted', route);
            return;
          }
          router.finished(id, { ok: true, cachedTokens: res.cachedTokens, outputTokens: res.outputTokens });
          this.finished(p, ep, res, route);
        },
      },
    );
    if (!accepted) {
      router.finished(id, { ok: false, cachedTokens: null, outputTokens: null });
      ep.state.inFlight--;
      ep.scaled?.running.delete(id);
      this.leave(now);
      const tooLong = promptTokens + outputTokens > ep.spec.profile.maxModelLen;
      this.reject(p, ep.spec.name, tooLong ? 'too_long' : 'queue_full', route);
      return true;
    }
    // VTC charges the prompt when the request is admitted, and output tokens as they are produced.
    fair?.onServed(p.tenant, promptTokens, 0);
    const wait = now - p.arrivalMs;
    this.hist.gatewayQueue.add(wait);
    if (p.cold) this.scaleStats.coldWait.add(wait);
    this.group(this.byClass, p.priority).wait.add(wait);
    this.group(this.byTenant, p.tenant).wait.add(wait);
    return true;
  }

  private finished(p: Pending, ep: SimEndpoint, res: EngineRequestResult, route: RouteNote): void {
    ep.state.inFlight--;
    ep.served++;
    this.leave(res.finishedMs);
    this.completed++;
    const ttft = res.firstTokenMs - p.arrivalMs;
    const e2e = res.finishedMs - p.arrivalMs;
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
    for (const g of [this.group(this.byClass, p.priority), this.group(this.byTenant, p.tenant)]) {
      g.completed++;
      if (met) g.sloMet++;
      g.ttft.add(ttft);
      g.e2e.add(e2e);
    }
    if (p.features !== null) p.pool.predictor!.learn(p.features, res.outputTokens);
    p.pool.window?.completed(res.finishedMs, tpot, res.outputTokens);
    if (ep.scaled?.phase === 'draining' && ep.state.inFlight === 0) this.stopReplica(ep);
    this.sink?.({
      id: res.id,
      arrival_ms: p.arrivalMs,
      input_tokens: res.promptTokens,
      output_tokens: res.outputTokens,
      cached_tokens: res.cachedTokens,
      queue_ms: queue,
      gateway_queue_ms: res.arrivalMs - p.arrivalMs,
      ttft_ms: ttft,
      tpot_ms: tpot,
      e2e_ms: e2e,
      endpoint: ep.spec.name,
      pool: p.pool.name,
      priority: p.priority,
      tenant: p.tenant,
      status: 'ok',
      reject_reason: 'none',
      preemptions: res.preemptions,
      slo_met: met,
      route: route.reason,
      route_candidates: route.candidates,
      predicted_cached_tokens: route.cached,
    });
    this.pump(p.pool);
  }

  /** The gateway queue let go of a waiting request without running it. */
  private dropped(item: QueueItem, reason: DropReason): void {
    if (reason === 'cancelled') throw new Error('the simulator has no clients that go away');
    const p = this.pending.get(item.id);
    if (p === undefined) throw new Error(`the queue dropped ${item.id}, which is not waiting`);
    this.pending.delete(item.id);
    this.leave(this.clock.now());
    this.droppedBy[reason] = (this.droppedBy[reason] ?? 0) + 1;
    this.reject(p, 'none', reason, NO_ROUTE);
  }

  private reject(p: Pending, endpoint: string, reason: RejectReason, route: RouteNote): void {
    const now = this.clock.now();
    const r = p.record;
    this.rejected++;
    this.rejectedBy[reason] = (this.rejectedBy[reason] ?? 0) + 1;
    if (reason === 'too_long') {
      this.group(this.byClass, p.priority).tooLong++;
      this.group(this.byTenant, p.tenant).tooLong++;
    }
    this.timeline.at(now - this.firstArrivalMs).rejections++;
    this.sink?.({
      id: p.id,
      arrival_ms: p.arrivalMs,
      input_tokens: r.inputTokens,
      output_tokens: r.outputTokens,
      cached_tokens: 0,
      queue_ms: Number.NaN,
      gateway_queue_ms: now - p.arrivalMs,
      ttft_ms: Number.NaN,
      tpot_ms: Number.NaN,
      e2e_ms: Number.NaN,
      endpoint,
      pool: p.pool.name,
      priority: p.priority,
      tenant: p.tenant,
      status: 'rejected',
      reject_reason: reason,
      preemptions: 0,
      slo_met: false,
      route: route.reason,
      route_candidates: route.candidates,
      predicted_cached_tokens: route.cached,
    });
  }

  /** Capacity may have freed: the pool's queue starts what it can. */
  private pump(pool: SimPool): void {
    if (pool.scheduler !== null && pool.scheduler.waiting > 0) pool.scheduler.pump(this.clock.now());
  }

  /** Keeps the pool's one expiry timer at or before the queue's next expiry (a later one re-arms itself). */
  private armExpiry(pool: SimPool, atMs: number): void {
    if (!(atMs < pool.expiryAtMs)) return;
    if (pool.expiry !== null) this.clock.clearTimer(pool.expiry);
    pool.expiryAtMs = atMs;
    pool.expiry = this.clock.setTimer(atMs - this.clock.now(), () => {
      pool.expiry = null;
      pool.expiryAtMs = Number.POSITIVE_INFINITY;
      const s = pool.scheduler!;
      const now = this.clock.now();
      const next = s.expire(now);
      if (!(next > now)) throw new Error(`queue expiry at ${now} ms returned ${next}: no progress`);
      // A dropped item may have been the last non-batch one holding batch work back.
      s.pump(now);
      this.armExpiry(pool, next);
    });
  }

  private group(map: Map<string, GroupStats>, key: string): GroupStats {
    let g = map.get(key);
    if (g !== undefined) return g;
    if (map === this.byTenant && map.size >= MAX_TENANT_GROUPS) key = OTHER_TENANTS;
    g = map.get(key) ?? new GroupStats();
    map.set(key, g);
    return g;
  }

  private referenceProfile(pool: SimPool): EngineProfile {
    return this.slo.referenceProfile ?? pool.endpoints[0]!.spec.profile;
  }

  /** The TTFT a request of `promptTokens` must meet to count toward the SLO. */
  private ttftLimitMs(p: EngineProfile, promptTokens: number): number {
    const s = this.slo;
    return s.ttftMs ?? (s.ttftScale ?? 5) * idleTtftMs(s.referenceProfile ?? p, promptTokens);
  }

  private meetsSlo(p: EngineProfile, promptTokens: number, ttft: number, tpot: number): boolean {
    if (ttft > this.ttftLimitMs(p, promptTokens)) return false;
    return this.slo.tpotMs === undefined || Number.isNaN(tpot) || tpot <= this.slo.tpotMs;
  }

  /** Samples queue lengths and batches into the timeline, every `sampleIntervalMs` while there is work. */
  private sample(): void {
    const b = this.timeline.at(this.clock.now() - this.firstArrivalMs);
    b.samples++;
    const now = this.clock.now();
    let up = 0;
    for (const e of this.all)
      if (e.scaled === null ? (e.spec.startAtMs ?? now) <= now : e.scaled.phase !== 'off') up++;
    b.replicasSum += up;
    if (up > this.scaleStats.maxReplicas) this.scaleStats.maxReplicas = up;
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
    for (const p of this.pools) for (const e of p.endpoints) if (e.scaled?.phase !== 'off') this.scrape(e);
    // A replica seen healthy again is capacity for the queue.
    for (const p of this.pools) this.pump(p);
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

  private scalingSummary(): ScalingSummary | null {
    const scaled = this.pools.filter((p) => p.autoscaler !== null);
    if (scaled.length === 0) return null;
    const sc = this.scaleStats;
    return {
      policy: [...new Set(scaled.map((p) => p.autoscaler!.policy.name))].join(','),
      decisions: scaled.reduce((n, p) => n + p.autoscaler!.decisions, 0),
      scale_changes: scaled.reduce((n, p) => n + p.autoscaler!.changes, 0),
      max_replicas: sc.maxReplicas,
      replica_seconds_by_tier: { 'on-demand': sc.upMs['on-demand'] / 1000, spot: sc.upMs.spot / 1000 },
      spot_preemptions: sc.preemptions,
      cold_start_waits: sc.coldWaits,
      cold_start_wait_ms: {
        p50: sc.coldWait.quantile(0.5),
        p99: sc.coldWait.quantile(0.99),
        max: sc.coldWait.summary().max,
      },
    };
  }

  private queueSummary(): QueueSummary | null {
    const orders = [...new Set(this.pools.flatMap((p) => (p.sched === null ? [] : [p.sched.order])))];
    if (orders.length === 0) return null;
    return {
      order: orders.join(','),
      queued: this.queued,
      max_waiting: this.maxWaiting,
      dropped_by_reason: { ...this.droppedBy },
    };
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
      let used = 0;
      for (const e of p.endpoints) {
        if (e.scaled !== null) {
          // Autoscaled replicas are accounted as they stop; those still up count to the end of the run.
          if (e.scaled.phase !== 'off') this.stopReplicaAt(e, endMs);
          if (e.served > 0) perEndpoint[e.spec.name] = e.served;
          if (e.served > 0) used++;
          served += e.served;
          max = Math.max(max, e.served);
          continue;
        }
        used++;
        perEndpoint[e.spec.name] = e.served;
        // A replica counts (and costs) from its start, cold start included, to the end of the run.
        const upMs = Math.max(0, endMs - Math.max(start, e.spec.startAtMs ?? start));
        replicaMs += upMs;
        cost += (e.spec.profile.costPerHourUsd * upMs) / 3_600_000;
        if (e.spec.startAtMs !== undefined && e.spec.startAtMs <= endMs) coldStarts++;
        served += e.served;
        max = Math.max(max, e.served);
      }
      if (served > 0) imbalance = Math.max(Number.isNaN(imbalance) ? 0 : imbalance, max / (served / used));
    }
    const sc = this.scaleStats;
    replicaMs += sc.upMs['on-demand'] + sc.upMs.spot;
    cost += sc.cost;
    coldStarts += sc.starts;
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
      gateway_queue_ms: this.hist.gatewayQueue.summary(),
      scheduling: this.queueSummary(),
      by_class: groups(this.byClass, PRIORITY_CLASSES),
      by_tenant: groups(this.byTenant, [...this.byTenant.keys()]),
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
      autoscaling: this.scalingSummary(),
    };
  }
}

function groups(map: Map<string, GroupStats>, order: readonly string[]): Record<string, GroupSummary> {
  const out: Record<string, GroupSummary> = {};
  for (const k of order) {
    const g = map.get(k);
    if (g !== undefined) out[k] = g.summary();
  }
  return out;
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

/** The simulated actuator: an autoscaled pool's slots, started and drained on the virtual clock. */
class SimActuator implements Actuator {
  readonly kind = 'simulated';

  constructor(
    private readonly pool: SimPool,
    private readonly hooks: {
      start(e: SimEndpoint, tier: PriceTier): void;
      drain(e: SimEndpoint): void;
    },
  ) {}

  replicas(): ReplicaStatus[] {
    const out: ReplicaStatus[] = [];
    for (const e of this.pool.endpoints) {
      const s = e.scaled!;
      if (s.phase === 'off') continue;
      out.push({ id: e.spec.name, type: s.type.name, tier: s.tier, phase: s.phase, sinceMs: s.sinceMs });
    }
    return out;
  }

  apply(target: readonly Placement[]): void {
    const want = new Map<string, number>();
    for (const p of target)
      want.set(`${p.type}\u0000${p.tier}`, (want.get(`${p.type}\u0000${p.tier}`) ?? 0) + p.count);
    // Groups in the target or holding live replicas now.
    const live = new Map<string, SimEndpoint[]>();
    for (const e of this.pool.endpoints) {
      const s = e.scaled!;
      if (s.phase !== 'starting' && s.phase !== 'ready') continue;
      const k = `${s.type.name}\u0000${s.tier}`;
      const group = live.get(k);
      if (group === undefined) live.set(k, [e]);
      else group.push(e);
    }
    for (const k of new Set([...want.keys(), ...live.keys()])) {
      const [type, tier] = k.split('\u0000') as [string, PriceTier];
      const have = live.get(k) ?? [];
      const n = want.get(k) ?? 0;
      if (have.length < n) {
        let missing = n - have.length;
        for (const e of this.pool.endpoints) {
          if (missing === 0) break;
          if (e.scaled!.type.name === type && e.scaled!.phase === 'off') {
            this.hooks.start(e, tier);
            missing--;
          }
        }
      } else if (have.length > n) {
        // Cancel cold starts first (nothing to drain), then the newest serving replicas.
        const order = [...have].sort(
          (a, b) =>
            Number(b.scaled!.phase === 'starting') - Number(a.scaled!.phase === 'starting') ||
            b.scaled!.sinceMs - a.scaled!.sinceMs,
        );
        for (const e of order.slice(0, have.length - n)) this.hooks.drain(e);
      }
    }
  }
}
