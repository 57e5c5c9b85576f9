/**
 * @module autoscaler/policies
 * Scaling policies by name, as the config's `scaling.policy` and the simulator's `--autoscale`
 * name them. Options are each policy's own: its module documents them and their defaults and
 * declares their strict schema, which {@link createPolicy} and the config check. Unknown names are an
 * error listing the known ones.
 */
import type { z } from 'zod';
import { describeIssues } from '../../core/path.js';
import type { ScalingPolicy } from '../types.js';
import { createDynamoLoad, DYNAMO_LOAD_OPTIONS, type DynamoLoadOptions } from './dynamo-load.js';
import { createForecast, FORECAST_OPTIONS, type ForecastOptions } from './forecast.js';
import { createHpa, HPA_OPTIONS, type HpaOptions } from './hpa.js';
import { createKpa, KPA_OPTIONS, type KpaOptions } from './kpa.js';
import { createOracle, ORACLE_OPTIONS, type OracleOptions } from './oracle.js';
import { createRayServe, RAY_SERVE_OPTIONS, type RayServeOptions } from './ray-serve.js';
import { createSkyServe, SKYSERVE_OPTIONS, type SkyServeOptions } from './skyserve.js';
import { createSlo, SLO_OPTIONS, type SloOptions } from './slo.js';
import { type ScalingPolicyName, SCALING_POLICY_NAMES } from './names.js';
import { createStatic, STATIC_OPTIONS, type StaticOptions } from './static.js';

export { LIVE_POLICIES, SCALING_POLICY_NAMES, type ScalingPolicyName } from './names.js';

/** What some policies need besides their options. */
export interface PolicyContext {
  /** `static`: the replica count when its options give none. */
  readonly replicas?: number;
  /** `oracle`: arrivals in [fromMs, toMs) of the workload being replayed. */
  readonly arrivals?: OracleOptions['arrivals'];
}

/** Each policy's options schema: strict, so a misspelt or out-of-range option is an error naming it. */
export const POLICY_OPTIONS: Readonly<Record<ScalingPolicyName, z.ZodType<object>>> = {
  kpa: KPA_OPTIONS,
  hpa: HPA_OPTIONS,
  forecast: FORECAST_OPTIONS,
  slo: SLO_OPTIONS,
  static: STATIC_OPTIONS,
  'ray-serve': RAY_SERVE_OPTIONS,
  skyserve: SKYSERVE_OPTIONS,
  'dynamo-load': DYNAMO_LOAD_OPTIONS,
  oracle: ORACLE_OPTIONS,
};

/**
 * The policy `name` with `options`, validated by its schema first: a bad option throws
 * `<policy>: options.<key>: <why>` rather than an assertion deep in the policy.
 */
export function createPolicy(
  name: string,
  options: Readonly<Record<string, unknown>> = {},
  ctx: PolicyContext = {},
): ScalingPolicy {
  const schema = POLICY_OPTIONS[name as ScalingPolicyName];
  if (schema === undefined) {
    throw new Error(`unknown scaling policy '${name}'; known: ${SCALING_POLICY_NAMES.join(', ')}`);
  }
  const given =
    name === 'static' && ctx.replicas !== undefined ? { replicas: ctx.replicas, ...options } : options;
  const parsed = schema.safeParse(given);
  if (!parsed.success) {
    throw new Error(`${name}: ${describeIssues(parsed.error.issues, ['options']).join('; ')}`);
  }
  const o = parsed.data as never;
  switch (name as ScalingPolicyName) {
    case 'kpa':
      return createKpa(o as Partial<KpaOptions>);
    case 'hpa':
      return createHpa(o as Partial<HpaOptions>);
    case 'forecast':
      return createForecast(o as ForecastOptions);
    case 'slo':
      return createSlo(o as SloOptions);
    case 'static':
      return createStatic(o as StaticOptions);
    case 'ray-serve':
      return createRayServe(o as RayServeOptions);
    case 'skyserve':
      return createSkyServe(o as SkyServeOptions);
    case 'dynamo-load':
      return createDynamoLoad(o as DynamoLoadOptions);
    case 'oracle':
      if (ctx.arrivals === undefined)
        throw new Error('the oracle policy needs the future arrivals (simulator only)');
      return createOracle({ ...(o as object), arrivals: ctx.arrivals });
  }
}
