/**
 * @module actuators/emulated
 * Replicas that are emulated engines in the gateway's own process, on the gateway's clock: no
 * processes to spawn, a cold start that ends exactly `coldStartMs` after the replica was asked for,
 * and a drain that waits for the replica's requests. For demos and tests; a gateway driven on
 * virtual time (the simulator's clock) runs a scaled pool with it exactly as the simulator does.
 *
 *   apply(target) ─► reconcile ─► start: listen on a free loopback port, cold ─► after coldStartMs ─► onReady
 *                               └► stop: starting ─► closed now; ready ─► drain ─► closed ─► onStopped
 */
import { reconcile, replicaName } from '../autoscaler/reconcile.js';
import type { Actuator, InstanceType, Placement, PriceTier, ReplicaStatus } from '../autoscaler/types.js';
import type { Clock } from '../core/clock.js';
import { EmulatorFleet } from '../emulator/fleet.js';
import { getProfile } from '../engine-model/profiles.js';

export interface EmulatedActuatorOptions {
  readonly catalog: readonly InstanceType[];
  /** The model name the replicas serve. */
  readonly model: string;
  readonly clock: Clock;
  /** Every replica's cold start, ms (null: its profile's). */
  readonly coldStartMs: number | null;
  /** A replica finished its cold start: route to `url`. */
  onReady(replica: ReplicaStatus, url: string): void;
  /** A ready replica is being removed: stop routing to it; resolves once its requests are done. */
  drain(id: string): Promise<void>;
  /** The replica is gone. */
  onStopped(id: string): void;
}

interface Replica {
  readonly id: string;
  readonly type: string;
  readonly tier: PriceTier;
  readonly sinceMs: number;
  phase: ReplicaStatus['phase'];
  url: string | null;
  coldOver: boolean;
}

/** Emulated replicas in this process; see the module comment. */
export class EmulatedActuator implements Actuator {
  readonly kind = 'emulated';
  /** The replicas' engines (tests read their engine models). */
  readonly fleet: EmulatorFleet;
  private readonly replicaSet = new Map<string, Replica>();
  private seq = 0;
  /** Starts and stops under way (a host on virtual time waits for none before moving time on). */
  pending = 0;
  private closed = false;

  constructor(private readonly o: EmulatedActuatorOptions) {
    this.fleet = new EmulatorFleet(o.clock);
  }

  apply(target: readonly Placement[]): void {
    if (this.closed) return;
    const plan = reconcile(target, this.replicas());
    for (const id of plan.stop) this.remove(this.replicaSet.get(id)!);
    for (const { type, tier } of plan.start) this.startReplica(type, tier);
  }

  replicas(): readonly ReplicaStatus[] {
    return [...this.replicaSet.values()].map(({ id, type, tier, phase, sinceMs }) => ({
      id,
      type,
      tier,
      phase,
      sinceMs,
    }));
  }

  /** Stops every replica now. */
  async close(): Promise<void> {
    this.closed = true;
    await this.fleet.closeAll();
    this.replicaSet.clear();
  }

  private startReplica(type: string, tier: PriceTier): void {
    const t = this.o.catalog.find((c) => c.name === type);
    if (t === undefined) throw new Error(`EmulatedActuator: unknown instance type "${type}"`);
    const id = replicaName(this.o.model, type, ++this.seq);
    const r: Replica = {
      id,
      type,
      tier,
      sinceMs: this.o.clock.now(),
      phase: 'starting',
      url: null,
      coldOver: false,
    };
    this.replicaSet.set(id, r);
    const coldStartMs = this.o.coldStartMs;
    this.track(
      this.fleet
        .ensure({
          name: id,
          profile: t.profile,
          servedModelName: this.o.model,
          port: 0,
          ...(coldStartMs === null ? {} : { coldStartMs }),
        })
        .then((url) => {
          r.url = url;
          this.readyIfDone(r);
        }),
    );
    const cold = coldStartMs ?? getProfile(t.profile).coldStartMs;
    this.o.clock.setTimer(cold, () => {
      r.coldOver = true;
      this.readyIfDone(r);
    });
  }

  private readyIfDone(r: Replica): void {
    if (r.phase !== 'starting' || !r.coldOver || r.url === null || this.replicaSet.get(r.id) !== r) return;
    r.phase = 'ready';
    this.o.onReady({ id: r.id, type: r.type, tier: r.tier, phase: r.phase, sinceMs: r.sinceMs }, r.url);
  }

  private remove(r: Replica): void {
    const wasReady = r.phase === 'ready';
    r.phase = 'draining';
    const stop = async (): Promise<void> => {
      if (wasReady) await this.o.drain(r.id);
      await this.fleet.stop(r.id);
      this.replicaSet.delete(r.id);
      this.o.onStopped(r.id);
    };
    this.track(stop());
  }

  private track(p: Promise<void>): void {
    this.pending++;
    p.finally(() => this.pending--).catch(() => {});
  }
}
