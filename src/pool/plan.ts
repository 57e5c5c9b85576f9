/**
 * @module pool/plan
 * The one compile of a validated config into what each pool runs: its routing profile, endpoint
 * gates, queue, scaling spec and breaker settings. The gateway's runtime and autoscaler and
 * `switchyard sim --config` all read these plans, so no default or name list is written twice.
 */
import type { AutoscalerSpec } from '../autoscaler/controller.js';
import type { InstanceType } from '../autoscaler/types.js';
import { schedulingFor } from '../config/load.js';
import {
  type EndpointConfig,
  type ScalingConfig,
  type SchedulingConfig,
  type SwitchyardConfig,
  healthSchema,
} from '../config/schema.js';
import { getProfile } from '../engine-model/profiles.js';
import type { EndpointGate, EndpointInfo } from '../framework/endpoint.js';
import { routingSpec } from '../router/presets.js';
import type { RoutingProfileSpec } from '../router/router.js';
import type { SchedulerOptions } from '../scheduler/pool-scheduler.js';
import { PRIORITY_CLASSES, type PriorityClass } from '../scheduler/types.js';
import type { QueuePlan } from './driver.js';

/**
 * Cold start of the default replica command, an emulated engine, ms. The emulated engine stands in
 * for a GPU engine in demos and development; its profile's cold start (20 s for an 8B model) would
 * make a demo's first request wait that long, so the stand-in starts in 3 s. A real engine's
 * `actuator.command` has whatever cold start it has.
 */
export const EMULATED_COLD_START_MS = 3000;

/** Circuit-breaker settings of every endpoint. */
export interface BreakerPlan {
  readonly failureThreshold: number;
  readonly openMs: number;
}

/** The breaker settings of a config that sets none (the schema's defaults). */
export const DEFAULT_BREAKER: BreakerPlan = (() => {
  const h = healthSchema.parse({});
  return { failureThreshold: h.failureThreshold, openMs: h.openMs };
})();

/** An autoscaled pool's replicas, as the controller and the replicas' hosts see them. */
export interface ScalingPlan {
  readonly spec: AutoscalerSpec;
  readonly policy: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** Per-replica gateway concurrency limit. */
  readonly maxConcurrency: number;
  /**
   * The cold start every replica has when it is an emulated engine (the `emulated` actuator, the
   * `process` actuator's default command) or `coldStartMs` is given; null: each type's profile's own.
   */
  readonly replicaColdStartMs: number | null;
  /** The block's identity: a reload with an equal one keeps the scaler and its replicas. */
  readonly key: string;
}

/** What one pool runs. */
export interface PoolPlan {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly routing: RoutingProfileSpec;
  readonly endpoints: readonly { readonly config: EndpointConfig; readonly info: EndpointInfo }[];
  readonly queue: QueuePlan;
  readonly scaling: ScalingPlan | null;
  readonly breaker: BreakerPlan;
}

/** Every pool of `cfg`, in config order. Throws on an unknown routing profile name. */
export function compilePools(cfg: Readonly<SwitchyardConfig>): PoolPlan[] {
  const breaker = { failureThreshold: cfg.health.failureThreshold, openMs: cfg.health.openMs };
  return Object.entries(cfg.pools).map(([name, def]) => ({
    name,
    aliases: def.aliases,
    routing: routingSpec(def.routing ?? cfg.router.profile, cfg.router.profiles),
    endpoints: def.endpoints.map((config) => ({ config, info: endpointInfo(config) })),
    queue: queuePlan(schedulingFor(cfg, name)),
    scaling: def.scaling === undefined ? null : scalingPlan(def.scaling),
    breaker,
  }));
}

/** The routing view of an endpoint's config: engine profile, weight, labels and capacity gates. */
export function endpointInfo(ep: EndpointConfig): EndpointInfo {
  const info: EndpointInfo = {
    profile: ep.profile === undefined ? null : getProfile(ep.profile),
    weight: ep.weight,
    labels: ep.labels,
  };
  const gate = endpointGate(ep);
  return gate === null ? info : { ...info, gate };
}

function endpointGate(ep: {
  maxEngineWaiting?: number | undefined;
  maxKvUsage?: number | undefined;
  maxPrefilling?: number | undefined;
}): EndpointGate | null {
  if (ep.maxEngineWaiting === undefined && ep.maxKvUsage === undefined && ep.maxPrefilling === undefined)
    return null;
  return {
    maxEngineWaiting: ep.maxEngineWaiting ?? null,
    maxKvUsage: ep.maxKvUsage ?? null,
    ...(ep.maxPrefilling !== undefined ? { maxPrefilling: ep.maxPrefilling } : {}),
  };
}

/** A pool's queue from its effective scheduling config. */
export function queuePlan(cfg: SchedulingConfig): QueuePlan {
  return {
    options: schedulerOptions(cfg),
    ttftDeadlineMs: cfg.ttftDeadlineMs,
    defaultPriority: cfg.defaultPriority,
    key: JSON.stringify(cfg),
  };
}

/**
 * The scheduler options of a pool's effective scheduling config. In the config a class's
 * `maxWaitMs` replaces the pool-wide one for that class (batch may wait longer than interactive
 * requests); the scheduler applies a class bound besides the pool-wide one, so the pool-wide bound
 * given to it is the longest of them and every class gets its own.
 */
export function schedulerOptions(cfg: SchedulingConfig): SchedulerOptions {
  const waitMs = (c: PriorityClass): number => cfg.perClass[c]?.maxWaitMs ?? cfg.maxWaitMs;
  const perClass: Partial<Record<PriorityClass, { maxLength?: number; maxWaitMs: number }>> = {};
  for (const c of PRIORITY_CLASSES) {
    const maxLength = cfg.perClass[c]?.maxQueueLength;
    perClass[c] = maxLength === undefined ? { maxWaitMs: waitMs(c) } : { maxLength, maxWaitMs: waitMs(c) };
  }
  return {
    order: cfg.queue,
    bounds: {
      maxLength: cfg.maxQueueLength,
      maxWaitMs: Math.max(...PRIORITY_CLASSES.map(waitMs)),
      perClass,
    },
    batchHeadroom: cfg.batchHeadroom,
    batchOnlyWithoutPrefill: cfg.batchOnlyWithoutPrefill,
    agingMs: cfg.agingMs,
    dropLate: cfg.dropLate,
    tenantWeights: cfg.tenantWeights,
  };
}

/** An autoscaled pool's plan from its `scaling` block. */
export function scalingPlan(sc: ScalingConfig): ScalingPlan {
  const emulated =
    sc.actuator.kind === 'emulated' || (sc.actuator.kind === 'process' && sc.actuator.command === undefined);
  const replicaColdStartMs = sc.coldStartMs ?? (emulated ? EMULATED_COLD_START_MS : null);
  const catalog = sc.catalog as InstanceType[];
  return {
    spec: {
      minReplicas: sc.minReplicas,
      maxReplicas: sc.maxReplicas,
      catalog,
      maxSpotShare: sc.maxSpotShare,
      maxSpotSharePerType: sc.maxSpotSharePerType,
      replicaRps: sc.replicaRps,
      // The reference type's cold start, as the policies plan with it.
      coldStartMs: replicaColdStartMs ?? getProfile(catalog[0]!.profile).coldStartMs,
      slo: sc.slo,
    },
    policy: sc.policy,
    options: sc.options,
    maxConcurrency: sc.maxConcurrency,
    replicaColdStartMs,
    key: JSON.stringify(sc),
  };
}
