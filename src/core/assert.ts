/**
 * @module core/assert
 * Programmer-error checks. Operating errors (bad input, upstream failures) are handled with
 * {@link SwitchyardError}; a failed assertion means a bug and should crash tests and the simulator.
 */

export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** Throws {@link AssertionError} when `cond` is false. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new AssertionError(message);
}
