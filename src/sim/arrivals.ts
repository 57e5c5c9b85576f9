/**
 * @module sim/arrivals
 * The future a simulation may show the `oracle` scaling policy: how many requests of a workload
 * arrive in a time range. One pass over the records keeps only their arrival times (8 bytes each).
 */
import type { TraceRecord } from '../traces/record.js';

/** Reads `records` (in arrival order) and returns the count of arrivals in [fromMs, toMs). */
export async function arrivalCounter(
  records: AsyncIterable<TraceRecord>,
): Promise<(fromMs: number, toMs: number) => number> {
  let times = new Float64Array(1 << 16);
  let n = 0;
  for await (const r of records) {
    if (n === times.length) {
      const grown = new Float64Array(times.length * 2);
      grown.set(times);
      times = grown;
    }
    times[n++] = r.arrivalMs;
  }
  const sorted = times.subarray(0, n);
  return (fromMs, toMs) => lowerBound(sorted, toMs) - lowerBound(sorted, fromMs);
}

/** Index of the first time ≥ t in ascending `a`. */
function lowerBound(a: Float64Array, t: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
