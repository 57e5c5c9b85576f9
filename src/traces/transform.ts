/**
 * @module traces/transform
 * Time windows and rate scaling over a streamed trace; tagging records with a tenant or a priority
 * class (no shipped trace carries either), and merging streams into one workload.
 */
import { SeededRng } from '../core/rng.js';
import type { PriorityClass } from '../scheduler/types.js';
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

/** Labels to put on a stream's records; absent fields leave the records' own values. */
export interface Tagging {
  /** Every record's tenant. */
  readonly tenant?: string;
  /** Every record's class. */
  readonly priority?: PriorityClass;
  /** A share (0..1) of the records, picked by a seeded coin per record, marked `batch` (after `priority`). */
  readonly batchShare?: number;
  /** Seed of the batch coin (default 1). */
  readonly seed?: number;
}

/** Applies `t` to every record; the same seed and stream give the same tags. */
export async function* tag(
  records: AsyncIterable<TraceRecord> | Iterable<TraceRecord>,
  t: Tagging,
): AsyncGenerator<TraceRecord> {
  const share = t.batchShare ?? 0;
  if (!(share >= 0 && share <= 1)) throw new Error(`batch share must be in [0, 1], got ${share}`);
  const rng = new SeededRng(t.seed ?? 1);
  for await (const r of records) {
    // One draw per record whatever the share, so changing the share re-tags a superset, not a reshuffle.
    const batch = rng.next() < share;
    const priority = batch ? 'batch' : (t.priority ?? r.priority);
    yield {
      ...r,
      ...(t.tenant !== undefined ? { tenant: t.tenant } : {}),
      ...(priority !== undefined ? { priority } : {}),
    };
  }
}

/**
 * Merges streams that are each in arrival order into one in arrival order; on equal times the
 * earlier stream's record comes first. Holds one record per stream.
 */
export async function* merge(
  ...streams: readonly (AsyncIterable<TraceRecord> | Iterable<TraceRecord>)[]
): AsyncGenerator<TraceRecord> {
  const its = streams.map((s) =>
    Symbol.asyncIterator in s ? s[Symbol.asyncIterator]() : toAsync(s[Symbol.iterator]()),
  );
  const heads = await Promise.all(its.map((it) => it.next()));
  for (;;) {
    let pick = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!h.done && (pick === -1 || h.value.arrivalMs < (heads[pick]!.value as TraceRecord).arrivalMs))
        pick = i;
    }
    if (pick === -1) return;
    yield heads[pick]!.value as TraceRecord;
    heads[pick] = await its[pick]!.next();
  }
}

function toAsync<T>(it: Iterator<T>): AsyncIterator<T> {
  return { next: async () => it.next() };
}
