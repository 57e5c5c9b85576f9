/**
 * @module sim/mismatch
 * Engines that are not the profile the router believes: each step-time constant of a replica's
 * engine is multiplied by its own factor drawn uniformly from [1 − scale, 1 + scale], independently
 * per replica and per constant, while the router's views keep the nominal profile. It tests how a
 * policy built on the engine model holds up when the model is wrong, as it is for every real
 * deployment: the shipped constants are within 1–25 % of published measurements
 * (docs/engine-model.md), and two GPUs of one type differ by a few percent besides.
 */
import { fnv1a } from '../core/hash.js';
import { SeededRng } from '../core/rng.js';
import type { EngineProfile } from '../engine-model/types.js';

/** A simulation's mismatch between engines and their profiles. */
export interface MismatchSpec {
  /** Largest relative error of one constant, in [0, 1): 0.3 = each within ±30 %. */
  readonly scale: number;
  /** Seed of the draws (default 1); the same seed gives every replica the same engine. */
  readonly seed?: number;
}

/** The step-time constants perturbed (the terms of engine-model/step-time.ts). */
export const PERTURBED_TERMS = [
  'weightsMs',
  'gemmMsPer1kTokens',
  'prefillAttnMsPerMPairs',
  'decodeAttnMsPer1kCtx',
  'stepOverheadMs',
  'perRequestMs',
  'tpCommMs',
  'tpCommMsPer1kTokens',
] as const satisfies readonly (keyof EngineProfile)[];

/**
 * The engine replica `replica` really runs when the router believes `p`: a function of the seed
 * and the replica's name only, so the draw does not depend on the order replicas are created in.
 */
export function perturbProfile(p: EngineProfile, replica: string, m: MismatchSpec): EngineProfile {
  if (!(m.scale >= 0 && m.scale < 1)) throw new Error(`mismatch scale must be in [0, 1), got ${m.scale}`);
  if (m.scale === 0) return p;
  const rng = new SeededRng(fnv1a(replica, fnv1a(String(m.seed ?? 1))));
  const out: { -readonly [K in keyof EngineProfile]: EngineProfile[K] } = { ...p };
  for (const term of PERTURBED_TERMS) out[term] = p[term] * (1 + m.scale * (2 * rng.next() - 1));
  return out;
}
