/**
 * @module autoscaler/policies/names
 * The scaling policies' names, with no code behind them, in one place for the config schema, the
 * policy factory and the simulator's command line.
 */

/** Policies a gateway can run. */
export const LIVE_POLICIES = [
  'kpa',
  'hpa',
  'forecast',
  'slo',
  'static',
  'ray-serve',
  'skyserve',
  'dynamo-load',
] as const;
/** Every policy; `oracle` knows the future, so only the simulator can run it. */
export const SCALING_POLICY_NAMES = [...LIVE_POLICIES, 'oracle'] as const;
export type ScalingPolicyName = (typeof SCALING_POLICY_NAMES)[number];
