/**
 * @module traces/block-hashes
 * Turns a trace's prefix block ids (e.g. Mooncake's, one per 512 tokens) into the engine's chained
 * block hashes (one per `blockSize` tokens), so the engine model's prefix cache sees exactly the
 * sharing the trace records and nothing more.
 */
import { mix32 } from '../core/hash.js';
import type { TraceRecord } from './record.js';

const CHAIN_SEED = 0x5eed1234;

/**
 * Chained hashes of the full `blockSize`-token blocks of `r`'s prompt that its ids cover. Engine
 * block k (tokens [k·bs, (k+1)·bs)) hashes the chain so far with the id of the last trace block it
 * touches, so two prompts share engine block k exactly when they share every trace id up to there.
 * Undefined when the record has no ids: no cache hit may be invented.
 */
export function engineBlockHashes(r: TraceRecord, blockSize: number): readonly number[] | undefined {
  if (r.engineBlocks !== undefined && r.engineBlocks.blockSize === blockSize) return r.engineBlocks.hashes;
  const ids = r.hashIds;
  const h = r.hashBlockTokens;
  if (ids === undefined || h === undefined || ids.length === 0) return undefined;
  const out: number[] = [];
  const full = Math.floor(r.inputTokens / blockSize);
  let chain = CHAIN_SEED;
  for (let k = 0; k < full; k++) {
    const i = Math.floor(((k + 1) * blockSize - 1) / h);
    if (i >= ids.length) break;
    chain = mix32(mix32(chain, ids[i]! >>> 0), k);
    out.push(chain);
  }
  return out;
}

/**
 * Chained hashes of the trace's own prefix blocks (one per {@link TraceRecord.hashBlockTokens}
 * tokens): the router's prefix signal in the simulator. Only blocks the prompt fills completely
 * count, as only full blocks can be shared. Empty when the record has no ids. Recorded traffic
 * carries the gateway's own signal instead ({@link TraceRecord.prefixHashes}).
 */
export function routingBlockHashes(r: TraceRecord): readonly number[] {
  if (r.prefixHashes !== undefined) return r.prefixHashes;
  const ids = r.hashIds;
  const h = r.hashBlockTokens;
  if (ids === undefined || h === undefined) return [];
  const full = Math.min(ids.length, Math.floor(r.inputTokens / h));
  const out = new Array<number>(full);
  let chain = CHAIN_SEED;
  for (let i = 0; i < full; i++) {
    chain = mix32(chain, ids[i]! >>> 0);
    out[i] = chain;
  }
  return out;
}
