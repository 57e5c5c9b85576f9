/**
 * @module engine-model/engine-model
 * The performance model of one inference engine replica, iteration by iteration, as vLLM V1
 * schedules it: continuous batching under `maxNumSeqs` and a per-step token budget
 * (`maxNumBatchedTokens`, chunked prefill), running requests first and then waiting ones in FCFS
 * order, a paged KV cache with automatic prefix caching (kv-cache.ts), preemption by recompute of the
 * newest running request when a block cannot be had, and each step's duration from the calibrated
 * formula (step-time.ts). No HTTP and no timers of its own: time only through the injected Clock, so
 * the simulator runs it on virtual time and the emulated engine on the live clock.
 *
 * One uniform rule drives a request: it holds T = prompt + generated tokens; each step computes up
 * to T − computed of them (a prefill chunk, a whole recompute after preemption, or the one new token
 * of a decode), and a step that brings `computed` to T samples one output token.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { KvCache } from './kv-cache.js';
import { prefillPairs, stepTimeMs } from './step-time.js';
import type {
  EngineProfile,
  EngineRequest,
  EngineRequestEvents,
  EngineRequestResult,
  EngineStats,
} from './types.js';

/** Options of one modelled replica. */
export interface EngineModelOptions {
  /** Start cold: serve nothing until `profile.coldStartMs` after `startMs` (requests wait). */
  readonly coldStart?: boolean;
  /** When the replica is started (clock time; default now): a replica added later in a simulation. */
  readonly startMs?: number;
  /** Waiting requests at most; {@link EngineModel.submit} refuses more. */
  readonly maxWaiting?: number;
}

/** `pending`: submitted, still in the API server (see `requestOverheadMs`). */
type Phase = 'pending' | 'waiting' | 'running' | 'done';

interface Seq {
  readonly req: EngineRequest;
  readonly events: EngineRequestEvents;
  phase: Phase;
  /** Output tokens sampled so far. */
  generated: number;
  /** Tokens whose KV is computed and held. */
  computed: number;
  /** Block ids held, in token order. */
  blocks: number[];
  /** Prompt blocks registered in the prefix cache so far. */
  registered: number;
  /** Prompt tokens found in the prefix cache at first admission. */
  cachedTokens: number;
  preemptions: number;
  readonly arrivalMs: number;
  firstScheduledMs: number;
  firstTokenMs: number;
}

interface Scheduled {
  seq: Seq;
  tokens: number;
}

/** One replica of an engine, modelled. */
export class EngineModel {
  readonly profile: EngineProfile;
  private readonly clock: Clock;
  private readonly kv: KvCache;
  private readonly maxWaiting: number;
  private readonly byId = new Map<string, Seq>();
  /** FCFS waiting queue; cancelled entries are skipped lazily (`waitingCount` stays exact). */
  private waiting: Seq[] = [];
  private waitingHead = 0;
  private waitingCount = 0;
  /** A step's sequences that produced a token, told after the next step is scheduled (reused). */
  private readonly outbox: Seq[] = [];
  private running: Seq[] = [];
  private ready: boolean;
  private stepTimer: TimerHandle | null = null;
  private inStep = false;
  private batch: Scheduled[] = [];
  private readonly counters = {
    prefixQueryTokens: 0,
    prefixHitTokens: 0,
    promptTokensComputed: 0,
    generationTokens: 0,
    preemptions: 0,
    finishedRequests: 0,
    steps: 0,
  };

  constructor(profile: EngineProfile, clock: Clock, options: EngineModelOptions = {}) {
    this.profile = profile;
    this.clock = clock;
    this.kv = new KvCache(profile.numKvBlocks);
    this.maxWaiting = options.maxWaiting ?? Number.POSITIVE_INFINITY;
    this.ready = !options.coldStart;
    if (options.coldStart) {
      const readyAt = (options.startMs ?? clock.now()) + profile.coldStartMs;
      clock.setTimer(readyAt - clock.now(), () => {
        this.ready = true;
        this.wake();
      });
    }
  }

  /**
   * Queues a request. Returns false, and calls nothing, when the waiting queue is full or the
   * request can never fit (prompt + output over `maxModelLen`, or more KV than the whole cache).
   */
  submit(req: EngineRequest, events: EngineRequestEvents = {}): boolean {
    const p = this.profile;
    const total = req.promptTokens + req.outputTokens;
    if (this.waitingCount >= this.maxWaiting || this.byId.has(req.id)) return false;
    if (req.promptTokens < 1 || req.outputTokens < 1 || total > p.maxModelLen) return false;
    if (Math.ceil((total - 1) / p.blockSize) > p.numKvBlocks) return false;
    const seq: Seq = {
      req,
      events,
      phase: 'pending',
      generated: 0,
      computed: 0,
      blocks: [],
      registered: 0,
      cachedTokens: 0,
      preemptions: 0,
      arrivalMs: this.clock.now(),
      firstScheduledMs: Number.NaN,
      firstTokenMs: Number.NaN,
    };
    this.byId.set(req.id, seq);
    const overhead = p.requestOverheadMs ?? 0;
    if (overhead > 0) {
      // The API server's share of the request: it reaches the queue `overhead` later.
      seq.phase = 'pending';
      this.clock.setTimer(overhead, () => {
        if (seq.phase === 'pending') this.enqueue(seq);
      });
    } else this.enqueue(seq);
    return true;
  }

