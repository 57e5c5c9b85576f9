/**
 * @module cli/sim-fleet
 * The simulated fleet `switchyard sim` builds from --config or --profile, and the --profile flags
 * that reshape its replicas.
 */
import { loadConfigFile } from '../config/load.js';
import { getProfile, pooledProfile } from '../engine-model/profiles.js';
import type { RoutingProfileSpec } from '../router/router.js';
import { simFleetFromConfig } from '../sim/from-config.js';
import type { SimEndpointSpec, SimPoolSpec } from '../sim/simulator.js';
import { UsageError, type Values, intOpt, positiveIntOpt } from './sim-options.js';

/** The pools of a --config fleet (with its router profile), or of N --profile replicas. */
export function fleet(
  config: string | undefined,
  profile: string | undefined,
  replicas: string | undefined,
  added: string | undefined,
  concurrency: number | undefined,
  configQueues: boolean,
): {
  pools: SimPoolSpec[];
  configRouting?: string | RoutingProfileSpec;
  configProfiles?: Readonly<Record<string, RoutingProfileSpec>>;
} {
  if (added !== undefined && config !== undefined)
    throw new UsageError('--add-replicas goes with --profile, not --config');
  if (config !== undefined) {
    const cfg = loadConfigFile(config);
    const { pools } = simFleetFromConfig(cfg, { concurrency, queues: configQueues });
    if (pools.length === 0) throw new UsageError(`${config}: no pool has emulated endpoints to simulate`);
    return { pools, configRouting: cfg.router.profile, configProfiles: cfg.router.profiles };
  }
  const prof = getProfile(profile ?? 'qwen2.5-7b-h100');
  const n = intOpt(replicas, 'replicas') ?? 4;
  const limit = concurrency ?? 1 << 30;
  const endpoints: SimEndpointSpec[] = Array.from({ length: n }, (_, i) => ({
    name: `replica-${i}`,
    profile: prof,
    maxConcurrency: limit,
  }));
  const m = added === undefined ? null : /^(\d+)@(\d+(?:\.\d+)?)$/.exec(added);
  if (added !== undefined && m === null)
    throw new UsageError(`--add-replicas must be N@SECONDS, got '${added}'`);
  if (m) {
    for (let i = 0; i < Number(m[1]); i++) {
      endpoints.push({
        name: `replica-${n + i}`,
        profile: prof,
        maxConcurrency: limit,
        startAtMs: Number(m[2]) * 1000,
      });
    }
  }
  return { pools: [{ name: prof.model, endpoints }] };
}

/**
 * The --profile fleet flags that reshape its replicas: --pooled (each replica N× one, judged
 * against the unpooled profile's SLO) and the --max-engine-waiting / --max-prefilling gates.
 */
export function profileFlags(
  values: Values,
  pools: SimPoolSpec[],
): { pools: SimPoolSpec[]; referenceProfile?: SimEndpointSpec['profile'] } {
  const n = positiveIntOpt(values.pooled, 'pooled');
  const waiting = positiveIntOpt(values['max-engine-waiting'], 'max-engine-waiting');
  const prefilling = positiveIntOpt(values['max-prefilling'], 'max-prefilling');
  if (n === undefined && waiting === undefined && prefilling === undefined) return { pools };
  if (values.config !== undefined)
    throw new UsageError(
      '--pooled, --max-engine-waiting and --max-prefilling go with --profile (a config sets its endpoints)',
    );
  const gate =
    waiting !== undefined || prefilling !== undefined
      ? {
          gate: {
            maxEngineWaiting: waiting ?? null,
            maxKvUsage: null,
            ...(prefilling !== undefined ? { maxPrefilling: prefilling } : {}),
          },
        }
      : {};
  const base = pools[0]!.endpoints[0]!.profile;
  const profile = n === undefined ? base : pooledProfile(base, n);
  return {
    pools: pools.map((p) => ({
      ...p,
      endpoints: p.endpoints.map((e) => ({ ...e, profile, ...gate })),
    })),
    ...(n !== undefined ? { referenceProfile: base } : {}),
  };
}
