/**
 * @module engine-model/profiles
 * Calibrated engine profiles: one (model, GPU, TP) pair each, vLLM V1 defaults for the scheduler.
 * Step-time constants: Vidur GEMM profiles (microsoft/vidur `data/profiling/compute/`), decode
 * attention at the HBM floor (KV bytes per token over peak bandwidth), and per-step, per-request
 * and API-server costs fitted on real vLLM v0.15.1 runs (fidelity/, `npm run bench:fit-engine`;
 * the rest from BLIS, inference-sim/inference-sim `defaults.yaml`); KV capacity at vLLM's
 * gpu_memory_utilization 0.9, block 16; batch limits from vLLM V1 defaults
 * (`vllm/engine/arg_utils.py`); cold starts from vLLM PR #11005. docs/engine-model.md cites every
 * source.
 */
import { SwitchyardError } from '../core/errors.js';
import { loadedProfile, loadedProfileNames } from './profile-registry.js';
import type { EngineProfile } from './types.js';

const BLOCK = 16;
/** BLIS β6: 4.42 µs per request in the batch. */
const T_REQ = 0.0044;
/** vLLM V1 on ≥70 GiB GPUs other than A100: API-server token budget and running-request cap. */
const H100_BATCH = { maxNumSeqs: 1024, maxNumBatchedTokens: 8192 } as const;
/** vLLM V1 on A100 (and smaller GPUs). */
const A100_BATCH = { maxNumSeqs: 256, maxNumBatchedTokens: 2048 } as const;
/** Assumed on-demand prices per GPU-hour, USD; set real ones per deployment in config. */
const H100_USD_H = 3.0;
const A100_USD_H = 1.8;
const TP1 = { tp: 1, tpCommMs: 0, tpCommMsPer1kTokens: 0 } as const;

const kvBlocks = (tokens: number): number => Math.floor(tokens / BLOCK);

const list: EngineProfile[] = [
  {
    name: 'llama3.1-8b-h100',
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    gpu: 'H100-80G-SXM',
    ...TP1,
    weightsMs: 6.5,
    gemmMsPer1kTokens: 22.9,
    prefillAttnMsPerMPairs: 1.06,
    decodeAttnMsPer1kCtx: 0.0397,
    stepOverheadMs: 0.68,
    perRequestMs: 0.0136,
    requestOverheadMs: 15.3,
    ...H100_BATCH,
    blockSize: BLOCK,
    numKvBlocks: kvBlocks(441_000),
    maxModelLen: 131_072,
    coldStartMs: 20_000,
    costPerHourUsd: H100_USD_H,
  },
  {
    name: 'qwen2.5-7b-h100',
    model: 'Qwen/Qwen2.5-7B-Instruct',
    gpu: 'H100-80G-SXM',
    ...TP1,
    weightsMs: 5.6,
    gemmMsPer1kTokens: 21.5,
    prefillAttnMsPerMPairs: 0.81,
    decodeAttnMsPer1kCtx: 0.0171,
    stepOverheadMs: 1.0,
    perRequestMs: T_REQ,
    requestOverheadMs: 18.2,
    ...H100_BATCH,
    blockSize: BLOCK,
    numKvBlocks: kvBlocks(1_020_000),
    maxModelLen: 32_768,
    coldStartMs: 20_000,
    costPerHourUsd: H100_USD_H,
  },
  {
    name: 'qwen2.5-1.5b-h100',
    model: 'Qwen/Qwen2.5-1.5B-Instruct',
    gpu: 'H100-80G-SXM',
    ...TP1,
    weightsMs: 1.3,
    gemmMsPer1kTokens: 6,
    prefillAttnMsPerMPairs: 0.35,
    decodeAttnMsPer1kCtx: 0.0086,
    stepOverheadMs: 0.68,
    perRequestMs: T_REQ,
    requestOverheadMs: 15.3,
    ...H100_BATCH,
    blockSize: BLOCK,
    numKvBlocks: kvBlocks(2_470_000),
    maxModelLen: 32_768,
    coldStartMs: 12_000,
    costPerHourUsd: H100_USD_H,
  },
  {
    name: 'qwen2.5-0.5b-h100',
    model: 'Qwen/Qwen2.5-0.5B-Instruct',
    gpu: 'H100-80G-SXM',
    ...TP1,
    weightsMs: 0.42,
    gemmMsPer1kTokens: 2.5,
    prefillAttnMsPerMPairs: 0.17,
    decodeAttnMsPer1kCtx: 0.0037,
    stepOverheadMs: 0.68,
    perRequestMs: T_REQ,
    requestOverheadMs: 15.3,
    ...H100_BATCH,
    blockSize: BLOCK,
    numKvBlocks: kvBlocks(5_900_000),
    maxModelLen: 32_768,
    coldStartMs: 10_000,
    costPerHourUsd: H100_USD_H,
  },
  {
    name: 'llama3.1-8b-a100',
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    gpu: 'A100-80G-SXM',
    ...TP1,
    weightsMs: 10.4,
    gemmMsPer1kTokens: 67.9,
    prefillAttnMsPerMPairs: 3.36,
    decodeAttnMsPer1kCtx: 0.0642,
    stepOverheadMs: 1.36,
    perRequestMs: 0.0457,
    requestOverheadMs: 23.6,
    ...A100_BATCH,
    blockSize: BLOCK,
    numKvBlocks: kvBlocks(441_000),
    maxModelLen: 131_072,
    coldStartMs: 22_000,
    costPerHourUsd: A100_USD_H,
  },
  {
    name: 'llama3-70b-h100-tp4',
    model: 'meta-llama/Llama-3.1-70B-Instruct',
    gpu: 'H100-80G-SXM',
    tp: 4,
    tpCommMs: 1.5,
    tpCommMsPer1kTokens: 11.7,
    weightsMs: 14.4,
    gemmMsPer1kTokens: 56.0,
    prefillAttnMsPerMPairs: 1.32,
    decodeAttnMsPer1kCtx: 0.0245,
    stepOverheadMs: 0.14,
    perRequestMs: T_REQ,
    requestOverheadMs: 29.3,
    ...H100_BATCH,
    blockSize: BLOCK,
    numKvBlocks: kvBlocks(471_000),
    maxModelLen: 131_072,
    coldStartMs: 60_000,
    costPerHourUsd: 4 * H100_USD_H,
  },
];

