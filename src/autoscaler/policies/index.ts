/**
 * @module autoscaler/policies
 * Scaling policies by name, as the config's `scaling.policy` and the simulator's `--autoscale`
 * name them. Options are each policy's own (its module documents them and their defaults); unknown
 * names are an error listing the known ones.
 */
import type { ScalingPolicy } from '../types.js';
import { createDynamoLoad, type DynamoLoadOptions } from './dynamo-load.js';
import { createForecast, type ForecastOptions } from './forecast.js';
import { createHpa, type HpaOptions } from './hpa.js';
import { createKpa, type KpaOptions } from './kpa.js';
import { createOracle, type OracleOptions } from './oracle.js';
import { createRayServe, type RayServeOptions } from './ray-serve.js';
import { createSkyServe, type SkyServeOptions } from './skyserve.js';
import { createSlo, type SloOptions } from './slo.js';
import { type ScalingPolicyName, SCALING_POLICY_NAMES } from './names.js';
import { createStatic } from './static.js';

export { LIVE_POLICIES, SCALING_POLICY_NAMES, type ScalingPolicyName } from './names.js';

/** What some policies need besides their options. */
export interface PolicyContext {
  /** `static`: the replica count when its options give none. */
  readonly replicas?: number;
  /** `oracle`: arrivals in [fromMs, toMs) of the workload being replayed. */
  readonly arrivals?: OracleOptions['arrivals'];
}

export function createPolicy(
  name: string,
  options: Readonly<Record<string, unknown>> = {},
  ctx: PolicyContext = {},
): ScalingPolicy {
  const o = options as never;
  switch (name as ScalingPolicyName) {
    case 'kpa':
      return createKpa(o as Partial<KpaOptions>);
    case 'hpa':
      return createHpa(o as Partial<HpaOptions>);
    case 'forecast':
      return createForecast(o as ForecastOptions);
    case 'slo':
      return createSlo(o as SloOptions);
    case 'static': {
      const replicas = (options.replicas as number | undefined) ?? ctx.replicas;
      if (replicas === undefined) throw new Error('static scaling needs a replica count');
      return createStatic({ ...(options as object), replicas });
    }
    case 'ray-serve':
      return createRayServe(o as RayServeOptions);
    case 'skyserve':
      return createSkyServe(o as SkyServeOptions);
    case 'dynamo-load':
      return createDynamoLoad(o as DynamoLoadOptions);
    case 'oracle':
      if (ctx.arrivals === undefined)
        throw new Error('the oracle policy needs the future arrivals (simulator only)');
      return createOracle({ ...(options as object), arrivals: ctx.arrivals });
    default:
      throw new Error(`unknown scaling policy '${name}'; known: ${SCALING_POLICY_NAMES.join(', ')}`);
  }
}
