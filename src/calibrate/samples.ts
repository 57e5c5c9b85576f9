/**
 * @module calibrate/samples
 * Turns what a client saw of streamed requests (when each was sent, when each token event arrived,
 * the usage the engine reported) into the samples the fit takes. Pure.
 *
 * A batch is a set of requests sent together to an otherwise idle engine. A prompt of the prefill
 * sweep, alone, gives a time to first token. Any batch gives one decode sample: the steps after the last request's first
 * token and up to the first request's last one, in which every request of the batch decodes and
 * nothing prefills. Their mean duration comes from the span of each request's tokens over that
 * window, so wall-clock jitter (~1 ms per timestamp) is divided by the number of steps.
 */
import type { DecodeSample, Sample, TtftSample } from './fit.js';

/** One streamed request as the client saw it. */
export interface RequestTimeline {
  /** Clock time the request was sent, ms. */
  readonly sentMs: number;
  /** Arrival time of each streamed event that carried output tokens, ms. */
  readonly eventMs: readonly number[];
  readonly promptTokens: number;
  /** Prompt tokens the engine served from its prefix cache (0 when it does not say). */
  readonly cachedTokens: number;
  readonly completionTokens: number;
}

/** Requests sent together to an engine serving nothing else. */
export interface BatchTimeline {
  readonly requests: readonly RequestTimeline[];
  /**
   * A request alone that the prefill sweep sent: its time to first token is a sample. (A decode
   * batch of one is tried too seldom at its length for the fastest of its tries to mean much.)
   */
  readonly sweep?: boolean;
}

export interface SampleOptions {
  /** Network and HTTP round trip subtracted from every time to first token, ms. */
  readonly roundTripMs: number;
  /** Fewest decode steps a window must hold to make a sample. */
  readonly minSteps?: number;
}

/** The fit's samples from every batch: the fastest time to first token per prompt length, every decode window. */
export function samplesFromBatches(batches: readonly BatchTimeline[], o: SampleOptions): Sample[] {
  const ttft: TtftSample[] = [];
  const decode: DecodeSample[] = [];
  for (const batch of batches) {
    if (batch.sweep === true && batch.requests.length === 1) {
      const t = ttftSample(batch.requests[0]!, o.roundTripMs);
      if (t !== undefined) ttft.push(t);
    }
    const d = decodeSample(batch, o.minSteps ?? 4);
    if (d !== undefined) decode.push(d);
  }
  return [...fastestPerLength(ttft), ...decode];
}

/**
 * A time to first token is the engine's time plus delays that are never negative (a timer firing
 * late, a host busy elsewhere, a collection pause), with a long tail: of the tries at one prompt
 * length (within 1% or 2 tokens; the per-request nonce varies a little), the fastest is the
 * closest to the engine's own time. A decode window needs no such care: it is the difference of
 * two delayed times, and their delays cancel on average.
 */
export function fastestPerLength(samples: readonly TtftSample[]): TtftSample[] {
  const sorted = [...samples].sort(
    (a, b) => a.cachedTokens - b.cachedTokens || a.promptTokens - b.promptTokens,
  );
  const out: TtftSample[] = [];
  let first: TtftSample | undefined;
  for (const s of sorted) {
    const near =
      first !== undefined &&
      s.cachedTokens === first.cachedTokens &&
      s.promptTokens - first.promptTokens <= Math.max(2, 0.01 * first.promptTokens);
    if (!near) {
      first = s;
      out.push(s);
    } else if (s.ms < out.at(-1)!.ms) out[out.length - 1] = s;
  }
  return out;
}

function ttftSample(r: RequestTimeline, roundTripMs: number): TtftSample | undefined {
  const first = r.eventMs[0];
  if (first === undefined) return undefined;
  return {
    kind: 'ttft',
    promptTokens: r.promptTokens,
    cachedTokens: r.cachedTokens,
    ms: first - r.sentMs - roundTripMs,
  };
}

/** Index of the element of sorted `xs` nearest to `t`. */
function nearest(xs: readonly number[], t: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= t) lo = mid;
    else hi = mid;
  }
  return Math.abs(xs[lo]! - t) <= Math.abs(xs[hi]! - t) ? lo : hi;
}

function median(xs: number[]): number {
  xs.sort((a, b) => a - b);
  return xs.length === 0 ? 0 : xs[xs.length >> 1]!;
}

/**
 * Theil–Sen slope (Sen 1968) of `ts[a..b]` against the index, over pairs at least half the window
 * apart: the median of their slopes ignores a minority of late timestamps, which the difference of
 * the two end times would not. Context grows by a token per step, so the times bend slightly
 * upwards; the pairs' midpoints sit symmetrically about the window's centre, and so does the slope.
 */
export function medianSlope(ts: readonly number[], a: number, b: number): number {
  const slopes: number[] = [];
  const minGap = Math.max(1, Math.floor((b - a) / 2));
  for (let i = a; i + minGap <= b; i++) {
    for (let j = i + minGap; j <= b; j++) slopes.push((ts[j]! - ts[i]!) / (j - i));
  }
  return median(slopes);
}

/**
 * The batch's pure-decode window as one sample. With more than one request the window is shrunk by
 * one step at each end: tokens of one step reach the client a little apart, and a boundary token
 * taken from the neighbouring step would bring in a step that prefilled or that fewer requests ran.
 * The step time is the median over the batch's requests of each one's {@link medianSlope}.
 */
export function decodeSample(batch: BatchTimeline, minSteps = 4): DecodeSample | undefined {
  const reqs = batch.requests;
  if (reqs.length === 0 || reqs.some((r) => r.eventMs.length < 2)) return undefined;
  const start = Math.max(...reqs.map((r) => r.eventMs[0]!));
  const end = Math.min(...reqs.map((r) => r.eventMs.at(-1)!));
  const gaps: number[] = [];
  for (const r of reqs) {
    for (let i = 1; i < r.eventMs.length; i++)
      if (r.eventMs[i - 1]! >= start && r.eventMs[i]! <= end) gaps.push(r.eventMs[i]! - r.eventMs[i - 1]!);
  }
  const margin = reqs.length > 1 ? median(gaps) : 0;
  const stepMs: number[] = [];
  let steps = 0;
  let context = 0;
  for (const r of reqs) {
    const a = nearest(r.eventMs, start + margin);
    const b = nearest(r.eventMs, end - margin);
    // Events may carry several tokens (an engine streaming every k tokens): count steps in tokens.
    const perEvent = r.completionTokens / r.eventMs.length;
    if ((b - a) * perEvent < minSteps) return undefined;
    stepMs.push(medianSlope(r.eventMs, a, b) / perEvent);
    steps += (b - a) * perEvent;
    // The step producing token j (0-based) reads the prompt and the j tokens before it.
    context += r.promptTokens + ((a + 1 + b) / 2) * perEvent;
  }
  return {
    kind: 'decode',
    requests: reqs.length,
    contextTokens: context,
    ms: median(stepMs),
    steps: steps / reqs.length,
  };
}
