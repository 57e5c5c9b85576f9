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
 *
 * Near-ties (within `nearFraction` of the best plus `nearMs`, holding as much of the prompt) go to
 * the candidate the prompt's prefix key hashes to on a ring, so one family of prompts gathers on one
 * replica while the prediction cannot tell the replicas apart (see `home`).
 *
 * With `correction` on, each endpoint is predicted with its profile as corrected by what the pool's
 * ledger has observed of it (router/model-correction.ts): compute-bound constants × its prefill
 * factor, the others × its decode factor. The ledger learns the factors either way.
 */
import { z } from 'zod';
import { type EndpointView, modelProfile } from '../../../framework/endpoint.js';
import type { RoutingContext, RoutingRequest, Scorer } from '../../../framework/routing.js';
import { prefillPairs, stepTimeMs } from '../../../engine-model/step-time.js';
import type { EngineProfile } from '../../../engine-model/types.js';
import { EndpointRings, prefixKey, stringKey } from '../hash-ring.js';
import { numberIn, pluginFactory } from '../params.js';

export const PREDICTED_TTFT_SCORER = 'predicted-ttft-scorer';

/** Scores of the other near-best candidates once a home is chosen: below 1, above every other. */
const BAND_FLOOR = 0.99;

/** The scorer's parameters and their defaults. */
export const PREDICTED_TTFT_PARAMS = z.strictObject({
  /** Near-best: a prediction within this fraction of the best one, plus `nearMs`. */
  nearFraction: numberIn(0, 1).default(0.1),
  nearMs: numberIn(0).default(2),
  /** Prompt tokens whose prefix blocks form the key that picks a family's home replica. */
  keyTokens: numberIn(1).default(1024),
  /** Predict each endpoint with its profile as corrected by its observed latencies. */
  correction: z.boolean({ error: 'must be true or false' }).default(false),
});

export type PredictedTtftParams = Readonly<z.output<typeof PREDICTED_TTFT_PARAMS>>;

export const PREDICTED_TTFT_DEFAULTS: PredictedTtftParams = Object.freeze(PREDICTED_TTFT_PARAMS.parse({}));

export class PredictedTtftScorer implements Scorer {
  readonly type = PREDICTED_TTFT_SCORER;
  /** Per candidate of the last decision: its score's prediction (harm to others included), and its own TTFT. */
  private predicted = new Float64Array(64);
  private own = new Float64Array(64);
  private lastCandidates: readonly EndpointView[] = [];
  private readonly parts = new Float64Array(2);

  private readonly rings = new EndpointRings(100, [0x7e3a91c5]);

  constructor(
    readonly name: string,
    private readonly p: PredictedTtftParams = PREDICTED_TTFT_DEFAULTS,
  ) {}

  /**
   * Among the near-best candidates that hold as much of the prompt as the best, the one its prefix
   * key (or session) hashes to on a ring; −1 without a key. Predicted TTFT decides while it separates the candidates;
   * when it does not, prompts of one family (same first blocks) gather on the same replica, so their
   * later, longer shared prefixes find each other, rather than scattering by a coin toss.
   */
  private home(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    ctx: RoutingContext,
    pred: Float64Array,
    best: number,
  ): number {
    const key = req.sessionId !== null ? stringKey(req.sessionId) : prefixKey(req, this.p.keyTokens);
    if (key === -1 || candidates.length < 2) return -1;
    const limit = pred[best]! * (1 + this.p.nearFraction) + this.p.nearMs;
    const holds = ctx.pool.cachedPrefixTokens(candidates[best]!.index);
    this.rings.prepare(candidates);
    const ring = this.rings.rings[0]!;
    const slot = this.rings.slot;
    for (let pos = ring.start(key), s = 0; s < ring.length; s++, pos++) {
      const i = slot[ring.owner(pos)]!;
      if (i < 0) continue;
      if (pred[i]! <= limit && ctx.pool.cachedPrefixTokens(candidates[i]!.index) === holds) return i;
    }
    return -1;
  }