  /** Puts a submitted request in the FCFS waiting queue (same-instant arrivals by `arrivalKey`). */
  private enqueue(seq: Seq): void {
    seq.phase = 'waiting';
    this.waiting.push(seq);
    this.waitingCount++;
    const key = seq.req.arrivalKey;
    if (key !== undefined) {
      for (let i = this.waiting.length - 1; i > this.waitingHead; i--) {
        const prev = this.waiting[i - 1]!;
        const k = prev.req.arrivalKey;
        if (prev.arrivalMs !== seq.arrivalMs || k === undefined || k <= key) break;
        this.waiting[i] = prev;
        this.waiting[i - 1] = seq;
      }
    }
    this.wake();
  }

  /** Ends a request early (client gone): frees its batch slot and KV. No-op when unknown or done. */
  cancel(id: string): void {
    const seq = this.byId.get(id);
    if (seq === undefined) return;
    if (seq.phase === 'waiting') this.waitingCount--;
    else if (seq.phase === 'running') this.leaveRunning(seq);
    this.finish(seq, 'cancelled', this.clock.now());
  }

  /** Counters and gauges named after the vLLM metrics they feed. */
  stats(): EngineStats {
    return {
      running: this.running.length,
      waiting: this.waitingCount,
      pending: this.byId.size - this.running.length - this.waitingCount,
      kvUsage: this.kv.used / this.kv.numBlocks,
      ...this.counters,
      ready: this.ready,
    };
  }

  /** Whether a full prompt block with this chained hash is in the prefix cache. */
  isCached(blockHash: number): boolean {
    return this.kv.has(blockHash);
  }

  // ---------------------------------------------------------------- the engine loop

  /** Starts the loop on the next timer turn when it is idle and there is work. */
  private wake(): void {
    if (this.stepTimer !== null || this.inStep || !this.ready) return;
    if (this.running.length === 0 && this.waitingCount === 0) return;
    this.stepTimer = this.clock.setTimer(0, () => {
      this.stepTimer = null;
      this.startStep(this.clock.now());
    });
  }

  /**
   * Schedules one step beginning at `startMs` and sets the timer for its end. `startMs` is the
   * intended start (the previous step's end), so late-firing live timers do not accumulate drift.
   */
  private startStep(startMs: number): void {
    const batch = this.schedule(startMs);
    if (batch.length === 0) return; // idle until the next submit
    this.batch = batch;
    let tokens = 0;
    let pairs = 0;
    let ctx = 0;
    for (const { seq, tokens: n } of batch) {
      tokens += n;
      if (n === 1 && seq.generated > 0 && seq.computed + 1 === this.total(seq)) ctx += seq.computed + 1;
      else pairs += prefillPairs(n, seq.computed);
    }
    const endMs =
      startMs +
      stepTimeMs(this.profile, { requests: batch.length, tokens, prefillPairs: pairs, decodeContext: ctx });
    this.stepTimer = this.clock.setTimer(endMs - this.clock.now(), () => {
      this.stepTimer = null;
      this.endStep(endMs);
    });
  }

  /**
   * Applies a finished step: KV computed, prefix blocks registered, tokens sampled, requests done.
   * The next step is scheduled before anyone hears of this one's tokens, as in vLLM V1, whose engine
   * core moves on while the outputs travel to the clients: a request sent in reaction to a finish
   * joins the step after next, live and simulated alike.
   */
  private endStep(endMs: number): void {
    this.inStep = true;
    this.counters.steps++;
    const batch = this.batch;
    this.batch = [];
    const out = this.outbox;
    for (const { seq, tokens } of batch) {
      if (seq.phase !== 'running') continue; // cancelled during the step
      const promptLeft = Math.max(0, seq.req.promptTokens - seq.computed);
      this.counters.promptTokensComputed += Math.min(tokens, promptLeft);
      seq.computed += tokens;
      this.registerPromptBlocks(seq);
      if (seq.computed < this.total(seq)) continue;
      seq.generated++;
      this.counters.generationTokens++;
      if (seq.generated === 1) seq.firstTokenMs = endMs;
      out.push(seq);
      if (seq.generated >= seq.req.outputTokens) {
        this.leaveRunning(seq);
        this.counters.finishedRequests++;
        seq.phase = 'done';
        this.byId.delete(seq.req.id);
      }
    }
    this.inStep = false;
    this.startStep(endMs);
    for (let i = 0; i < out.length; i++) {
      const seq = out[i]!;
      seq.events.onTokens?.(1, endMs);
      if (seq.phase === 'done' && seq.generated >= seq.req.outputTokens)
        this.notifyFinish(seq, 'length', endMs);
    }
    out.length = 0;
  }

