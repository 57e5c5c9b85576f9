/**
 * @module sim/types
 * What a simulation takes (pools, endpoints, scaling, scheduling, SLO) and what it gives back (a
 * record per request, a summary, the report's charts).
 */
import type { AutoscalerSpec } from '../autoscaler/controller.js';
import type { PriceTier, ScalingPolicy } from '../autoscaler/types.js';
import type { EngineProfile } from '../engine-model/types.js';
import type { EndpointGate } from '../framework/endpoint.js';
import type { BreakerPlan } from '../pool/plan.js';
import type { RoutingProfileSpec } from '../router/router.js';
import type { SchedulerOptions } from '../scheduler/pool-scheduler.js';
import type { PredictorOptions } from '../scheduler/predictor.js';
import type { DropReason, PriorityClass } from '../scheduler/types.js';
import type { Percentiles } from './log-histogram.js';
import type { MismatchSpec } from './mismatch.js';
import type { TimelinePoint } from './timeline.js';

/** One simulated replica. */
export interface SimEndpointSpec {
  readonly name: string;
  /** The profile the router believes (its views carry it) and the SLO is judged by. */
  readonly profile: EngineProfile;
  /**
   * The engine the replica really runs, when it is not `profile` (a model that is wrong about it);
   * {@link SimOptions.mismatch} draws one for every replica that has none.
   */
  readonly engine?: EngineProfile;
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
  /** Every endpoint's circuit breaker (default: the gateway config's `health` defaults). */
  readonly breaker?: BreakerPlan;
  /** How often the fleet's state (queues, running batches) is sampled for the report (ms; default 1000). */
  readonly sampleIntervalMs?: number;
  /**
   * The gateway's admission queue, one per pool (absent: none, as before scheduling existed — a
   * request no endpoint can take is rejected with `no_endpoint`). Give endpoints a finite
   * `maxConcurrency` so that requests wait in the gateway rather than in the engines.
   */
  readonly scheduling?: SimSchedulingOptions;
  /**
   * Engines that differ from their profiles (sim/mismatch.ts): every step-time constant of each
   * replica's engine off by up to ±`scale`, seeded; the router's views keep the nominal profile.
   */
  readonly mismatch?: MismatchSpec;
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
  /**
   * The TTFT (ms, from the moment it was sent) the routing policy's cost model predicted on the
   * chosen endpoint, its correction applied, plus the profile's per-request overhead; NaN (null in
   * JSON) for policies without one. Compare with `ttft_ms − gateway_queue_ms`.
   */
  readonly predicted_ttft_ms: number;
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
