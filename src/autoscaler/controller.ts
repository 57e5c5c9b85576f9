/**
 * @module autoscaler/controller
 * One pool's autoscaler loop, the same code in the live gateway and in the simulator. Every
 * `policy.intervalMs` the host calls {@link PoolAutoscaler.tick}: the policy reads the pool's
 * metrics window and decides a replica count (in units of the pool's reference replica); the
 * controller clamps it to [min, max], asks the capacity planner for the cheapest mix of instance
 * types and price tiers that provides it, and hands that mix to the actuator, which reconciles
 * (starting what is missing, draining what is surplus).
 *
 * What the controller guards against, whatever the policy (failure modes seen in published
 * autoscalers):
 * - **Deciding again while replicas start.** The target is declarative: replicas still starting
 *   count toward it, so a policy that keeps seeing high load during a cold start asks for the same
 *   count again rather than adding on top, and the actuator cancels starting replicas before it
 *   drains serving ones. (Dynamo warns that decisions "may observe an in-progress transition",
 *   ai-dynamo/dynamo `docs/design-docs/planner-design.md`; vllm-project/aibrix PR #2671 adds a
 *   pending-replica guard.)
 * - **Removing without draining.** Removal is always the actuator's drain (no new requests, then
 *   stop once idle).
 * - **Scaling to zero without a buffer.** The gateway's admission queue holds requests for a pool at
 *   zero (the activator, as Knative's `pkg/activator/net/throttler.go`); {@link PoolAutoscaler.wake}
 *   asks for the first replica at once instead of waiting for the next tick. (Without a buffer the
 *   first request gets a 503: vllm-project/production-stack `tutorials/20-keda-autoscaling.md`.)
 */
import { planCapacity } from './planner.js';
import type {
  Actuator,
  InstanceType,
  MetricsView,
  Placement,
  Plan,
  ReplicaCounts,
  ScalingContext,
  ScalingPolicy,
} from './types.js';

export interface AutoscalerSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Instance types; the first is the reference replica (its `capacity` is normally 1). */
  readonly catalog: readonly InstanceType[];
  /** Most of the needed capacity that may sit on spot replicas, 0..1 (default 0: on demand only). */
  readonly maxSpotShare?: number;
  /** Most of the needed capacity on spot replicas of one type, 0..1 (default 1). */
  readonly maxSpotSharePerType?: number;
  /** Requests per second one reference replica sustains within the SLO. */
  readonly replicaRps: number;
  /** Time from asking for a replica to its serving (ms), of the reference type. */
  readonly coldStartMs: number;
  readonly slo: ScalingContext['slo'];
}

/** One change of the pool's target. */
export interface ScaleEvent {
  readonly atMs: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
  readonly plan: Plan;
}

export class PoolAutoscaler {
  private desired: number;
  private plan: Plan | null = null;
  /** Decisions taken, and target changes applied. */
  decisions = 0;
  changes = 0;

  constructor(
    readonly spec: AutoscalerSpec,
    readonly policy: ScalingPolicy,
    private readonly metrics: MetricsView,
    private readonly actuator: Actuator,
  ) {
    if (spec.catalog.length === 0) throw new Error('an autoscaled pool needs at least one instance type');
    if (!(spec.minReplicas >= 0 && spec.maxReplicas >= Math.max(1, spec.minReplicas)))
      throw new Error(`bad replica bounds [${spec.minReplicas}, ${spec.maxReplicas}]`);
    this.desired = spec.minReplicas;
  }

  /** The count the pool is scaled to now (reference units). */
  get target(): number {
    return this.desired;
  }

  counts(): ReplicaCounts {
    let ready = 0;
    let starting = 0;
    let draining = 0;
    for (const r of this.actuator.replicas()) {
      if (r.phase === 'ready') ready++;
      else if (r.phase === 'starting') starting++;
      else draining++;
    }
    return { ready, starting, draining };
  }

  /** Applies the initial target (the minimum, or `replicas` when a running fleet is taken over). */
  start(nowMs: number, replicas = this.spec.minReplicas): ScaleEvent {
    return this.setTarget(replicas, 'initial', nowMs, true)!;
  }

  /**
   * One decision of the policy; returns the change it made, if any. `floor` is the activator's:
   * while requests wait for the pool, the target does not fall below it, so a replica already
   * starting for them is not cancelled by a policy that sees no load yet.
   */
  tick(nowMs: number, floor = 0): ScaleEvent | null {
    this.decisions++;
    const d = this.policy.decide({
      nowMs,
      metrics: this.metrics,
      replicas: this.counts(),
      lastDesired: this.desired,
      minReplicas: this.spec.minReplicas,
      maxReplicas: this.spec.maxReplicas,
      replicaRps: this.spec.replicaRps,
      coldStartMs: this.spec.coldStartMs,
      slo: this.spec.slo,
    });
    if (d.desired < floor) return this.setTarget(floor, 'activator', nowMs, false);
    return this.setTarget(d.desired, d.reason, nowMs, false);
  }

  /**
   * The activator's call: requests are waiting for a pool that is scaled to zero. Asks for the
   * first replica now (Knative's activator pokes the autoscaler the same way).
   */
  wake(nowMs: number): ScaleEvent | null {
    if (this.desired >= 1) return null;
    return this.setTarget(1, 'activator', nowMs, false);
  }

  /**
   * A spot replica got its preemption notice and the host has stopped routing to it (it drains
   * until the notice runs out). Draining replicas do not count toward the target, so re-applying
   * the plan starts its replacement now, within the notice rather than after the loss.
   */
  preempted(nowMs: number): ScaleEvent | null {
    return this.setTarget(this.desired, 'preemption', nowMs, true);
  }

  private setTarget(raw: number, reason: string, nowMs: number, force: boolean): ScaleEvent | null {
    const want = Math.min(this.spec.maxReplicas, Math.max(this.spec.minReplicas, Math.ceil(raw - 1e-9)));
    if (want === this.desired && !force && this.plan !== null) return null;
    const from = this.desired;
    this.desired = want;
    const plan = planCapacity({
      capacity: want,
      catalog: this.spec.catalog,
      maxSpotShare: this.spec.maxSpotShare ?? 0,
      maxSpotSharePerType: this.spec.maxSpotSharePerType ?? 1,
      maxReplicas: this.spec.maxReplicas,
    });
    this.plan = plan;
    if (from !== want) this.changes++;
    void this.actuator.apply(plan.placements);
    return { atMs: nowMs, from, to: want, reason, plan };
  }
}

/** The placements of a plan as `type:tier` → count (for logs and reports). */
export function describePlacements(ps: readonly Placement[]): string {
  return ps.map((p) => `${p.type}:${p.tier}×${p.count}`).join(' ') || 'none';
}