  /** vLLM V1's scheduler: running requests first (preempting the newest when KV runs out), then FCFS admission. */
  private schedule(nowMs: number): Scheduled[] {
    const p = this.profile;
    let budget = p.maxNumBatchedTokens;
    const out: Scheduled[] = [];
    let preempted = false;

    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i]!;
      const n = Math.min(this.total(seq) - seq.computed, budget);
      const need = Math.ceil((seq.computed + n) / p.blockSize) - seq.blocks.length;
      let victimIsSelf = false;
      while (need > this.kv.free) {
        const victim = this.running[this.running.length - 1]!;
        this.preempt(victim);
        preempted = true;
        if (victim === seq) {
          victimIsSelf = true;
          break;
        }
      }
      if (victimIsSelf) break;
      if (need > 0) this.kv.allocate(need, seq.blocks);
      out.push({ seq, tokens: n });
      budget -= n;
    }

    while (!preempted && budget > 0 && this.running.length < p.maxNumSeqs && this.waitingCount > 0) {
      const seq = this.peekWaiting();
      const total = this.total(seq);
      // At least the last token is computed, as in vLLM, so a fully cached prompt still samples.
      const hit = this.kv.lookup(seq.req.blockHashes, Math.floor((total - 1) / p.blockSize));
      const cached = hit.length * p.blockSize;
      const n = Math.min(total - cached, budget);
      const need = Math.ceil((cached + n) / p.blockSize) - hit.length;
      if (need > this.kv.free - this.kv.countFree(hit)) break; // head-of-line waits for KV
      this.popWaiting();
      seq.registered = hit.length; // before `allocate` appends the fresh blocks to the same array
      this.kv.acquire(hit);
      seq.blocks = hit;
      this.kv.allocate(need, seq.blocks);
      seq.computed = cached;
      this.counters.prefixQueryTokens += total;
      this.counters.prefixHitTokens += cached;
      if (Number.isNaN(seq.firstScheduledMs)) {
        // First admission (not a resume after preemption).
        seq.cachedTokens = cached;
        seq.firstScheduledMs = nowMs;
      }
      seq.phase = 'running';
      this.running.push(seq);
      out.push({ seq, tokens: n });
      budget -= n;
    }
    return out;
  }

  /** Recompute preemption: frees the request's KV (its registered prefix stays cached) and requeues it first. */
  private preempt(seq: Seq): void {
    this.running.pop();
    this.kv.release(seq.blocks);
    seq.blocks = [];
    seq.computed = 0;
    seq.registered = 0;
    seq.phase = 'waiting';
    seq.preemptions++;
    this.counters.preemptions++;
    if (this.waitingHead > 0) this.waiting[--this.waitingHead] = seq;
    else this.waiting.unshift(seq);
    this.waitingCount++;
  }

  /** Takes a running request out of the batch and releases its KV (it finished or was cancelled). */
  private leaveRunning(seq: Seq): void {
    this.running.splice(this.running.indexOf(seq), 1);
    this.kv.release(seq.blocks);
    seq.blocks = [];
  }

  private registerPromptBlocks(seq: Seq): void {
    const hashes = seq.req.blockHashes;
    if (hashes === undefined) return;
    const bs = this.profile.blockSize;
    const full = Math.min(hashes.length, Math.floor(Math.min(seq.computed, seq.req.promptTokens) / bs));
    for (let i = seq.registered; i < full; i++) this.kv.register(seq.blocks[i]!, hashes[i]!);
    if (full > seq.registered) seq.registered = full;
  }

  private total(seq: Seq): number {
    return seq.req.promptTokens + seq.generated;
  }

  private peekWaiting(): Seq {
    for (;;) {
      const seq = this.waiting[this.waitingHead]!;
      if (seq.phase === 'waiting') return seq;
      this.waitingHead++; // a cancelled entry
      this.compactWaiting();
    }
  }

  private popWaiting(): void {
    this.waitingHead++;
    this.waitingCount--;
    this.compactWaiting();
  }

  private compactWaiting(): void {
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private finish(seq: Seq, reason: EngineRequestResult['reason'], nowMs: number): void {
    seq.phase = 'done';
    this.byId.delete(seq.req.id);
    this.notifyFinish(seq, reason, nowMs);
  }

  private notifyFinish(seq: Seq, reason: EngineRequestResult['reason'], nowMs: number): void {
    seq.events.onFinish?.({
      id: seq.req.id,
      reason,
      promptTokens: seq.req.promptTokens,
      outputTokens: seq.generated,
      cachedTokens: seq.cachedTokens,
      arrivalMs: seq.arrivalMs,
      firstScheduledMs: seq.firstScheduledMs,
      firstTokenMs: seq.firstTokenMs,
      finishedMs: nowMs,
      preemptions: seq.preemptions,
    });
  }
}
