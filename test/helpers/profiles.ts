/**
 * A toy engine profile whose arithmetic is exact: W = 0 and no attention terms, so a step of N tokens
 * takes 1 ms + 0.01 ms·N; blocks of 4 tokens, 64 tokens per step.
 */
import type { EngineProfile } from '../../src/engine-model/types.js';

export const TOY_PROFILE: EngineProfile = {
  name: 'toy',
  model: 'toy',
  gpu: 'none',
  tp: 1,
  tpCommMs: 0,
  tpCommMsPer1kTokens: 0,
  weightsMs: 0,
  gemmMsPer1kTokens: 10,
  prefillAttnMsPerMPairs: 0,
  decodeAttnMsPer1kCtx: 0,
  stepOverheadMs: 1,
  perRequestMs: 0,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 64,
  blockSize: 4,
  numKvBlocks: 1000,
  maxModelLen: 4096,
  coldStartMs: 500,
  costPerHourUsd: 1,
};
