/**
 * @module calibrate/probe
 * A short probing run against a live engine, bounded in time and in requests in flight:
 *
 * 1. Facts: the model card (max_model_len), vLLM's KV cache geometry from /metrics, and the fastest
 *    round trip of GET /models (network and HTTP, subtracted from every time to first token).
 * 2. Warm-up: two prompts of known word counts give the tokenizer's tokens per word.
 * 3. Prefill sweep, concurrency 1 (half the time): prompts from 16 tokens up to four token
 *    budgets (chunked prefills), log-spaced, one output token each; repeated in shuffled order,
 *    the longest twice as often.
 *    Their times to first token carry R, b, C_pf and the knee of T_lin.
 * 4. Decode grid (the rest): batches of B requests (B = 1, 4, 16, … up to --max-concurrency) at a
 *    short and a long context per request, so that batch size and total context vary apart; each
 *    request streams the same number of tokens. Their inter-token times carry T0 + W, t_req, C_dec.
 *
 * Every prompt starts with a nonce unique to the run and the request, so no prompt shares a prefix
 * block with another and the prefix cache never hides a prefill. The engine must be serving nothing
 * else meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { SeededRng } from '../core/rng.js';
import { EngineClient, type EngineFacts, ProbeError } from './client.js';
import type { BatchTimeline, RequestTimeline } from './samples.js';

export interface ProbeOptions {
  /** Base URL with the API prefix, e.g. `http://10.0.0.5:8000/v1`. */
  readonly baseUrl: string;
  readonly model: string;
  readonly apiKey?: string;
  /** Wall-clock budget of the whole probe, s. */
  readonly maxSeconds: number;
  /** Requests in flight at most (the largest decode batch). */
  readonly maxConcurrency: number;
  /** The engine's per-step token budget (max_num_batched_tokens). */
  readonly maxNumBatchedTokens: number;
  /** Overrides the model card's max_model_len. */
  readonly maxModelLen?: number;
  /** KV cache size in tokens, to bound decode contexts; default: from /metrics, else unbounded. */
  readonly kvTokens?: number;
  /** Output tokens of each decode request (default 64). */
  readonly decodeTokens?: number;
  readonly log?: (line: string) => void;
}

export interface ProbeResult {
  readonly facts: EngineFacts;
  readonly roundTripMs: number;
  readonly batches: readonly BatchTimeline[];
  readonly requests: number;
  readonly elapsedMs: number;
}

/** Share of the budget the prefill sweep gets; the decode grid has the rest. */
const PREFILL_SHARE = 0.5;
const SWEEP_POINTS = 12;
const SHORT_CONTEXT = 64;
/** A decode batch prefills at most this many token budgets before its window opens. */
const PREFILL_BUDGETS_PER_BATCH = 4;

/** Common English words: about one token each in most vocabularies (and in the emulator's). */
const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but ' +
  'have an they you were her she there been one all we their has would when if so no what up out ' +
  'them some could more into time only new other than then also two may way like these first any'
).split(' ');

/** Prompts of a wanted token count, each opening with a nonce of its own. */
class PromptMaker {
  private readonly run = randomUUID().slice(0, 8);
  private count = 0;
  private intercept = 0;
  private perWord = 1;

  words(n: number): string {
    let text = `${this.run}${this.count++}:`;
    for (let i = 0; i < n; i++) text += ` ${WORDS[(i * 7 + this.count) % WORDS.length]}`;
    return text;
  }

  /** Learns tokens = intercept + perWord·words from two measured prompts. */
  learn(a: { words: number; tokens: number }, b: { words: number; tokens: number }): void {
    this.perWord = Math.max(0.2, (b.tokens - a.tokens) / (b.words - a.words));
    this.intercept = a.tokens - this.perWord * a.words;
  }

  tokens(n: number): string {
    return this.words(Math.max(1, Math.round((n - this.intercept) / this.perWord)));
  }
}

/** The probe's shared state: client, prompts, deadline, what has been measured. */
class Run {
  readonly prompts = new PromptMaker();
  readonly batches: BatchTimeline[] = [];
  readonly startMs = performance.now();
  readonly deadlineMs: number;
  readonly stop = new AbortController();
  requests = 0;

