/**
 * @module cli/sim-autoscale
 * `switchyard sim --autoscale`: turns the --profile pool into an autoscaled one, and gives
 * autoscaled pools with spot types a seeded market.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { AutoscalerSpec } from '../autoscaler/controller.js';
import { SCALING_POLICY_NAMES, createPolicy } from '../autoscaler/policies/index.js';
import { SpotMarket } from '../autoscaler/spot.js';
import type { InstanceType } from '../autoscaler/types.js';
import { instanceTypeSchema } from '../config/schema.js';
import { SeededRng } from '../core/rng.js';
import { getProfile } from '../engine-model/profiles.js';
import { arrivalCounter } from '../sim/arrivals.js';
import { capacitySearch } from '../sim/capacity.js';
import { type SimEndpointSpec, type SimOptions, type SimPoolSpec, Simulation } from '../sim/simulator.js';
import type { TraceRecord } from '../traces/record.js';
import { reshape } from '../traces/transform.js';
import { UsageError, type Values, intOpt, jsonObjectOpt, numOpt, positiveIntOpt } from './sim-options.js';
import type { Setup } from './sim-setup.js';

/** The flags that only mean something with --autoscale NAME. */
const AUTOSCALE_FLAGS = [
  'min-replicas',
  'max-replicas',
  'initial-replicas',
  'catalog',
  'max-spot-share',
  'max-spot-share-per-type',
  'replica-rps',
  'autoscale-options',
] as const;

/**
 * `--autoscale NAME`: the --profile pool becomes an autoscaled one (the gateway's controller,
 * planner and policy on the virtual clock). Spot types in the catalog get a seeded market.
 */
