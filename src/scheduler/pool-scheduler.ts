/**
 * @module scheduler/pool-scheduler
 * The one piece of driving logic for a pool's admission queue, shared by the gateway and the
 * simulator: the pool driver implements {@link SchedulerHooks} with the pool's router and endpoints, and calls
 * `arrive` for each request, `pump` when capacity may have freed, `expire` from a single timer
 * set to the time `expire` last returned, and `onServed` as tokens are served. Both call it through
 * the pool driver (pool/driver.ts).
 *
 * ```
 * arrive ──► nothing waits ahead and tryStart ok? ──yes──► started
 *              │no
 *            offer to the AdmissionQueue ──► queued (maybe shedding a less urgent item)
 *              │refused
 *            drop(queue_full) ──► dropped
 *
 * pump ──► interactive lane: peek, tryStart, take … until tryStart fails
 *      ──► batch lane, only while no interactive item waits and within the batch headroom
 * ```
 */
import { assert } from '../core/assert.js';
import { AdmissionQueue } from './admission.js';
import { createOrder, type OrderName } from './orders/index.js';
import type { DropReason, QueueBounds, QueueItem } from './types.js';

export interface SchedulerHooks {
  /** Try to start `item` now (route it and send it). False when no endpoint can take it: every candidate is at its capacity gate. */
  tryStart(item: QueueItem): boolean;
  /**
   * The pool's requests in flight, its total concurrency limit (Σ endpoints'
   * gate), and how many of its requests are still prefilling (no first token yet), for the batch rules.
   */
  load(): { inFlight: number; limit: number; prefilling: number };
  /** The item left the queue without running; the caller answers 429 (or 503 when the pool has no usable endpoint) with Retry-After `retryAfterS`. */
  drop(item: QueueItem, reason: DropReason, retryAfterS: number): void;
}

export interface SchedulerOptions {
  readonly order: OrderName;
  readonly bounds: QueueBounds;
  /** Share of the pool's limit kept free of batch work (default 0.25): batch starts only while (inFlight + 1) ≤ (1 − batchHeadroom) × limit and no non-batch item waits. */
  readonly batchHeadroom?: number;
  /**
   * Batch starts only while no prompt is being prefilled anywhere in the pool (default true). A
   * batch prompt's prefill chunks share engine steps with whatever else is prefilling there, and
   * an interactive prompt's first token waits for those steps: idle capacity is capacity with no
   * prefill in progress, not merely free slots.
   */
  readonly batchOnlyWithoutPrefill?: boolean;
  /** priority order: a waiting item gains one class of urgency per agingMs (default 30000) so low classes cannot starve. */
  readonly agingMs?: number;
  /** edf: drop items whose deadline has passed instead of running them late (default true). */
  readonly dropLate?: boolean;
  /** vtc: per-tenant weights (default 1); served tokens are weighted input 1 : output 2 as in the VTC paper (wp=1, wq=2). */
  readonly tenantWeights?: Readonly<Record<string, number>>;
  /** sjf: cost of one output token in prompt tokens, in the job size prompt + k × predicted output (default 16). */
  readonly sjfOutputWeight?: number;
  /** sjf: wait (ms) after which an item goes before all younger ones, oldest first (default 60000). */
  readonly sjfMaxAgeMs?: number;
}

/** Retry-After bounds (s): at least a second, at most a minute. */
const RETRY_AFTER_MIN_S = 1;
const RETRY_AFTER_MAX_S = 60;
/** Absorbs rounding in (1 − headroom) × limit, e.g. (1 − 0.9) × 10 = 0.9999999999999998. */
const EPSILON = 1e-9;

/** A pool's admission queue and the rules that drive it; see the module comment. */
export class PoolScheduler {
  private readonly queue: AdmissionQueue;
  private readonly batchShare: number;
  private readonly batchWithoutPrefill: boolean;
  private pumping = false;
  private pumpAgain = false;

  constructor(
    opts: SchedulerOptions,
    private readonly hooks: SchedulerHooks,
  ) {
    const headroom = opts.batchHeadroom ?? 0.25;
    assert(headroom >= 0 && headroom <= 1, `batchHeadroom must be within [0, 1], got ${headroom}`);
    this.batchShare = 1 - headroom;
    this.batchWithoutPrefill = opts.batchOnlyWithoutPrefill ?? true;
    this.queue = new AdmissionQueue(
      () => createOrder(opts.order, opts),
      opts.bounds,
      (item, reason) => hooks.drop(item, reason, this.retryAfterS(item)),
      { dropLate: opts.order === 'edf' && (opts.dropLate ?? true) },
    );
  }

