/**
 * @module sim/summary
 * The run's summary: the request statistics plus what the replicas cost (fixed replicas from their
 * start to the end of the run, autoscaled ones while they were up), the queues and the autoscalers.
 */
import type { SimPool } from './simulator.js';
import type { ScalingStats } from './scaled-pool.js';
import type { SimStats } from './stats.js';
import type { QueueSummary, ScalingSummary, SimSummary } from './types.js';

/** Builds the summary once the replay is over (autoscaled replicas still up are stopped at its end). */
export function summarize(pools: readonly SimPool[], stats: SimStats, sc: ScalingStats): SimSummary {
  const start = Number.isNaN(stats.firstArrivalMs) ? 0 : stats.firstArrivalMs;
  const spanMs = Math.max(0, stats.lastEventMs - start);
  const endMs = start + spanMs;
  const perEndpoint: Record<string, number> = {};
  let replicaMs = 0;
  let cost = 0;
  let coldStarts = 0;
  // Imbalance within each pool that served anything (pools serve different models); the worst pool.
  let imbalance = Number.NaN;
  for (const p of pools) {
    let served = 0;
    let max = 0;
    let used = 0;
    for (const e of p.endpoints) {
      if (e.scaled !== null) {
        // Autoscaled replicas are accounted as they stop; those still up count to the end of the run.
        if (e.scaled.phase !== 'off') p.scaled!.stop(e, endMs);
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
  replicaMs += sc.upMs['on-demand'] + sc.upMs.spot;
  cost += sc.cost;
  coldStarts += sc.starts;
  return {
    ...stats.requestSummary(spanMs),
    scheduling: queueSummary(pools, stats),
    load_imbalance: imbalance,
    per_endpoint: perEndpoint,
    replica_seconds: replicaMs / 1000,
    cost_usd: cost,
    cold_starts: coldStarts,
    autoscaling: scalingSummary(pools, sc),
  };
}

function scalingSummary(pools: readonly SimPool[], sc: ScalingStats): ScalingSummary | null {
  const scaled = pools.flatMap((p) => (p.scaled === null ? [] : [p.scaled.loop.autoscaler]));
  if (scaled.length === 0) return null;
  return {
    policy: [...new Set(scaled.map((a) => a.policy.name))].join(','),
    decisions: scaled.reduce((n, a) => n + a.decisions, 0),
    scale_changes: scaled.reduce((n, a) => n + a.changes, 0),
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

function queueSummary(pools: readonly SimPool[], stats: SimStats): QueueSummary | null {
  const orders = [...new Set(pools.flatMap((p) => (p.sched === null ? [] : [p.sched.order])))];
  if (orders.length === 0) return null;
  return {
    order: orders.join(','),
    queued: stats.queued,
    max_waiting: stats.maxWaiting,
    dropped_by_reason: { ...stats.droppedBy },
  };
}