  score(
    req: RoutingRequest,
    candidates: readonly EndpointView[],
    out: Float64Array,
    ctx: RoutingContext,
  ): void {
    const n = candidates.length;
    if (this.predicted.length < n) {
      this.predicted = new Float64Array(n);
      this.own = new Float64Array(n);
    }
    const pred = this.predicted;
    const parts = this.parts;
    this.lastCandidates = candidates;
    let best = 0;
    let mostCached = 0;
    for (let i = 0; i < n; i++) {
      const v = candidates[i]!;
      ttftParts(req, v, ctx, this.p.correction ? profileOf(v, ctx) : modelProfile(v.info), parts);
      this.own[i] = parts[0]!;
      pred[i] = parts[1]!;
      if (pred[i]! < pred[best]!) best = i;
      const cached = ctx.pool.cachedPrefixTokens(candidates[i]!.index);
      if (cached > mostCached) mostCached = cached;
    }
    const min = pred[best]!;
    for (let i = 0; i < n; i++) out[i] = pred[i]! > 0 ? min / pred[i]! : 1;
    // Even when the home is the best, its near-ties must drop below it, or the picker's coin decides.
    const home = this.home(req, candidates, ctx, pred, best);
    if (home !== -1) {
      for (let i = 0; i < n; i++) if (out[i]! >= BAND_FLOOR) out[i] = Math.min(out[i]!, BAND_FLOOR);
      out[home] = 1;
      best = home;
    }
    const bestCached = ctx.pool.cachedPrefixTokens(candidates[best]!.index);
    ctx.reason =
      mostCached === 0 ? 'least-ttft' : bestCached === mostCached ? 'cache-affinity' : 'load-over-cache';
  }

  /**
   * Tells the decision record what was predicted on the endpoint picked, whoever picked it, with
   * the profile's per-request overhead (the API server's, before the engine's queue) that the
   * comparison leaves out, so that it compares with the TTFT observed from the moment of sending.
   */
  onRouted(_req: RoutingRequest, index: number, ctx: RoutingContext): void {
    const c = this.lastCandidates;
    for (let i = 0; i < c.length; i++) {
      if (c[i]!.index !== index) continue;
      ctx.pool.notePrediction?.(this.own[i]! + (modelProfile(c[i]!.info).requestOverheadMs ?? 0));
      return;
    }
  }
}

/** The profile `v` is predicted with: its own (or the fallback), corrected by the pool's ledger. */
function profileOf(v: EndpointView, ctx: RoutingContext): EngineProfile {
  const base = modelProfile(v.info);
  return ctx.pool.correctedProfile?.(v.index, base) ?? base;
}

const SCRATCH = new Float64Array(2);

/**
 * The predicted TTFT (ms) of `req` on endpoint `v`, harm to others included, with profile `p`
 * (default: the endpoint's, corrected); see the module comment for the model.
 */
export function predictTtftMs(
  req: RoutingRequest,
  v: EndpointView,
  ctx: RoutingContext,
  p: EngineProfile = profileOf(v, ctx),
): number {
  ttftParts(req, v, ctx, p, SCRATCH);
  return SCRATCH[1]!;
}

/**
 * The model itself: `out[0]` = the request's own TTFT on `v` with profile `p`, `out[1]` = that plus
 * the delay it adds to the last prefill queued there (what the score compares).
 */
function ttftParts(
  req: RoutingRequest,
  v: EndpointView,
  ctx: RoutingContext,
  p: EngineProfile,
  out: Float64Array,
): void {
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
  let total = ttft;
  if (load.prefilling > 0) {
    // A queue that is an exact multiple of the budget fills its last step: nothing rides along.
    const r = load.prefillTokens % budget;
    const left = r === 0 && load.prefillTokens > 0 ? 0 : budget - r;
    total += (Math.min(u, left) * p.gemmMsPer1kTokens) / 1000;
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
    const slotWait = overSlots > 0 ? (overSlots * drainMs) / p.maxNumSeqs : 0;
    const kvWait = kvOver > 0 ? (kvOver / kvCapacity) * drainMs : 0;
    ttft += slotWait + kvWait;
    // Added one by one, as the total always was (the same float, so the same decisions as before).
    if (overSlots > 0) total += slotWait;
    if (kvOver > 0) total += kvWait;
  }
  out[0] = ttft;
  out[1] = total;
}

export const createPredictedTtftScorer = pluginFactory(
  PREDICTED_TTFT_SCORER,
  PREDICTED_TTFT_PARAMS,
  (name, p) => new PredictedTtftScorer(name, p),
);