export async function withAutoscaling(setup: Setup): Promise<Setup> {
  const v = setup.values;
  const name = v.autoscale;
  if (name === undefined) {
    const stray = AUTOSCALE_FLAGS.find((f) => v[f] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} goes with --autoscale NAME`);
    return withSpotMarkets(setup);
  }
  checkAutoscaleFleet(v, name);
  const pool = setup.base.pools[0]!;
  const profile = pool.endpoints[0]!.profile;
  const bounds = scalingBounds(v, profile);
  const policyOptions = jsonObjectOpt(v['autoscale-options'], 'autoscale-options');
  const replicaRps = numOpt(v['replica-rps'], 'replica-rps') ?? (await measureReplicaRps(setup, profile));
  let arrivals: ((fromMs: number, toMs: number) => number) | undefined;
  if (name === 'oracle') {
    arrivals = await arrivalCounter((await setup.open()).records);
  }
  const slo = setup.base.slo;
  const autoscaler: AutoscalerSpec = {
    ...bounds,
    replicaRps,
    coldStartMs: getProfile(bounds.catalog[0]!.profile).coldStartMs,
    slo: { ttftMs: slo?.ttftMs ?? 2000, tpotMs: slo?.tpotMs ?? 100, quantile: 0.9 },
  };
  const { minReplicas: min, maxReplicas: max } = bounds;
  const scaled: SimPoolSpec = {
    name: pool.name,
    endpoints: [],
    scaling: {
      policy: scalingPolicy(name, policyOptions, { replicas: max, ...(arrivals ? { arrivals } : {}) }),
      autoscaler,
      maxConcurrency: pool.endpoints[0]!.maxConcurrency,
      ...(pool.endpoints[0]!.gate ? { gate: pool.endpoints[0]!.gate } : {}),
      initialReplicas: intOpt(v['initial-replicas'], 'initial-replicas') ?? min,
    },
  };
  process.stderr.write(
    `autoscaling ${pool.name} with ${name}: ${min}–${max} replicas, one replica sustains ${replicaRps.toFixed(3)} req/s\n`,
  );
  return withSpotMarkets({ ...setup, base: { ...setup.base, pools: [scaled] } });
}

/** --autoscale takes one --profile pool as it is, and a policy the gateway knows. */
function checkAutoscaleFleet(v: Values, name: string): void {
  if (v.config !== undefined)
    throw new UsageError('--autoscale goes with --profile; with --config, give pools a `scaling` block');
  if (v['add-replicas'] !== undefined) throw new UsageError('--add-replicas and --autoscale do not mix');
  if (v.pooled !== undefined) throw new UsageError('--pooled and --autoscale do not mix');
  if (!(SCALING_POLICY_NAMES as readonly string[]).includes(name))
    throw new UsageError(`unknown --autoscale ${name} (known: ${SCALING_POLICY_NAMES.join(', ')})`);
}

/** The replica bounds, the catalog (default: one on-demand type running the profile) and the spot shares. */
function scalingBounds(
  v: Values,
  profile: SimEndpointSpec['profile'],
): Pick<AutoscalerSpec, 'minReplicas' | 'maxReplicas' | 'catalog' | 'maxSpotShare' | 'maxSpotSharePerType'> {
  const min = intOpt(v['min-replicas'], 'min-replicas') ?? 0;
  const max = positiveIntOpt(v['max-replicas'], 'max-replicas') ?? 16;
  if (max < min) throw new UsageError(`--max-replicas (${max}) is below --min-replicas (${min})`);
  const catalog: InstanceType[] =
    v.catalog === undefined
      ? [
          {
            name: profile.name,
            profile: profile.name,
            capacity: 1,
            onDemandUsdPerHour: profile.costPerHourUsd,
          },
        ]
      : readCatalog(v.catalog);
  const spotShare = numOpt(v['max-spot-share'], 'max-spot-share') ?? 0;
  if (spotShare > 1) throw new UsageError(`--max-spot-share must be in [0, 1], got ${spotShare}`);
  const perType = numOpt(v['max-spot-share-per-type'], 'max-spot-share-per-type') ?? 0.5;
  if (perType > 1) throw new UsageError(`--max-spot-share-per-type must be in [0, 1], got ${perType}`);
  return {
    minReplicas: min,
    maxReplicas: max,
    catalog,
    maxSpotShare: spotShare,
    maxSpotSharePerType: perType,
  };
}

/** Autoscaled pools whose catalog has spot prices get a market that preempts them (seeded). */
function withSpotMarkets(setup: Setup): Setup {
  const pools = setup.base.pools.map((p) => {
    const sc = p.scaling;
    if (sc === undefined || sc.spot !== undefined) return p;
    if (!sc.autoscaler.catalog.some((t) => t.spotUsdPerHour !== undefined)) return p;
    const spot = new SpotMarket(sc.autoscaler.catalog, new SeededRng(setup.base.seed ?? 1));
    return { ...p, scaling: { ...sc, spot } };
  });
  return { ...setup, base: { ...setup.base, pools } };
}

function readCatalog(path: string): InstanceType[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`--catalog ${path}: ${(err as Error).message}`);
  }
  const parsed = instanceTypeSchema.array().min(1).safeParse(raw);
  if (!parsed.success)
    throw new UsageError(
      `--catalog ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data as InstanceType[];
}

/** The SLO capacity (≥ 99 %) of one replica on the trace's first 30 minutes, req/s. */
async function measureReplicaRps(setup: Setup, profile: SimEndpointSpec['profile']): Promise<number> {
  const one: SimOptions = {
    ...setup.base,
    pools: [{ name: 'one', endpoints: [{ name: 'r0', profile, maxConcurrency: 1 << 30 }] }],
    scheduling: undefined,
  };
  const found = await capacitySearch(
    async (k) => {
      const records = reshape((await setup.open()).records, {
        rateScale: k,
        window: { startS: 0, endS: 1800 * k },
      });
      return new Simulation(one).run(retarget(records, 'one'));
    },
    { target: 0.99, start: 1 },
  );
  if (!(found.requests_per_s > 0))
    throw new UsageError('one replica meets the SLO at no rate here; give --replica-rps');
  return found.requests_per_s;
}

async function* retarget(records: AsyncIterable<TraceRecord>, model: string): AsyncGenerator<TraceRecord> {
  for await (const r of records) yield { ...r, model };
}

/** `createPolicy`, with a bad option (a policy's own check) reported as a usage error. */
function scalingPolicy(
  name: string,
  options: Record<string, unknown> | undefined,
  ctx: Parameters<typeof createPolicy>[2],
): ReturnType<typeof createPolicy> {
  try {
    return createPolicy(name, options ?? {}, ctx);
  } catch (err) {
    throw new UsageError(`--autoscale ${name}: ${(err as Error).message}`);
  }
}
