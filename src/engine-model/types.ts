/**
 * @module engine-model/types
 * The contract of the engine performance model: one module, three uses (the simulator on a
 * virtual clock, the emulated engine behind real HTTP on the live clock, and the capacity planner).
 * It contains no HTTP and no timer code of its own: time only through the injected Clock.
 */

/** Calibrated constants of one (model, GPU, TP) pair. See docs/engine-model.md for sources. */
export interface EngineProfile {
  /** Profile name used in config and on the CLI, e.g. `llama3.1-8b-h100`. */
  readonly name: string;
  /** The model id the engine reports (`/v1/models`), e.g. `meta-llama/Llama-3.1-8B-Instruct`. */
  readonly model: string;
  /** Accelerator label, e.g. `H100-80G-SXM`. */
  readonly gpu: string;
  /** Tensor-parallel degree. */
  readonly tp: number;

  // Step time: step_ms = T0 + t_req·B + T_lin(N) + C_pf·Σ n(c+n/2)/1e6 + C_dec·Σctx/1e3 + TP_comm(N),
  // T_lin(N) = (W^1.5 + (b·N/1000)^1.5)^(2/3). See engine-model/step-time.ts.
  /** W: time to stream the weights once (ms). */
  readonly weightsMs: number;
  /** b: GEMM cost per 1,000 scheduled tokens once compute-bound (ms). */
  readonly gemmMsPer1kTokens: number;
  /** C_pf: prefill attention per 10^6 query-key pairs (ms). */
  readonly prefillAttnMsPerMPairs: number;
  /** C_dec: decode attention per 1,000 context tokens read (ms). */
  readonly decodeAttnMsPer1kCtx: number;
  /** T0: per-step CPU/launch overhead (ms). */
  readonly stepOverheadMs: number;
  /** t_req: per-request-in-batch overhead (ms). */
  readonly perRequestMs: number;
  /** TP_comm = a_ar + s_ar·N/1000: all-reduce cost per step (ms); 0 at TP1. */
  readonly tpCommMs: number;
  /** s_ar: all-reduce cost per 1,000 scheduled tokens (ms); 0 at TP1. */
  readonly tpCommMsPer1kTokens: number;
  /**
   * Fixed time a request spends outside the engine core's steps (the API server's parsing and
   * tokenisation before it is queued, detokenising and streaming after), ms; default 0. Modelled
   * as a delay before the request joins the waiting queue, so it adds to TTFT and end to end alike.
   */
  readonly requestOverheadMs?: number;

  // Scheduler limits (vLLM V1 names in comments)
  /** max_num_seqs */
  readonly maxNumSeqs: number;
  /** max_num_batched_tokens: the per-step token budget (chunked prefill). */
  readonly maxNumBatchedTokens: number;
  /** block_size in tokens. */
  readonly blockSize: number;
  /** Number of KV blocks on the replica (from GPU memory after weights and activations). */
  readonly numKvBlocks: number;
  /** max_model_len */
  readonly maxModelLen: number;

  /** Time from replica start to ready (weights load + warm-up), ms. */
  readonly coldStartMs: number;
  /** Hourly price of the replica's capacity, USD (on-demand), for cost accounting. */
  readonly costPerHourUsd: number;
}

/** One request as the engine sees it: token counts only, plus the prompt's block hash chain. */
export interface EngineRequest {
  readonly id: string;
  /** Prompt length in tokens (≥ 1). */
  readonly promptTokens: number;
  /** Output tokens to generate (≥ 1); the request finishes after exactly this many. */
  readonly outputTokens: number;
  /**
   * Chained hashes (non-negative integers) of the prompt's full blocks (`blockSize` tokens each), in order: entry i
   * identifies the prefix of (i+1)·blockSize tokens. Absent or shorter than the prompt means
   * the uncovered blocks cannot be shared (no invented cache hits).
   */
  readonly blockHashes?: readonly number[];
  /**
   * Orders requests that reach the engine at the same instant (lower first). Which of two
   * requests sent together arrives first depends on network timing; a key both the gateway's
   * request id and a simulation know makes the order the same in both. Absent: submission order.
   */
  readonly arrivalKey?: string;
}

/** Why a request left the engine. */
export type EngineFinishReason = 'length' | 'cancelled' | 'rejected';

/** Outcome of one request, reported once through {@link EngineRequestEvents.onFinish}. */
export interface EngineRequestResult {
  readonly id: string;
  readonly reason: EngineFinishReason;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** Prompt tokens served from the prefix cache at (first) admission. */
  readonly cachedTokens: number;
  /** Clock times (ms): submitted, first scheduled, first token, finished. NaN when not reached. */
  readonly arrivalMs: number;
  readonly firstScheduledMs: number;
  readonly firstTokenMs: number;
  readonly finishedMs: number;
  /** Times this request was preempted (recompute). */
  readonly preemptions: number;
}

/** Callbacks for one request. All are invoked synchronously from clock timers. */
export interface EngineRequestEvents {
  /** Called at the end of each step that produced output tokens for this request (count ≥ 1). */
  onTokens?(count: number, nowMs: number): void;
  /** Called exactly once when the request leaves the engine. */
  onFinish?(result: EngineRequestResult): void;
}

/** Point-in-time counters and gauges, named after the vLLM metrics they feed. */
export interface EngineStats {
  /** vllm:num_requests_running */
  readonly running: number;
  /** vllm:num_requests_waiting */
  readonly waiting: number;
  /** Requests received but still in the API server (`requestOverheadMs`): in neither count above. */
  readonly pending: number;
  /** vllm:kv_cache_usage_perc (0..1): blocks in use by requests / total blocks. */
  readonly kvUsage: number;
  /** vllm:prefix_cache_queries_total (tokens looked up). */
  readonly prefixQueryTokens: number;
  /** vllm:prefix_cache_hits_total (tokens found). */
  readonly prefixHitTokens: number;
  /** vllm:prompt_tokens_total (prompt tokens computed, excluding cache hits). */
  readonly promptTokensComputed: number;
  /** vllm:generation_tokens_total */
  readonly generationTokens: number;
  /** vllm:num_preemptions_total */
  readonly preemptions: number;
  /** vllm:request_success_total (finished with reason `length`). */
  readonly finishedRequests: number;
  /** Steps executed so far. */
  readonly steps: number;
  /** Whether the engine is past its cold start and serving. */
  readonly ready: boolean;
}
