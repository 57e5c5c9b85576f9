/**
 * @module sim/from-config
 * A gateway config as a simulation: the same compiled pool plans (pool/plan.ts) the gateway runs,
 * with each emulated endpoint as a simulated replica and each autoscaled pool as slots its
 * controller fills. Endpoints of kind `http` (real upstreams) have no engine model to simulate and
 * are left out.
 */
import type { SwitchyardConfig } from '../config/schema.js';
import { getProfile } from '../engine-model/profiles.js';
import { createPolicy } from '../autoscaler/policies/index.js';
import { type BreakerPlan, compilePools } from '../pool/plan.js';
import { routingSpec } from '../router/presets.js';
import type { RoutingProfileSpec } from '../router/router.js';
import type { SimEndpointSpec, SimPoolSpec } from './types.js';

/** What a config gives a simulation. */
export interface ConfigFleet {
  readonly pools: SimPoolSpec[];
  /** The config's default routing profile. */
  readonly routing: RoutingProfileSpec;
  readonly breaker: BreakerPlan;
  /** The gateway's metrics scrape period (its endpoints' views are that fresh). */
  readonly scrapeIntervalMs: number;
  readonly seed: number;
}

/**
 * The pools of `cfg` to simulate. `concurrency` overrides every replica's limit; with `queues`
 * false no pool takes its queue from the config (the caller gives one to all, or none).
 */
export function simFleetFromConfig(
  cfg: Readonly<SwitchyardConfig>,
  opts: { readonly concurrency?: number | undefined; readonly queues: boolean },
): ConfigFleet {
  const pools: SimPoolSpec[] = [];
  for (const plan of compilePools(cfg)) {
    const { name } = plan;
    const endpoints: SimEndpointSpec[] = plan.endpoints.flatMap(({ config: ep, info }) =>
      ep.kind === 'emulated'
        ? [
            {
              name: ep.name,
              profile: getProfile(ep.profile),
              maxConcurrency: opts.concurrency ?? ep.maxConcurrency,
              ...(info.gate !== undefined ? { gate: info.gate } : {}),
            },
          ]
        : [],
    );
    const q = plan.queue;
    const common = {
      name,
      aliases: plan.aliases,
      routing: plan.routing,
      ...(opts.queues
        ? {
            scheduling: {
              ...q.options,
              ttftDeadlineMs: q.ttftDeadlineMs,
              defaultPriority: q.defaultPriority,
            },
          }
        : {}),
    };
    const sc = plan.scaling;
    if (sc === null) {
      if (endpoints.length > 0) pools.push({ ...common, endpoints });
      continue;
    }
    // An autoscaled pool: its replicas come from the autoscaler (its static endpoints are not
    // simulated), and start as the gateway would start them (an emulated engine's cold start).
    const cold = sc.replicaColdStartMs;
    pools.push({
      ...common,
      endpoints: [],
      scaling: {
        policy: createPolicy(sc.policy, sc.options),
        autoscaler: sc.spec,
        maxConcurrency: opts.concurrency ?? sc.maxConcurrency,
        initialReplicas: sc.spec.minReplicas,
        ...(cold === null
          ? {}
          : {
              profiles: Object.fromEntries(
                sc.spec.catalog.map((t) => [t.profile, { ...getProfile(t.profile), coldStartMs: cold }]),
              ),
            }),
      },
    });
  }
  const first = compilePools(cfg)[0];
  return {
    pools,
    routing: routingSpec(cfg.router.profile, cfg.router.profiles),
    breaker: first?.breaker ?? { failureThreshold: cfg.health.failureThreshold, openMs: cfg.health.openMs },
    scrapeIntervalMs: cfg.health.scrapeIntervalMs,
    seed: cfg.router.seed,
  };
}
