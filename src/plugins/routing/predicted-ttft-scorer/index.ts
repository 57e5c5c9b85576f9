/**
 * @module plugins/routing/predicted-ttft-scorer
 * The default policy's cost model: for each candidate, the time to first token this request would
 * see there, predicted with the engine model's step time from what the endpoint has queued, what it
 * is decoding, how full its KV cache is, and how much of this prompt it already holds. A prefix hit
 * is worth exactly the prefill it saves, and a queue costs exactly the steps it takes to drain, so
 * cache affinity and load balance are traded in one unit (milliseconds) instead of tuned weights.
 *
 * The model (vLLM V1 scheduling, chunked prefill, FCFS waiting queue):
 *   u      = prompt − cached prefix on the candidate (≥ 1: the last token is always computed)
 *   B      = requests decoding there (the router's count, or the engine's if it reports more)
 *   steps  = ⌈(queued prefill tokens + u) / (max_num_batched_tokens − B)⌉
 *   TTFT   = steps × step_ms(B decodes + a full prefill chunk)
 *          + prefill attention of the queued chunks and of this prompt over its cached prefix
 *          + a wait for a batch slot when B ≥ max_num_seqs
 *          + a wait for KV blocks when the cache cannot hold this prompt beside the running ones
 *          + the delay its first chunk adds to the last prefill queued there (harm to others).
 * Score = (lowest prediction among candidates) / (this candidate's prediction): 1 for the best.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { RoutingContext, RoutingRequest, Scorer } from '../../../framework/routing.js';
import { ENGINE_PROFILES } from '../../../engine-model/profiles.js';
import { prefillPairs, stepTimeMs } from '../../../engine-model/step-time.js';
import type { EngineProfile } from '../../../engine-model/types.js';

export const PREDICTED_TTFT_SCORER = 'predicted-ttft-scorer';

/** Assumed for endpoints without an engine profile (provider APIs): an 8B model on one H100. */
const FALLBACK_PROFILE: EngineProfile = ENGINE_PROFILES['llama3.1-8b-h100']!;

export class PredictedTtftScorer implements Scorer {
  readonly type = PREDICTED_TTFT_SCORER;
  private predicted = new Float64Array(64);

  constructor(readonly name: string) {}

  score(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    out: Float64Array,
    ctx: RoutingContext,
  ): void {
    const n = candidates.length;
    if (this.predicted.length < n) this.predicted = new Float64Array(n);
    const pred = this.predicted;
    let best = 0;
    let mostCached = 0;
    for (let i = 0; i < n; i++) {
      pred[i] = predictTtftMs(req, candidates[i]!, ctx);
      if (pred[i]! < pred[best]!) best = i;
      const cached = ctx.pool.cachedPrefixTokens(candidates[i]!.index);
      if (cached > mostCached) mostCached = cached;
    }
    const min = pred[best]!;
    for (let i = 0; i < n; i++) out[i] = pred[i]! > 0 ? min / pred[i]! : 1;
    const bestCached = ctx.pool.cachedPrefixTokens(candidates[best]!.index);
    ctx.reason =
      mostCached === 0 ? 'least-ttft' : bestCached === mostCached ? 'cache-affinity' : 'load-over-cache';
  }
}

/** The predicted TTFT (ms) of `req` on endpoint `v`; see the module comment for the model. */
export function predictTtftMs(req: RoutingRequest, v: EndpointView, ctx: RoutingContext): number {
  const p = v.info.profile ?? FALLBACK_PROFILE;
  const load = ctx.pool.load(v.index);
  const cached = Math.min(ctx.pool.cachedPrefixTokens(v.index), req.promptTokensEstimate - 1);
  const u = Math.max(1, req.promptTokensEstimate - Math.max(0, cached));
  const m = v.metrics;
  // Another client's requests show only in the engine's own counts.
  const inEngine = Math.max(load.requests, m === null ? 0 : m.running + m.waiting);
  const decoding = Math.min(p.maxNumSeqs, Math.max(0, inEngine - load.prefilling));
  const budget = Math.max(1, p.maxNumBatchedTokens - decoding);
  const queued = load.prefillTokens + u;
  const steps = Math.ceil(queued / budget);
  const decodeContext = load.requests > 0 ? (load.kvTokens * decoding) / load.requests : 0;
  const step = stepTimeMs(p, {
    requests: decoding + 1,
    tokens: Math.min(p.maxNumBatchedTokens, decoding + queued),
    prefillPairs: 0,
    decodeContext,
  });
  let ttft = steps * step + (p.prefillAttnMsPerMPairs * (load.prefillPairs + prefillPairs(u, cached))) / 1e6;
  // Harm to others: chunked prefill fills each step's token budget first come, first served, so this
  // prompt's first chunk rides in the step that completes the last queued prefill there, and delays
  // that request's first token by the chunk's GEMM time. Greedy TTFT alone would not see it: when
  // two prompts arrive together, it would often stack them on one endpoint for the same own TTFT.
  if (load.prefilling > 0) {
    // A queue that is an exact multiple of the budget fills its last step: nothing rides along.
    const r = load.prefillTokens % budget;
    const left = r === 0 && load.prefillTokens > 0 ? 0 : budget - r;
    ttft += (Math.min(u, left) * p.gemmMsPer1kTokens) / 1000;
  }
  // Batch full: a slot frees every (mean output × decode step) / max_num_seqs on average.
  const overSlots = inEngine + 1 - p.maxNumSeqs;
  // KV full: the missing fraction of the cache frees as that fraction of the running work completes.
  const kvCapacity = p.numKvBlocks * p.blockSize;
  const kvOver = load.kvTokens + u - kvCapacity;
  if (overSlots > 0 || kvOver > 0) {
    const decodeStep = stepTimeMs(p, {
      requests: decoding,
      tokens: decoding,
      prefillPairs: 0,
      decodeContext,
    });
    const drainMs = ctx.pool.meanOutputTokens * decodeStep;
    if (overSlots > 0) ttft += (overSlots * drainMs) / p.maxNumSeqs;
    if (kvOver > 0) ttft += (kvOver / kvCapacity) * drainMs;
  }
  return ttft;
}

export const createPredictedTtftScorer = (name: string): PredictedTtftScorer => new PredictedTtftScorer(name);
