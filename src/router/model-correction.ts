/**
 * @module router/model-correction
 * Online correction of the engine model per endpoint, learnt from the latencies the gateway
 * observes: a real replica is rarely the profile it is routed by (other kernels, clocks, drivers, a
 * noisy neighbour), and the cost-model policy trades cache hits against queues in predicted
 * milliseconds, so a replica slower than its profile would be sent too much, a faster one too little.
 *
 * The idea is CloudFormer's (Shahbazinia et al., arXiv 2509.03394): describe a workload's slowdown
 * as the ratio of its observed to its ideal performance, and correct predictions by it. CloudFormer
 * predicts that ratio from host metrics with a transformer; here it is measured directly from each
 * request's own latencies, and split by what a step's time scales with (engine-model/step-time.ts
 * `stepTimeParts`): the compute-bound constants that dominate prefill (GEMM per token, prefill
 * attention) get the **prefill** factor, the rest that dominates decode (weights streaming,
 * overheads, decode attention, TP collectives) the **decode** factor. The router then predicts with
 * the profile so scaled ({@link correctedProfile}).
 *
 * Evidence, each an observed time against the step times the model gives for the same work:
 *
 * - **decode**: a request's first to last streamed token, against the steps in between as the
 *   ledger saw the endpoint at each step's start (its decoding requests and the prefill beside them);
 * - **prefill**: the TTFT of a request sent while the ledger had no prefill queued there, and alone
 *   there until its first token, against its own prefill beside the requests decoding there (chunk
 *   by chunk, with the cache hit the engine reported), plus half a step for the one in progress.
 *   With a queue, TTFT would measure the queue model's error rather than the engine's speed.
 *
 * Each observation is normalised by its prediction, y = observed / predicted, with c = the compute
 * share of the prediction, and the factors are the least-squares line y ≈ c·prefill + (1 − c)·decode
 * over exponentially weighted observations ({@link ALPHA}), ridge-regularised towards 1 so that a
 * share never observed stays put. One observation counts within [1/{@link OUTLIER}, {@link OUTLIER}]
 * (a stall must not swing the fit), and each factor is clamped to [{@link MIN_FACTOR},
 * {@link MAX_FACTOR}]: a correction of the model, not a replacement for it.
 */
import { prefillPairs, stepTimeParts } from '../engine-model/step-time.js';
import type { EngineProfile } from '../engine-model/types.js';
import { PLAIN_ENDPOINT, modelProfile } from '../framework/endpoint.js';
import type { EndpointLoad, ModelFactors } from '../framework/routing.js';

export type { ModelFactors };
export type ModelPhase = keyof ModelFactors;
export const MODEL_PHASES: readonly ModelPhase[] = ['prefill', 'decode'];

/** No correction. */
export const NO_CORRECTION: ModelFactors = Object.freeze({ prefill: 1, decode: 1 });

export const MIN_FACTOR = 0.5;
export const MAX_FACTOR = 2;
/** Decay of every earlier observation's weight per new one: about the last 64 count. */
export const ALPHA = 1 / 64;
/** One observation's ratio counts within [1/OUTLIER, OUTLIER]. */
export const OUTLIER = 4;
/** Ridge towards 1, relative to the weight of the evidence. */
const RIDGE = 0.005;
/** A new endpoint starts as if it had this many observations of each part as predicted (y = 1). */
const PRIOR = 4;

/** `p` with its compute-bound constants × `f.prefill` and the others × `f.decode`. */
export function correctedProfile(p: EngineProfile, f: ModelFactors): EngineProfile {
  return {
    ...p,
    gemmMsPer1kTokens: p.gemmMsPer1kTokens * f.prefill,
    prefillAttnMsPerMPairs: p.prefillAttnMsPerMPairs * f.prefill,
    weightsMs: p.weightsMs * f.decode,
    decodeAttnMsPer1kCtx: p.decodeAttnMsPer1kCtx * f.decode,
    stepOverheadMs: p.stepOverheadMs * f.decode,
    perRequestMs: p.perRequestMs * f.decode,
    tpCommMs: p.tpCommMs * f.decode,
    tpCommMsPer1kTokens: p.tpCommMsPer1kTokens * f.decode,
  };
}

/** A request sent where nothing was prefilling: what decoded beside it, and the endpoint's send count then. */
export interface CleanSend extends StepLoad {
  readonly sends: number;
}

/** What the ledger knew of an endpoint when a step started there. */
export interface StepLoad {
  /** Requests past their first token (each decodes one token). */
  readonly decoding: number;
  /** Uncached prompt tokens waiting for their prefill, and their attention pairs. */
  readonly prefillTokens: number;
  readonly prefillPairs: number;
  /** Context tokens read per decoding request. */
  readonly contextPerRequest: number;
}

/**
 * The parts (compute, rest) of one step on `p` with `s` there: every decoding request decodes one
 * token, the prefill queue fills the rest of the token budget (its attention pairs pro rata).
 */
