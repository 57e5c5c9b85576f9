/**
 * @module sim/scaled-pool
 * The replicas of a simulated pool. A fixed pool's endpoints are engine models from the start (or
 * from their `startAtMs`); an autoscaled pool has slots, per instance type room for its max
 * replicas plus as many draining, that the simulated actuator fills and empties as the pool's
 * {@link ScalingLoop} (the gateway's own) decides: cold starts, drains, spot notices and losses.
 */
import { reconcile, replicaName } from '../autoscaler/reconcile.js';
import type { Actuator, InstanceType, Placement, PriceTier, ReplicaStatus } from '../autoscaler/types.js';
import type { VirtualClock } from '../core/virtual-clock.js';
import type { EndpointState } from '../datalayer/endpoint-state.js';
import type { EngineModel } from '../engine-model/engine-model.js';
import { getProfile } from '../engine-model/profiles.js';
import type { DriverEndpoint } from '../pool/driver.js';
import { ScalingLoop } from '../pool/scaling.js';
import { LogHistogram } from './log-histogram.js';
import type { SimEndpointSpec, SimScalingSpec } from './types.js';

/** One simulated replica. */
export interface SimEndpoint {
  /** Index of this replica across all pools (timeline column). */
  readonly slot: number;
  readonly spec: SimEndpointSpec;
  /** A new replica in an autoscaled slot is a new endpoint: fresh state under its own name. */
  state: EndpointState;
  /** Replaced by a fresh (cold) engine each time an autoscaled slot starts a replica. */
  engine: EngineModel;
  served: number;
  /** Autoscaled slots: the replica's lifecycle and accounting; null for a fixed endpoint. */
  readonly scaled: ScaledSlot | null;
  /** The driver's view of it; a new replica in the slot is a new endpoint id. */
  driven: DriverEndpoint<SimEndpoint>;
}

