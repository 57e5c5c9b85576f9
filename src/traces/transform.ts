/**
 * @module traces/transform
 * Time windows and rate scaling over a streamed trace.
 */
import type { TraceRecord } from './record.js';

export interface ReplayShape {
  /** Replay k× faster (arrival gaps divided by k); 1 = as recorded. */
  readonly rateScale?: number;
  /** Keep arrivals in [startS, endS) of the original trace, re-based to start at 0. */
  readonly window?: { readonly startS: number; readonly endS: number };
  /**
   * Spread requests that share a timestamp evenly over the gap to the next distinct timestamp.
   * For traces whose clock was rounded (Mooncake's conversation trace has 600 distinct times in
   * 30 min, up to 23 requests on one): the true arrivals within a tick are unknown, and replaying
   * them as one instantaneous burst would invent bursts no client sent.
   */
  readonly spreadTies?: boolean;
}

/** Applies a window, then the rate scale; the records' other fields are unchanged. */
export async function* reshape(
  records: AsyncIterable<TraceRecord>,
  shape: ReplayShape,
): AsyncGenerator<TraceRecord> {
  const k = shape.rateScale ?? 1;
  if (!(k > 0)) throw new Error(`rate scale must be > 0, got ${k}`);
  const startMs = (shape.window?.startS ?? 0) * 1000;
  const endMs = (shape.window?.endS ?? Number.POSITIVE_INFINITY) * 1000;
  const source = shape.spreadTies ? spreadTies(records) : records;
  for await (const r of source) {
    if (r.arrivalMs < startMs) continue;
    if (r.arrivalMs >= endMs) break;
    yield k === 1 && startMs === 0 ? r : { ...r, arrivalMs: (r.arrivalMs - startMs) / k };
  }
}

/** The group of records at one timestamp is held until the next timestamp tells the gap. */
async function* spreadTies(records: AsyncIterable<TraceRecord>): AsyncGenerator<TraceRecord> {
  let group: TraceRecord[] = [];
  const flush = function* (nextMs: number): Generator<TraceRecord> {
    const t = group[0]!.arrivalMs;
    const step = Number.isFinite(nextMs) ? (nextMs - t) / group.length : 0;
    for (let i = 0; i < group.length; i++)
      yield i === 0 ? group[i]! : { ...group[i]!, arrivalMs: t + i * step };
    group = [];
  };
  for await (const r of records) {
    if (group.length > 0 && r.arrivalMs !== group[0]!.arrivalMs) yield* flush(r.arrivalMs);
    group.push(r);
  }
  if (group.length > 0) yield* flush(Number.POSITIVE_INFINITY);
}