export function loadedStepParts(p: EngineProfile, s: StepLoad, out: Float64Array): void {
  const decoding = Math.min(p.maxNumSeqs, s.decoding);
  const chunk = Math.min(Math.max(0, p.maxNumBatchedTokens - decoding), s.prefillTokens);
  stepTimeParts(
    p,
    {
      requests: decoding + (chunk > 0 ? 1 : 0),
      tokens: decoding + chunk,
      prefillPairs: chunk > 0 ? (s.prefillPairs * chunk) / s.prefillTokens : 0,
      decodeContext: s.contextPerRequest * decoding,
    },
    out,
  );
}

/**
 * The parts (compute, rest) of a prompt's TTFT on an endpoint with no prefill queued: `uncached`
 * tokens after `cached`, in chunks of the budget left by `s.decoding` decoding requests, after half
 * of the step in progress when there is one (the request arrives at a random point of it).
 */
export function isolatedTtftParts(
  p: EngineProfile,
  uncached: number,
  cached: number,
  s: StepLoad,
  out: Float64Array,
): void {
  const decoding = Math.min(p.maxNumSeqs, s.decoding);
  const budget = Math.max(1, p.maxNumBatchedTokens - decoding);
  const context = s.contextPerRequest * decoding;
  let compute = 0;
  let rest = 0;
  if (decoding > 0) {
    stepTimeParts(p, { requests: decoding, tokens: decoding, prefillPairs: 0, decodeContext: context }, out);
    compute += out[0]! / 2;
    rest += out[1]! / 2;
  }
  for (let done = 0; done < uncached; ) {
    const n = Math.min(budget, uncached - done);
    const pairs = prefillPairs(n, cached + done);
    stepTimeParts(
      p,
      { requests: decoding + 1, tokens: decoding + n, prefillPairs: pairs, decodeContext: context },
      out,
    );
    compute += out[0]!;
    rest += out[1]!;
    done += n;
  }
  out[0] = compute;
  out[1] = rest;
}

const SCRATCH = new Float64Array(2);

/** One endpoint's fit: the factors routing reads, and the weighted normal equations behind them. */
class SlotFit implements ModelFactors {
  prefill = 1;
  decode = 1;
  /** Bumped when a factor changes (the corrected profile is rebuilt then). */
  version = 0;
  // Σ w·c², Σ w·c·(1−c), Σ w·(1−c)², Σ w·c·y, Σ w·(1−c)·y, from the prior's observations at c = 0 and 1.
  cc = PRIOR;
  cr = 0;
  rr = PRIOR;
  cy = PRIOR;
  ry = PRIOR;
  base: EngineProfile | null = null;
  corrected: EngineProfile | null = null;
  correctedVersion = -1;
  /** The profile the endpoint is predicted with (before correction). */
  profile: EngineProfile = modelProfile(PLAIN_ENDPOINT);
  /** The last instant a step ended there, as token events told, and that step's parts. */
  stepAtMs = Number.NaN;
  readonly step = new Float64Array(2);
  /** Requests sent there, all time. */
  sends = 0;
  /** Sent recently: maybe not in the engine when the running step began (see `stepEnded`). */
  recent: RecentSend[] = [];
}

interface RecentSend {
  readonly atMs: number;
  readonly prefillTokens: number;
  readonly prefillPairs: number;
  readonly kvTokens: number;
}

/** The correction of a pool's endpoints, by ledger slot. */
export class ModelCorrection {
  private slots: SlotFit[] = [];

  /** The factors of `slot` (1 and 1 until it has observations); updated in place. */
  factors(slot: number): ModelFactors {
    return this.slots[slot] ?? NO_CORRECTION;
  }

  /** `base` corrected by `slot`'s factors (the same object while they do not change). */
  profile(slot: number, base: EngineProfile): EngineProfile {
    const f = this.slots[slot];
    if (f === undefined || (f.prefill === 1 && f.decode === 1)) return base;
    if (f.base !== base || f.correctedVersion !== f.version) {
      f.base = base;
      f.corrected = correctedProfile(base, f);
      f.correctedVersion = f.version;
    }
    return f.corrected!;
  }