/** A slot of an autoscaled pool that holds at most one replica at a time. */
export interface ScaledSlot {
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

/** Replica time, cost and events of every autoscaled pool of a run. */
export class ScalingStats {
  starts = 0;
  preemptions = 0;
  readonly upMs: Record<PriceTier, number> = { 'on-demand': 0, spot: 0 };
  cost = 0;
  coldWaits = 0;
  readonly coldWait = new LogHistogram();
  maxReplicas = 0;
}

/** What a scaled pool needs from its simulation. */
export interface ScaledPoolHost {
  readonly clock: VirtualClock;
  readonly stats: ScalingStats;
  /** Fresh endpoint state for a replica of `spec` named `id`. */
  state(spec: SimEndpointSpec, id: string): EndpointState;
  /** A fresh engine for `spec`, cold from now when `cold`. */
  engine(spec: SimEndpointSpec, cold: boolean): EngineModel;
  /** The set of replicas that are up changed: the driver's endpoints follow. */
  changed(): void;
  /** A replica finished its cold start: waiting requests may go. */
  ready(): void;
  /** Whether the replay still has work. */
  running(): boolean;
}

/** The slots of an autoscaled pool: per instance type, room for its max replicas plus as many draining. */
export function slotSpecs(
  pool: string,
  scaling: SimScalingSpec,
): { e: SimEndpointSpec; type: InstanceType }[] {
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

/** An autoscaled pool's replicas on the virtual clock; see the module comment. */
export class ScaledPool {
  readonly loop: ScalingLoop;
  /** Replicas started so far (their names count them, as the emulated actuator's do). */
  private started = 0;

  constructor(
    private readonly pool: string,
    private readonly endpoints: readonly SimEndpoint[],
    private readonly scaling: SimScalingSpec,
    private readonly host: ScaledPoolHost,
  ) {
    const actuator = new SimActuator(endpoints, {
      start: (e, tier) => this.startReplica(e, tier),
      drain: (e) => this.drain(e),
    });
    this.loop = new ScalingLoop(scaling.autoscaler, scaling.policy, actuator, host.clock, {
      active: () => host.running(),
    });
  }

  /** At time 0: the initial target; its replicas were running before the run (warm, not cold starts). */
  start(): void {
    this.loop.start(this.scaling.initialReplicas ?? 0);
    for (const e of this.endpoints) {
      const slot = e.scaled!;
      if (slot.phase !== 'starting') continue;
      slot.phase = 'ready'; // its cold-start timer finds it ready and does nothing
      this.host.stats.starts--;
      e.engine = this.host.engine(e.spec, false);
      e.state.healthy = true;
    }
  }

  /** No new requests for `e`; it stops once its requests have finished (a starting one stops now). */
  drain(e: SimEndpoint): void {
    const slot = e.scaled!;
    e.state.healthy = false;
    if (slot.phase === 'starting' || e.state.inFlight === 0) {
      this.stop(e);
      return;
    }
    slot.phase = 'draining';
  }

  /** A replica's last request ended: a draining one stops. */
  idle(e: SimEndpoint): void {
    if (e.scaled?.phase === 'draining') this.stop(e);
  }

  stop(e: SimEndpoint, now = this.host.clock.now()): void {
    const slot = e.scaled!;
    if (slot.phase === 'off') return;
    const upMs = Math.max(0, now - slot.sinceMs);
    const stats = this.host.stats;
    stats.upMs[slot.tier] += upMs;
    const type = slot.type;
    stats.cost +=
      ((slot.tier === 'spot' ? type.spotUsdPerHour! : type.onDemandUsdPerHour) * upMs) / 3_600_000;
    slot.phase = 'off';
    slot.sinceMs = Number.NaN;
    slot.generation++;
    e.state.healthy = false;
    this.host.changed();
  }

  /** The actuator starts a replica in slot `e`: a fresh engine, cold until the profile's start time. */
  private startReplica(e: SimEndpoint, tier: PriceTier): void {
    const slot = e.scaled!;
    const clock = this.host.clock;
    const now = clock.now();
    slot.phase = 'starting';
    slot.tier = tier;
    slot.sinceMs = now;
    slot.lostAtMs = Number.NaN;
    const gen = ++slot.generation;
    this.host.stats.starts++;
    e.engine = this.host.engine(e.spec, true);
    // A new replica is a new endpoint: its cache is empty, whatever the slot held before.
    const name = replicaName(this.pool, slot.type.name, ++this.started);
    e.state = this.host.state(e.spec, name);
    e.state.healthy = false;
    e.driven = { id: name, state: e.state, ref: e };
    this.host.changed();
    clock.setTimer(e.spec.profile.coldStartMs, () => {
      if (slot.generation !== gen || slot.phase !== 'starting') return;
      slot.phase = 'ready';
      e.state.healthy = true;
      this.host.ready();
    });
    if (tier === 'spot') this.spotNotice(e, gen, now);
  }

  private spotNotice(e: SimEndpoint, gen: number, now: number): void {
    const slot = e.scaled!;
    const clock = this.host.clock;
    const pre = this.scaling.spot?.preemption(`${e.spec.name}#${gen}`, slot.type.name, now) ?? null;
    if (pre === null) return;
    clock.setTimer(Math.max(0, pre.noticeMs - now), () => {
      // After the run no notice matters (a replacement would draw a later one, without end).
      if (slot.generation !== gen || slot.phase === 'off' || !this.host.running()) return;
      this.host.stats.preemptions++;
      slot.lostAtMs = pre.stopMs;
      if (slot.phase !== 'draining') this.drain(e);
      this.loop.preempted(clock.now());
      clock.setTimer(slot.lostAtMs - clock.now(), () => {
        if (slot.generation !== gen || slot.phase === 'off') return;
        // The notice ran out: what still runs there is lost (the engine ends it as cancelled).
        for (const id of [...slot.running]) e.engine.cancel(id);
        this.stop(e);
      });
    });
  }
}

/** The simulated actuator: an autoscaled pool's slots, started and drained on the virtual clock. */
class SimActuator implements Actuator {
  readonly kind = 'simulated';

  constructor(
    private readonly endpoints: readonly SimEndpoint[],
    private readonly hooks: {
      start(e: SimEndpoint, tier: PriceTier): void;
      drain(e: SimEndpoint): void;
    },
  ) {}

  replicas(): ReplicaStatus[] {
    const out: ReplicaStatus[] = [];
    for (const e of this.endpoints) {
      const s = e.scaled!;
      if (s.phase === 'off') continue;
      out.push({ id: e.spec.name, type: s.type.name, tier: s.tier, phase: s.phase, sinceMs: s.sinceMs });
    }
    return out;
  }

  apply(target: readonly Placement[]): void {
    const plan = reconcile(target, this.replicas());
    for (const { type, tier } of plan.start) {
      const e = this.endpoints.find((x) => x.scaled!.type.name === type && x.scaled!.phase === 'off');
      if (e !== undefined) this.hooks.start(e, tier); // every slot of the type is taken: the cap holds
    }
    for (const id of plan.stop) this.hooks.drain(this.endpoints.find((x) => x.spec.name === id)!);
  }
}
