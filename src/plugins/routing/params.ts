/**
 * @module plugins/routing/params
 * Reading plugin parameters from config at construction time: a missing key takes its default, a
 * wrong one throws a message that names the plugin, the key and what a valid value is.
 */

/** A finite number within [min, max], or `fallback` when absent. */
export function numberParam(
  plugin: string,
  params: Readonly<Record<string, unknown>>,
  key: string,
  fallback: number,
  min: number,
  max = Number.POSITIVE_INFINITY,
): number {
  const v = params[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    const range = max === Number.POSITIVE_INFINITY ? `at least ${min}` : `in [${min}, ${max}]`;
    throw new Error(`${plugin}: ${key} must be a number ${range}`);
  }
  return v;
}

/** One of `allowed`, or `allowed[0]` when absent. */
export function enumParam<T extends string>(
  plugin: string,
  params: Readonly<Record<string, unknown>>,
  key: string,
  allowed: readonly [T, ...T[]],
): T {
  const v = params[key];
  if (v === undefined) return allowed[0];
  if (!(allowed as readonly unknown[]).includes(v)) {
    throw new Error(`${plugin}: ${key} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}