  /**
   * Learns from one observation on `slot`: it took `observedMs` where the model predicted
   * `computeMs` + `restMs` (the parts of {@link stepTimeParts}, summed over the steps involved).
   */
  observe(slot: number, observedMs: number, computeMs: number, restMs: number): void {
    const predicted = computeMs + restMs;
    if (!(predicted > 0) || !(observedMs >= 0)) return;
    const f = this.at(slot);
    const y = Math.min(OUTLIER, Math.max(1 / OUTLIER, observedMs / predicted));
    const c = computeMs / predicted;
    const r = 1 - c;
    const keep = 1 - ALPHA;
    f.cc = keep * f.cc + c * c;
    f.cr = keep * f.cr + c * r;
    f.rr = keep * f.rr + r * r;
    f.cy = keep * f.cy + c * y;
    f.ry = keep * f.ry + r * y;
    const ridge = RIDGE * (f.cc + f.rr);
    const a = f.cc + ridge;
    const d = f.rr + ridge;
    const det = a * d - f.cr * f.cr;
    const prefill = ((f.cy + ridge) * d - f.cr * (f.ry + ridge)) / det;
    const decode = ((f.ry + ridge) * a - f.cr * (f.cy + ridge)) / det;
    f.prefill = Math.min(MAX_FACTOR, Math.max(MIN_FACTOR, prefill));
    f.decode = Math.min(MAX_FACTOR, Math.max(MIN_FACTOR, decode));
    f.version++;
  }

  /** Forgets what `slot` learnt (another endpoint takes it). */
  clear(slot: number): void {
    if (slot < this.slots.length) this.slots[slot] = new SlotFit();
  }

  /** The endpoint in `slot` is predicted with `profile`. */
  setProfile(slot: number, profile: EngineProfile): void {
    this.at(slot).profile = profile;
  }

  /**
   * A request is sent to `slot`, whose load (before it) is `load`: its prefill joins a later step.
   * Returns what a clean TTFT observation needs — the decoding requests it will run beside — when
   * nothing was prefilling there, else null.
   */
  sent(
    slot: number,
    nowMs: number,
    load: EndpointLoad,
    uncached: number,
    pairs: number,
    kv: number,
  ): CleanSend | null {
    const f = this.at(slot);
    f.sends++;
    f.recent.push({ atMs: nowMs, prefillTokens: uncached, prefillPairs: pairs, kvTokens: kv });
    if (load.prefilling > 0) return null;
    return {
      sends: f.sends,
      decoding: load.requests,
      prefillTokens: 0,
      prefillPairs: 0,
      contextPerRequest: load.requests > 0 ? load.kvTokens / load.requests : 0,
    };
  }

  /**
   * The parts of the step of `slot` that ended at `nowMs` (a token event's time), from `load` as it
   * stood when the step started (the previous token event's time): now, less the requests that had
   * not reached the engine's queue by then — sent after it, less the profile's per-request overhead
   * (the API server's share, before the queue). Computed at the first token event of each instant,
   * the same for every request that step served.
   */
  stepEnded(slot: number, load: EndpointLoad, nowMs: number): Float64Array {
    const f = this.at(slot);
    if (f.stepAtMs === nowMs) return f.step;
    const overhead = f.profile.requestOverheadMs ?? 0;
    const cutoff = (Number.isNaN(f.stepAtMs) ? nowMs : f.stepAtMs) - overhead;
    let requests = load.requests;
    let tokens = load.prefillTokens;
    let pairs = load.prefillPairs;
    let kv = load.kvTokens;
    for (const r of f.recent) {
      if (r.atMs < cutoff) continue;
      requests--;
      tokens -= r.prefillTokens;
      pairs -= r.prefillPairs;
      kv -= r.kvTokens;
    }
    loadedStepParts(
      f.profile,
      {
        // Requests not yet in the engine are all still prefilling: the decoding count is exact.
        decoding: Math.max(0, load.requests - load.prefilling),
        prefillTokens: Math.max(0, tokens),
        prefillPairs: Math.max(0, pairs),
        contextPerRequest: requests > 0 ? Math.max(0, kv) / requests : 0,
      },
      f.step,
    );
    f.stepAtMs = nowMs;
    // What was sent before the next step's start less the overhead is in the engine for good.
    if (f.recent.length > 0) f.recent = f.recent.filter((r) => r.atMs >= nowMs - overhead);
    return f.step;
  }

  /**
   * Whether a request sent clean is still alone at its first token: a request sent after it to the
   * same endpoint may have shared its steps (sent in the same instant, or riding in its last chunk).
   */
  alone(slot: number, clean: CleanSend): boolean {
    return this.at(slot).sends === clean.sends;
  }

  /**
   * A clean request's first token came `ttftMs` after it was sent: learns from it against its own
   * prefill (`uncached` tokens after `cached`) beside what `clean` says was decoding there. The
   * profile's per-request overhead (the API server's, outside the steps) is taken off first: the
   * correction is of the step times.
   */
  observeTtft(slot: number, ttftMs: number, uncached: number, cached: number, clean: StepLoad): void {
    const out = SCRATCH;
    const p = this.at(slot).profile;
    isolatedTtftParts(p, uncached, cached, clean, out);
    this.observe(slot, Math.max(0, ttftMs - (p.requestOverheadMs ?? 0)), out[0]!, out[1]!);
  }

  private at(slot: number): SlotFit {
    while (this.slots.length <= slot) this.slots.push(new SlotFit());
    return this.slots[slot]!;
  }
}