  constructor(
    readonly client: EngineClient,
    readonly o: ProbeOptions,
  ) {
    this.deadlineMs = this.startMs + o.maxSeconds * 1000;
    setMaxListeners(0, this.stop.signal); // every request in flight listens for the deadline
  }

  left(): number {
    return this.deadlineMs - performance.now();
  }

  /**
   * Sends `prompts` together, each for `maxTokens` tokens, and waits for all; undefined when the
   * deadline cut the batch short. Records the batch, as the prefill sweep's or the decode grid's,
   * unless it is the warm-up.
   */
  async batch(
    prompts: readonly string[],
    maxTokens: number,
    record: 'sweep' | 'decode' | 'no',
  ): Promise<BatchTimeline | undefined> {
    this.requests += prompts.length;
    let requests: RequestTimeline[];
    try {
      requests = await Promise.all(prompts.map((p) => this.client.complete(p, maxTokens, this.stop.signal)));
    } catch (err) {
      if (this.stop.signal.aborted) return undefined;
      this.stop.abort(); // the rest of the batch goes too
      throw err;
    }
    const batch = { requests, sweep: record === 'sweep' };
    if (record !== 'no') this.batches.push(batch);
    return batch;
  }
}

/** Runs the probe. Requests still in flight at the deadline are cancelled and their batch dropped. */
export async function probe(o: ProbeOptions): Promise<ProbeResult> {
  const client = new EngineClient(o.baseUrl, o.model, o.apiKey, o.maxConcurrency + 1);
  const run = new Run(client, o);
  const timer = setTimeout(() => run.stop.abort(), Math.max(0, run.left()));
  try {
    const facts = await engineFacts(run);
    const roundTripMs = await roundTrip(client);
    const limits = sizeLimits(o, facts);
    await warmUp(run);
    const prefillUntil = run.startMs + o.maxSeconds * 1000 * PREFILL_SHARE;
    await prefillSweep(run, sweepLengths(limits.maxPrompt), prefillUntil);
    o.log?.(`prefill sweep: ${run.batches.length} requests`);
    const before = run.batches.length;
    await decodeGrid(run, decodeBatches(o, limits));
    o.log?.(`decode grid: ${run.batches.length - before} batches`);
    return {
      facts,
      roundTripMs,
      batches: run.batches,
      requests: run.requests,
      elapsedMs: performance.now() - run.startMs,
    };
  } finally {
    clearTimeout(timer);
    await client.close();
  }
}

async function engineFacts(run: Run): Promise<EngineFacts> {
  const { maxModelLen } = await run.client.modelsRoundTrip();
  const cache = await run.client.cacheInfo();
  return { ...(maxModelLen !== undefined ? { maxModelLen } : {}), ...cache };
}

/**
 * The fastest of ten GET /models round trips, ms: the one least delayed by a busy host, as is the
 * fastest time to first token per length that it is subtracted from (samples.ts).
 */
async function roundTrip(client: EngineClient): Promise<number> {
  let fastest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) fastest = Math.min(fastest, (await client.modelsRoundTrip()).ms);
  return fastest;
}

export interface Limits {
  /** Longest prompt of the prefill sweep. */
  readonly maxPrompt: number;
  /** Longest context per request of the decode grid. */
  readonly maxContext: number;
  /** KV tokens a decode batch may fill (half the cache, so nothing is preempted). */
  readonly kvBudget: number;
}

/** The probe's size limits; throws when the engine and the options leave the KV cache or max_model_len unknown. */
function sizeLimits(o: ProbeOptions, facts: EngineFacts): Limits {
  const modelLen = o.maxModelLen ?? facts.maxModelLen;
  if (modelLen === undefined)
    throw new ProbeError('the model card has no max_model_len: give --max-model-len');
  const kvTokens =
    o.kvTokens ?? (facts.numGpuBlocks && facts.blockSize ? facts.numGpuBlocks * facts.blockSize : undefined);
  if (kvTokens === undefined)
    throw new ProbeError(
      'the engine does not report its KV cache size (vllm:cache_config_info on /metrics): give --kv-tokens',
    );
  const decodeTokens = o.decodeTokens ?? 64;
  return {
    maxPrompt: Math.floor(
      Math.min(PREFILL_BUDGETS_PER_BATCH * o.maxNumBatchedTokens, modelLen - 8, 0.9 * kvTokens),
    ),
    maxContext: Math.floor(Math.min(4096, modelLen - decodeTokens - 8, 0.5 * kvTokens)),
    kvBudget: 0.5 * kvTokens,
  };
}