/** Every shipped profile by name. */
export const ENGINE_PROFILES: Readonly<Record<string, EngineProfile>> = Object.freeze(
  Object.fromEntries(list.map((p) => [p.name, Object.freeze(p)])),
);

/** The profile called `name`, shipped or loaded from a file; an error that lists the known ones otherwise. */
export function getProfile(name: string): EngineProfile {
  const p = ENGINE_PROFILES[name] ?? loadedProfile(name)?.profile;
  if (p === undefined) {
    throw new SwitchyardError(
      'SWY_ERR_INVALID_REQUEST',
      `unknown engine profile '${name}'; known: ${[...Object.keys(ENGINE_PROFILES), ...loadedProfileNames()].join(', ')}`,
    );
  }
  return p;
}

/**
 * One replica with `n`× the compute, memory bandwidth and KV cache of `p`: every per-token and
 * per-request cost divided by n, every capacity limit multiplied by n, the fixed per-step overhead
 * unchanged. It is the routing bound of an n-replica fleet — perfect balance (one queue) and perfect
 * cache sharing (one cache) — and runs each single prompt n× faster besides.
 */
export function pooledProfile(p: EngineProfile, n: number): EngineProfile {
  return {
    ...p,
    name: `${p.name}-pooled-x${n}`,
    weightsMs: p.weightsMs / n,
    gemmMsPer1kTokens: p.gemmMsPer1kTokens / n,
    prefillAttnMsPerMPairs: p.prefillAttnMsPerMPairs / n,
    decodeAttnMsPer1kCtx: p.decodeAttnMsPer1kCtx / n,
    perRequestMs: p.perRequestMs / n,
    tpCommMs: p.tpCommMs / n,
    tpCommMsPer1kTokens: p.tpCommMsPer1kTokens / n,
    maxNumSeqs: p.maxNumSeqs * n,
    maxNumBatchedTokens: p.maxNumBatchedTokens * n,
    numKvBlocks: p.numKvBlocks * n,
    costPerHourUsd: p.costPerHourUsd * n,
  };
}
