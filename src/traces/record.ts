/**
 * @module traces/record
 * The one shape every workload source yields, whether a real trace or a synthetic generator.
 */
import type { PriorityClass } from '../scheduler/types.js';

/** One request of a workload. Times in ms from the start of the workload. */
export interface TraceRecord {
  /** Arrival time, ms from the workload's start (non-decreasing along a trace). */
  readonly arrivalMs: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /**
   * Prefix block ids as the trace gives them: two requests that share their first k ids share the
   * KV of their first k·{@link hashBlockTokens} tokens. Absent when the trace has none: then no cache
   * hit may be assumed.
   */
  readonly hashIds?: readonly number[];
  /** Tokens covered by one entry of {@link hashIds} (Mooncake: 512). */
  readonly hashBlockTokens?: number;
  /**
   * Recorded live traffic: the prefix signal the gateway computed (chained hashes of blocks of
   * {@link prefixBlockTokens} tokens). When given, routing reads it instead of {@link hashIds}'.
   */
  readonly prefixHashes?: readonly number[];
  readonly prefixBlockTokens?: number;
  /** Recorded live traffic: the gateway's estimate of the prompt's size, what routing saw (default {@link inputTokens}). */
  readonly promptTokensEstimate?: number;
  /** Recorded live traffic: the engine's own chained block hashes, for engines of `blockSize` tokens per block. */
  readonly engineBlocks?: { readonly blockSize: number; readonly hashes: readonly number[] };
  readonly session?: string;
  readonly tenant?: string;
  readonly model?: string;
  /** The request's priority class, as a client would mark it (no shipped trace has one: see traces/transform.ts `tag`); default `normal`. */
  readonly priority?: PriorityClass;
}

/** What a loader knows about its source, said before the records. */
export interface TraceInfo {
  readonly format: string;
  /** Whether records carry prefix block ids (cache hits can be simulated). */
  readonly hasBlockHashes: boolean;
}

/** A streamed workload: its description and an async stream of records in arrival order. */
export interface Trace {
  readonly info: TraceInfo;
  readonly records: AsyncIterable<TraceRecord>;
}