  /** Items waiting (all classes). */
  get waiting(): number {
    return this.queue.size;
  }

  /**
   * A request arrives at `nowMs`: started at once when nothing is waiting ahead of it and capacity
   * allows (no queueing cost on the fast path), else queued, else dropped — `hooks.drop` has then
   * been called with `queue_full`.
   */
  arrive(item: QueueItem, nowMs: number): 'started' | 'queued' | 'dropped' {
    const batch = item.priority === 'batch';
    const clear = batch ? this.queue.size === 0 && this.batchFits() : this.queue.waiting('interactive') === 0;
    if (clear && this.hooks.tryStart(item)) return 'started';
    if (this.queue.offer(item, nowMs)) return 'queued';
    this.hooks.drop(item, 'queue_full', this.retryAfterS(item));
    return 'dropped';
  }

  /**
   * Capacity may have freed (a request finished, an endpoint recovered): start waiting items in
   * order while hooks.tryStart succeeds (batch only within its headroom). A call from inside a hook
   * is folded into the running one: it runs again after it, if that one started anything (so a hook
   * that pumps on every call cannot loop forever).
   */
  pump(nowMs: number): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      let started: number;
      do {
        this.pumpAgain = false;
        started = this.startWhileCapacity(nowMs, 'interactive');
        if (this.queue.waiting('interactive') === 0) started += this.startWhileCapacity(nowMs, 'batch');
      } while (this.pumpAgain && started > 0);
    } finally {
      this.pumping = false;
    }
  }

  /** Drops items past their wait bound or (edf with dropLate) past their deadline; returns the next clock time an item would expire (+Infinity if none), for the caller's single timer. */
  expire(nowMs: number): number {
    return this.queue.expire(nowMs);
  }

  /** The client went away while waiting: the item leaves the queue, and no drop is reported. */
  cancel(id: string): boolean {
    return this.queue.remove(id) !== undefined;
  }

  /**
   * Tokens served to a tenant (forwarded to the order: VTC counters). Report a request's prompt
   * tokens when it starts (from inside tryStart, so the next pick of the same pump sees them) and
   * output tokens when they are known (the pool driver: at completion).
   */
  onServed(tenant: string, promptTokens: number, outputTokens: number): void {
    this.queue.onServed(tenant, promptTokens, outputTokens);
  }

  /**
   * Retry-After for a dropped item: its class's wait bound in whole seconds, within [1, 60] s. A
   * queue that is full or has timed an item out frees a place within about that long, as waiting
   * items start or time out themselves; claiming more precision would be guessing.
   */
  retryAfterS(item: QueueItem): number {
    const s = Math.ceil(this.queue.maxWaitMs(item.priority) / 1000);
    return Math.min(RETRY_AFTER_MAX_S, Math.max(RETRY_AFTER_MIN_S, s));
  }

  /** Starts `lane`'s items in order until one cannot start; returns how many started. */
  private startWhileCapacity(nowMs: number, lane: 'interactive' | 'batch'): number {
    let started = 0;
    for (let item = this.queue.peek(nowMs, lane); item !== undefined; item = this.queue.peek(nowMs, lane)) {
      if (lane === 'batch' && !(this.queue.waiting('interactive') === 0 && this.batchFits())) break;
      if (!this.hooks.tryStart(item)) break;
      this.queue.take(item, nowMs);
      started++;
    }
    return started;
  }

  /**
   * Whether one more batch request fits: no prefill in progress (unless disabled) and
   * (inFlight + 1) ≤ (1 − batchHeadroom) × limit, or the pool is idle — without that exception a pool whose limit is below 1 / (1 − headroom), such as a
   * serial backend with a gate of one, would never run batch work at all.
   */
  private batchFits(): boolean {
    return batchFits(this.hooks.load(), 1 - this.batchShare, this.batchWithoutPrefill);
  }
}

/**
 * The batch rule: one more batch request may start when the pool is idle, or when no prompt is being
 * prefilled in it (with `withoutPrefill`) and (inFlight + 1) ≤ (1 − headroom) × limit. Exported so a
 * caller that starts a batch request without queueing it applies the same rule.
 */
export function batchFits(
  load: { readonly inFlight: number; readonly limit: number; readonly prefilling: number },
  headroom: number,
  withoutPrefill: boolean,
): boolean {
  if (load.inFlight === 0) return true;
  if (withoutPrefill && load.prefilling > 0) return false;
  return load.inFlight + 1 <= (1 - headroom) * load.limit + EPSILON;
}
