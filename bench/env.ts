/**
 * @module bench/env
 * Benchmark knobs come from the environment; a bad value stops the bench with its name.
 */

/** A non-negative number from `process.env[name]`, or `dflt` when unset or empty. */
export function envNum(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
}