/** Two prompts of known word counts: the tokenizer's tokens per word, and a warm engine. */
async function warmUp(run: Run): Promise<void> {
  const measure = async (words: number) => {
    const b = await run.batch([run.prompts.words(words)], 1, 'no');
    if (b === undefined) throw new ProbeError('the time budget ran out during the warm-up');
    return { words, tokens: b.requests[0]!.promptTokens };
  };
  const small = await measure(32);
  const large = await measure(512);
  run.prompts.learn(small, large);
}

/** Log-spaced prompt lengths from 16 tokens to `max`. */
export function sweepLengths(max: number): number[] {
  const lo = Math.min(16, max);
  const out = Array.from({ length: SWEEP_POINTS }, (_, i) =>
    Math.round(lo * (max / lo) ** (i / (SWEEP_POINTS - 1))),
  );
  return [...new Set(out)];
}

/** Fisher–Yates with a seeded source: each pass in a new order, so slow drifts do not alias lengths. */
function shuffled<T>(xs: readonly T[], rng: SeededRng): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Passes over the sweep's lengths until `untilMs`. The longest prompts carry C_pf (attention grows
 * with the square of the length) and vary most from try to try (handling a long prompt costs the
 * host milliseconds, more when it is busy), so those from a quarter of the longest up get two
 * tries per pass.
 */
async function prefillSweep(run: Run, lengths: readonly number[], untilMs: number): Promise<void> {
  const rng = new SeededRng(1);
  const longest = Math.max(...lengths);
  const tries = [...lengths, ...lengths.filter((n) => n >= longest / 4)];
  for (;;) {
    for (const n of shuffled(tries, rng)) {
      if (performance.now() >= untilMs) return;
      if ((await run.batch([run.prompts.tokens(n)], 1, 'sweep')) === undefined) return;
    }
  }
}

interface DecodeBatch {
  readonly requests: number;
  readonly promptTokens: number;
}

/**
 * Batch sizes 1, 4, 16, … and the maximum, each at a short context and at the longest one whose
 * prefill fits a few token budgets and whose KV fits half the cache.
 */
export function decodeBatches(o: ProbeOptions, limits: Limits): DecodeBatch[] {
  const sizes: number[] = [];
  for (let b = 1; b < o.maxConcurrency; b *= 4) sizes.push(b);
  sizes.push(o.maxConcurrency);
  const out: DecodeBatch[] = [];
  const k = o.decodeTokens ?? 64;
  for (const b of sizes) {
    if (b * (SHORT_CONTEXT + k) > limits.kvBudget) break;
    out.push({ requests: b, promptTokens: SHORT_CONTEXT });
    const long = Math.floor(
      Math.min(
        limits.maxContext,
        (PREFILL_BUDGETS_PER_BATCH * o.maxNumBatchedTokens) / b,
        limits.kvBudget / b - k,
      ),
    );
    if (long >= 4 * SHORT_CONTEXT) out.push({ requests: b, promptTokens: long });
  }
  return out;
}

/**
 * Runs the grid over and over until the deadline. A batch is skipped when its last run says it
 * would not finish in time, so the budget is not spent on a batch that is then cut short.
 */
async function decodeGrid(run: Run, grid: readonly DecodeBatch[]): Promise<void> {
  const k = run.o.decodeTokens ?? 64;
  const lastMs = new Map<DecodeBatch, number>();
  const rng = new SeededRng(2);
  for (let pass = 0; ; pass++) {
    let ran = 0;
    for (const g of pass === 0 ? grid : shuffled(grid, rng)) {
      if (run.left() <= 0) return;
      if ((lastMs.get(g) ?? 0) > run.left()) continue;
      const t0 = performance.now();
      const prompts = Array.from({ length: g.requests }, () => run.prompts.tokens(g.promptTokens));
      if ((await run.batch(prompts, k, 'decode')) === undefined) return;
      lastMs.set(g, performance.now() - t0);
      ran++;
    }
    if (ran === 0) return;
  }
}
