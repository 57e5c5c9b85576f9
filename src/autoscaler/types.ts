/**
 * @module autoscaler/types
 * The autoscaler's seams. A pool's {@link MetricsWindow} is fed by its host (the live gateway or
 * the simulator); every decision interval a {@link ScalingPolicy} turns it into a desired replica
 * count; the capacity planner turns that count into a mix of instance types and price tiers; an
 * {@link Actuator} reconciles the fleet toward that mix (draining what it removes). The policy and
 * planner are pure: they read time only from the context they are given.
 */

/** How a replica's capacity is bought. */
export type PriceTier = 'on-demand' | 'spot';

/** One purchasable kind of replica: an instance type with the engine profile it runs. */
export interface InstanceType {
  /** Unique name, e.g. `h100-ondemand-us` or `a10g`. */
  readonly name: string;
  /** Engine profile (src/engine-model/profiles.ts) a replica of this type runs. */
  readonly profile: string;
  /** Capacity of one replica in units of the pool's reference replica (1 = as one reference replica). */
  readonly capacity: number;
  /** Price of one replica-hour, USD, on demand. */
  readonly onDemandUsdPerHour: number;
  /** Price of one replica-hour, USD, as spot; absent = no spot market for this type. */
  readonly spotUsdPerHour?: number;
  /** Expected spot preemptions per replica-hour (modelled in the simulator). */
  readonly spotPreemptionsPerHour?: number;
  /** Warning before a spot replica is taken away, ms (AWS: 120 000). */
  readonly spotNoticeMs?: number;
  /** Most replicas of this type the provider will give (absent: unbounded, up to the pool's max). */
  readonly maxReplicas?: number;
}

/** How many replicas of one type and tier. */
export interface Placement {
  readonly type: string;
  readonly tier: PriceTier;
  readonly count: number;
}

/** What the planner is asked: capacity to provide, in reference-replica units. */
export interface PlanRequest {
  /** Capacity needed (reference-replica units; e.g. the policy's desired replica count). */
  readonly capacity: number;
  readonly catalog: readonly InstanceType[];
  /** Most of `capacity` that may sit on spot replicas, 0..1 (0 = on demand only). */
  readonly maxSpotShare: number;
  /**
   * Most of `capacity` that may sit on spot replicas of any one type, 0..1, so that one preemption
   * wave (which hits one type in one zone) leaves the rest standing.
   */
  readonly maxSpotSharePerType: number;
  /** Upper bound on replicas in total. */
  readonly maxReplicas: number;
}

export interface Plan {
  readonly placements: readonly Placement[];
  /** Capacity provided (reference units) and its hourly price. */
  readonly capacity: number;
  readonly usdPerHour: number;
  /** `exact` (enumerated) or `greedy` (with the bound in {@link Plan.note}). */
  readonly method: 'exact' | 'greedy';
  readonly note: string;
}

/** The pool's replicas as the autoscaler counts them. */
export interface ReplicaCounts {
  /** Serving. */
  readonly ready: number;
  /** Asked for, not yet serving (cold start under way). */
  readonly starting: number;
  /** Taking no new requests, finishing what they have. */
  readonly draining: number;
}

/** Read access to a pool's recent metrics (see metrics-window.ts). All rates are per second. */
export interface MetricsView {
  /** Requests arrived per second, averaged over the last `windowMs`. */
  arrivalRate(windowMs: number): number;
  /** Requests completed per second over the last `windowMs`. */
  completionRate(windowMs: number): number;
  /**
   * Time-averaged concurrency over the last `windowMs`: requests in flight at the pool's replicas
   * plus requests waiting in the gateway for it (its queue and the activator). A fleet total.
   */
  concurrency(windowMs: number): number;
  /** Time-averaged requests waiting in the gateway (queue + activator), a fleet total. */
  queued(windowMs: number): number;
  /** Time-averaged requests waiting inside the engines (their own queues), a fleet total. */
  engineWaiting(windowMs: number): number;
  /** Time-averaged mean KV-cache usage across ready replicas, 0..1 (NaN: never scraped). */
  kvUsage(windowMs: number): number;
  /** Output tokens per second over the last `windowMs`. */
  tokensPerSecond(windowMs: number): number;
  /** A quantile of TTFT (ms) of requests whose first token came in the last `windowMs` (NaN: none). */
  ttftQuantile(q: number, windowMs: number): number;
  /** A quantile of TPOT (ms) of requests completed in the last `windowMs` (NaN: none). */
  tpotQuantile(q: number, windowMs: number): number;
  /** Milliseconds since the last arrival (+Infinity: none yet). */
  idleMs(): number;
}

/** Everything a policy may read at one decision. */
export interface ScalingContext {
  readonly nowMs: number;
  readonly metrics: MetricsView;
  readonly replicas: ReplicaCounts;
  /** The count this policy decided last time (its own state lives in the policy object). */
  readonly lastDesired: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /**
   * Requests per second one reference replica sustains within the SLO (from the engine model, or
   * the config). Rate-sizing policies (forecast, skyserve, oracle) divide by it.
   */
  readonly replicaRps: number;
  /** Time from asking for a replica to its serving, ms (the reference profile's cold start). */
  readonly coldStartMs: number;
  /** The pool's SLO. */
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number; readonly quantile: number };
}

export interface ScalingDecision {
  /** Desired replicas (reference units), before the controller clamps it to [min, max]. */
  readonly desired: number;
  /** Short machine-readable reason, e.g. `panic`, `stable`, `scale-to-zero`, `hold-starting`. */
  readonly reason: string;
}

/** A named scaling policy; one object per pool (it may keep state between decisions). */
export interface ScalingPolicy {
  readonly name: string;
  /** How often it decides, ms (Knative 2 000, HPA 15 000, …). */
  readonly intervalMs: number;
  decide(ctx: ScalingContext): ScalingDecision;
}

/** A replica as an actuator reports it. */
export interface ReplicaStatus {
  readonly id: string;
  readonly type: string;
  readonly tier: PriceTier;
  readonly phase: 'starting' | 'ready' | 'draining';
  /** When it was asked for (ms on the host's clock). */
  readonly sinceMs: number;
}

/**
 * Makes the fleet match a target mix. Declarative and idempotent: `apply` may be called with the
 * same target again. Removing a replica always drains it first (no new requests; stopped once
 * its in-flight requests finish or a drain timeout passes).
 */
export interface Actuator {
  readonly kind: string;
  apply(target: readonly Placement[]): void | Promise<void>;
  replicas(): readonly ReplicaStatus[];
}
