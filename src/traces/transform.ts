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
  for await (const r of records) {
    if (r.arrivalMs < startMs) continue;
    if (r.arrivalMs >= endMs) break;
    yield k === 1 && startMs === 0 ? r : { ...r, arrivalMs: (r.arrivalMs - startMs) / k };
  }
}
