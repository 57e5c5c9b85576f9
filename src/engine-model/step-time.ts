/**
 * @module engine-model/step-time
 * The calibrated cost of one engine step (one forward pass of a continuous batch). Pure arithmetic
 * over the batch's shape, shared by the engine model and, later, the capacity planner.
 * Formula and constants: docs/engine-model.md.
 */
import type { EngineProfile } from './types.js';

/** The shape of one step's batch. */
export interface BatchShape {
  /** Requests in the batch (B). */
  requests: number;
  /** Tokens scheduled in the step (N): prefill-chunk tokens plus one per decoding request. */
  tokens: number;
  /** Σ over prefill chunks of n·(c + n/2): query-key pairs of prefill attention. */
  prefillPairs: number;
  /** Σ over decoding requests of their context length (KV tokens read). */
  decodeContext: number;
}

/** Milliseconds one step with batch `s` takes on `p`. */
export function stepTimeMs(p: EngineProfile, s: BatchShape): number {
  const gemm = (p.gemmMsPer1kTokens * s.tokens) / 1000;
  // (W^1.5 + g^1.5)^(2/3), with sqrt and cbrt: several times cheaper than three Math.pow calls, and
  // the cost model of the default routing policy evaluates it for every candidate of every request.
  const sum = p.weightsMs * Math.sqrt(p.weightsMs) + gemm * Math.sqrt(gemm);
  const linear = Math.cbrt(sum * sum);
  const tpComm = p.tp > 1 ? p.tpCommMs + (p.tpCommMsPer1kTokens * s.tokens) / 1000 : 0;
  return (
    p.stepOverheadMs +
    p.perRequestMs * s.requests +
    linear +
    (p.prefillAttnMsPerMPairs * s.prefillPairs) / 1e6 +
    (p.decodeAttnMsPer1kCtx * s.decodeContext) / 1e3 +
    tpComm
  );
}

/** Query-key pairs of a prefill chunk of `n` new tokens after `c` tokens already in KV. */
export function prefillPairs(n: number, c: number): number {
  return n * (c + n / 2);
}

/**
 * {@link stepTimeMs} split by the constants it scales with: `out[0]` the compute-bound part (GEMM
 * per token `b`, prefill attention `C_pf`), `out[1]` the rest (weights `W`, overheads, decode
 * attention, TP collectives). `T_lin` is split by Euler's theorem for homogeneous functions: its
 * share of `W` is `W·∂T_lin/∂W`. The parts sum to the step time; scaling the compute constants by
 * `a` and the rest by `d` changes it by `(a − 1)·out[0] + (d − 1)·out[1]` to first order.
 */
export function stepTimeParts(p: EngineProfile, s: BatchShape, out: Float64Array): void {
  const gemm = (p.gemmMsPer1kTokens * s.tokens) / 1000;
  const w = p.weightsMs * Math.sqrt(p.weightsMs);
  const g = gemm * Math.sqrt(gemm);
  const linear = Math.cbrt((w + g) * (w + g));
  const gemmShare = w + g > 0 ? (linear * g) / (w + g) : 0;
  const compute = gemmShare + (p.prefillAttnMsPerMPairs * s.prefillPairs) / 1e6;
  out[0] = compute;
  out[1] = stepTimeMs(p, s) - compute;
}
