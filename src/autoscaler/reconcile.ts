/**
 * @module autoscaler/reconcile
 * The one rule that turns a target placement into actions on a fleet, shared by every actuator
 * that runs replicas itself (simulated, emulated, local processes): per (type, tier), start what is
 * missing; of a surplus, cancel cold starts first (nothing to drain), then drain the newest
 * serving replicas (the oldest have the warmest caches). Draining replicas no longer count.
 */
import type { Placement, PriceTier, ReplicaStatus } from './types.js';

/** What an actuator does to reach a target. */
export interface ReconcilePlan {
  /** Replicas to start, in target order. */
  readonly start: readonly { readonly type: string; readonly tier: PriceTier }[];
  /** Ids of replicas to stop (starting ones) or drain (ready ones), in that order. */
  readonly stop: readonly string[];
}

/** The actions that take `replicas` (in start order) to `target`. */
export function reconcile(target: readonly Placement[], replicas: readonly ReplicaStatus[]): ReconcilePlan {
  const want = new Map<string, number>();
  for (const p of target) {
    if (!Number.isInteger(p.count) || p.count < 0)
      throw new Error(`placement ${p.type}/${p.tier}: count ${p.count} is not a whole number ≥ 0`);
    const k = key(p.type, p.tier);
    want.set(k, (want.get(k) ?? 0) + p.count);
  }
  const live = new Map<string, ReplicaStatus[]>();
  for (const r of replicas) {
    if (r.phase !== 'starting' && r.phase !== 'ready') continue;
    const k = key(r.type, r.tier);
    const group = live.get(k);
    if (group === undefined) live.set(k, [r]);
    else group.push(r);
  }
  const start: { type: string; tier: PriceTier }[] = [];
  const stop: string[] = [];
  for (const k of new Set([...want.keys(), ...live.keys()])) {
    const [type, tier] = k.split('\u0000') as [string, PriceTier];
    const have = live.get(k) ?? [];
    const n = want.get(k) ?? 0;
    for (let i = have.length; i < n; i++) start.push({ type, tier });
    if (have.length <= n) continue;
    const order = [...have].sort(
      (a, b) => Number(b.phase === 'starting') - Number(a.phase === 'starting') || b.sinceMs - a.sinceMs,
    );
    for (const r of order.slice(0, have.length - n)) stop.push(r.id);
  }
  return { start, stop };
}

function key(type: string, tier: PriceTier): string {
  return `${type}\u0000${tier}`;
}

/**
 * The name of the `seq`-th replica an actuator starts for `pool` (its endpoint id in routing, where
 * hashing policies place it on their rings): the emulated actuator and the simulator name replicas
 * alike, so such policies place them alike.
 */
export function replicaName(pool: string, type: string, seq: number): string {
  return `${pool}-${type}-${seq}`.replace(/[^A-Za-z0-9._-]/g, '-');
}
