/**
 * @module actuators/static
 * The actuator of a fixed fleet: the replicas are the ones the configuration lists, all serving.
 * `apply` changes nothing; it records the target so that an operator (or a test) can see what the
 * autoscaler would have done. Use it to run a policy in shadow mode against a hand-managed fleet.
 */
import type { Actuator, Placement, PriceTier, ReplicaStatus } from '../autoscaler/types.js';

/** One configured replica. */
export interface StaticReplica {
  readonly id: string;
  /** Instance type name (see `InstanceType.name`). */
  readonly type: string;
  /** Default `on-demand`. */
  readonly tier?: PriceTier;
}

export interface StaticActuatorOptions {
  readonly replicas: readonly StaticReplica[];
  /** Reported as every replica's `sinceMs` (default 0: there since the start). */
  readonly sinceMs?: number;
}

/** A fleet that the autoscaler may read but not change. */
export class StaticActuator implements Actuator {
  readonly kind = 'static';
  private readonly fleet: readonly ReplicaStatus[];
  private last: readonly Placement[] | null = null;

  constructor(options: StaticActuatorOptions) {
    const ids = new Set<string>();
    const sinceMs = options.sinceMs ?? 0;
    this.fleet = Object.freeze(
      options.replicas.map((r, i) => {
        if (r.id === '' || ids.has(r.id))
          throw new Error(`replicas[${i}].id: "${r.id}" must be a non-empty id used once`);
        ids.add(r.id);
        return Object.freeze({
          id: r.id,
          type: r.type,
          tier: r.tier ?? 'on-demand',
          phase: 'ready' as const,
          sinceMs,
        });
      }),
    );
  }

  /** Records `target` (see {@link pending}); the fleet stays as configured. */
  apply(target: readonly Placement[]): void {
    this.last = Object.freeze(target.map((p) => Object.freeze({ ...p })));
  }

  /** The last target applied, which this actuator did not carry out; null before any. */
  get pending(): readonly Placement[] | null {
    return this.last;
  }

  /** The configured replicas, all `ready`. */
  replicas(): readonly ReplicaStatus[] {
    return this.fleet;
  }
}
