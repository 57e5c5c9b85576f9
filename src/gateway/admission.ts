/**
 * @module gateway/admission
 * One pool's admission queue in the live gateway. The {@link PoolScheduler} (the driving logic the
 * simulator runs too) decides who starts and who waits; the hooks here route a request with the
 * pool's router and reserve its endpoint slot synchronously, so several starts in one pump each see
 * the slots taken before them.
 *
 * A request's slot, from reservation to release:
 *
 *   arrive ─► tryStart ─ route ok ─► inFlight++ ─► Slot ─► upstream ─► Slot.release(): inFlight--, pump
 *      │          └─ every endpoint at its gate ─► queued ─► (pump) tryStart …
 *      └─ queue full / shed / wait or deadline passed ─► 429 (503 when no endpoint is usable)
 *
 * The activator. A pool with an autoscaler ({@link PoolActivator}) that has no usable endpoint (scaled
 * to zero, or its replicas still starting) does not answer 503: it wakes the autoscaler and holds the
 * request in its queue, within the queue's bounds, until a replica is registered (the runtime rebuild
 * that adds it pumps the queue), as Knative's activator buffers requests for a revision at zero.
 *
 * Every reserved slot is released exactly once (asserted), whatever ends the attempt.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { assert } from '../core/assert.js';
import { type ErrorCode, SwitchyardError } from '../core/errors.js';
import type { SchedulingConfig } from '../config/schema.js';
import type { HttpEngine } from '../adapters/engines/http-engine.js';
import type { EndpointView } from '../framework/endpoint.js';
import type { RoutingRequest } from '../framework/routing.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import type { DecisionRecord, Router } from '../router/router.js';
import { PoolScheduler, type SchedulerOptions, batchFits } from '../scheduler/pool-scheduler.js';
import { OutputLengthPredictor, type PredictorFeatures } from '../scheduler/predictor.js';
import { type DropReason, PRIORITY_CLASSES, type PriorityClass, type QueueItem } from '../scheduler/types.js';
import { asSwitchyardError } from './errors.js';

/** The endpoints and router a pool routes over (re-pointed when a reload keeps the queue). */
export interface PoolTargets {
  readonly name: string;
  readonly engines: readonly HttpEngine[];
  readonly router: Router;
  /** The pool's autoscaler; null (or absent) for a pool of fixed endpoints. */
  readonly scaler?: PoolActivator | null;
}

/**
 * What the admission queue and the request path tell an autoscaled pool's scaler
 * (gateway/autoscaling.ts). Times are the gateway clock's ms; each call is O(1) and allocates nothing.
 */
export interface PoolActivator {
  /** A request reached the pool (its admission). */
  arrival(nowMs: number): void;
  /** Requests wait for a pool with no usable endpoint: ask for a replica now (Knative's poke). */
  wake(nowMs: number): void;
  /** A streamed request's first token, `ttftMs` after it reached the gateway. */
  firstToken(nowMs: number, ttftMs: number): void;
  /** A request answered with `outputTokens`, at `tpotMs` per token after the first (NaN: unknown). */
  completed(nowMs: number, tpotMs: number, outputTokens: number): void;
}

/** Response header naming why a request left the queue without running (a closed set: {@link DropReason}). */
export const DROP_REASON_HEADER = 'x-switchyard-drop-reason';

const DROP_CODES: Readonly<Record<Exclude<DropReason, 'cancelled'>, ErrorCode>> = {
  queue_full: 'SWY_ERR_QUEUE_FULL',
  shed: 'SWY_ERR_QUEUE_SHED',
  wait_timeout: 'SWY_ERR_QUEUE_TIMEOUT',
  deadline: 'SWY_ERR_DEADLINE_EXCEEDED',
};

/** A request as the pool's queue sees it, with what routing and the predictor need. */
export interface AdmissionRequest {
  readonly routing: RoutingRequest;
  /** Filled with the routing decision's explanation when debug logging is on. */
  readonly record: DecisionRecord | undefined;
  readonly priority: PriorityClass;
  readonly tenant: string;
  /** Predictor features; read only when the pool's order is `sjf`. */
  readonly features: () => PredictorFeatures;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

/** A reserved place on one endpoint: the request may send there; {@link release} frees it. */
export class Slot {
  private released = false;

  constructor(
    private readonly admission: PoolAdmission,
    readonly engine: HttpEngine,
    /** The router that routed it (it learns the outcome). */
    readonly router: Router,
    /** The routing decision's reason. */
    readonly reason: string,
  ) {}

  /** Frees the slot and lets the pool's queue start whoever fits now. */
  release(): void {
    assert(!this.released, `slot on ${this.engine.name} released twice`);
    this.released = true;
    this.engine.state.inFlight--;
    this.admission.released();
  }
}

interface Waiter {
  readonly req: AdmissionRequest;
  readonly item: QueueItem;
  slot: Slot | null;
  error: SwitchyardError | null;
  /** Resolves the promise a queued request awaits. */
  wake: (() => void) | null;
  onAbort: (() => void) | null;
}

type HistogramChild = ReturnType<GatewayMetrics['queueWait']['labels']>;

/** Queue item ids, unique across pools and config versions (a hand-over keeps them). */
let queueSeq = 0;

/** The admission queue of one pool. */
export class PoolAdmission {
  readonly scheduler: PoolScheduler;
  /** Null unless the order is `sjf`: nothing else reads a prediction. */
  readonly predictor: OutputLengthPredictor | null;
  readonly defaultPriority: PriorityClass;
  private readonly waiters = new Map<string, Waiter>();
  private readonly waitSeconds: Readonly<Record<PriorityClass, HistogramChild>>;
  private readonly deadlineMs: number;
  private readonly batchHeadroom: number;
  private readonly batchWithoutPrefill: boolean;
  private timer: TimerHandle | null = null;
  private timerAtMs = Number.POSITIVE_INFINITY;
  /** The admission that took over this pool's queue on a reload; releases pump it. */
  private successor: PoolAdmission | null = null;
  /** A reload removed the pool. */
  private closed = false;

  constructor(
    private targets: PoolTargets,
    /** The config it was built from; a reload with an equal one keeps this admission. */
    readonly configKey: string,
    cfg: SchedulingConfig,
    private readonly clock: Clock,
    private readonly metrics: GatewayMetrics,
  ) {
    this.scheduler = new PoolScheduler(schedulerOptions(cfg), {
      tryStart: (item) => this.tryStart(item),
      load: () => this.load(),
      drop: (item, reason, retryAfterS) => this.dropped(item, reason, retryAfterS),
    });
    this.predictor = cfg.queue === 'sjf' ? new OutputLengthPredictor() : null;
    this.defaultPriority = cfg.defaultPriority;
    this.deadlineMs = cfg.ttftDeadlineMs;
    this.batchHeadroom = cfg.batchHeadroom;
    this.batchWithoutPrefill = cfg.batchOnlyWithoutPrefill;
    const model = targets.name;
    this.waitSeconds = Object.fromEntries(
      PRIORITY_CLASSES.map((c) => [c, metrics.queueWait.labels({ model, class: c })]),
    ) as Record<PriorityClass, HistogramChild>;
  }

  get name(): string {
    return this.targets.name;
  }

  /** Requests waiting in the queue. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Waiting requests by class (the queue-length gauge, read at scrape time). */
  waitingByClass(): Record<PriorityClass, number> {
    const out: Record<PriorityClass, number> = { high: 0, normal: 0, low: 0, batch: 0 };
    for (const w of this.waiters.values()) out[w.item.priority]++;
    return out;
  }

  /**
   * A request's first attempt: a slot now, or after waiting in the queue. With `queue` false (a
   * tier pool with a fallback after it) a saturated pool throws SWY_ERR_OVERLOADED at once instead.
   * Throws the 429/503 of a drop; resolves null when the client left while waiting.
   */
  admit(req: AdmissionRequest, queue: boolean): Promise<Slot | null> {
    // A request that began under an older config version joins the queue that serves the pool now.
    return this.live().admitHere(req, queue);
  }

  private async admitHere(req: AdmissionRequest, queue: boolean): Promise<Slot | null> {
    if (this.closed) throw poolRemoved(this.name);
    const now = this.clock.now();
    const scaler = this.targets.scaler ?? null;
    scaler?.arrival(now);
    if (!this.usable()) {
      if (scaler === null) throw noUsableEndpoint(this.name);
      scaler.wake(now);
      // A tier pool with a pool after it does not wait for a cold start: the next pool serves the
      // request while this one starts a replica.
      if (!queue) throw noUsableEndpoint(this.name);
    }
    if (!queue) return this.startNow(req);
    const item: QueueItem = {
      // Not the request id: a client may send the same x-request-id on concurrent requests.
      id: String(++queueSeq),
      arrivalMs: now,
      tenant: req.tenant,
      priority: req.priority,
      promptTokens: req.routing.promptTokensEstimate,
      predictedOutputTokens: this.predictor === null ? 0 : this.predictor.predict(req.features()),
      deadlineMs: now + this.deadlineMs,
    };
    const w: Waiter = { req, item, slot: null, error: null, wake: null, onAbort: null };
    this.waiters.set(item.id, w);
    if (this.scheduler.arrive(item, now) === 'queued') await this.wait(w);
    if (w.error !== null) throw w.error;
    return w.slot;
  }

  /**
   * A retry after an upstream failure: routed at once, never queued (the request already waited its
   * turn). Throws SWY_ERR_OVERLOADED / SWY_ERR_NO_HEALTHY_ENDPOINT when nothing can take it.
   */
  retry(req: AdmissionRequest): Slot {
    return this.live().reserve(req, false);
  }

  /**
   * A request answered with `outputTokens`: its tenant's fairness counter (VTC) is charged for them
   * (its prompt was charged when it started) and the length predictor learns.
   */
  served(req: AdmissionRequest, outputTokens: number): void {
    const a = this.live();
    a.scheduler.onServed(req.tenant, 0, outputTokens);
    a.predictor?.learn(req.features(), outputTokens);
  }

  /** Capacity may have freed (an endpoint recovered, a scrape lowered its load): start who fits. */
  pump(): void {
    if (this.waiters.size > 0) this.scheduler.pump(this.clock.now());
  }

  /** A reload keeps this queue: route over the new version's endpoints from now on. */
  retarget(targets: PoolTargets): void {
    assert(targets.name === this.targets.name, 'an admission queue stays with its pool');
    this.targets = targets;
    this.pump();
  }

  /**
   * A reload replaced this pool's scheduling: the waiting requests move to `next` in arrival order
   * (keeping their arrival times, so no wait restarts), and releases of slots taken here pump it.
   */
  handOver(next: PoolAdmission): void {
    this.successor = next;
    this.stopTimer();
    const now = this.clock.now();
    for (const w of [...this.waiters.values()]) {
      this.scheduler.cancel(w.item.id);
      this.waiters.delete(w.item.id);
      next.waiters.set(w.item.id, w);
      next.scheduler.arrive(w.item, now); // started, queued or dropped there: `next` settles it
    }
    next.rearm(now);
  }

  /** The pool is gone (a reload removed it): every waiting request gets 503. */
  close(): void {
    this.closed = true;
    this.stopTimer();
    for (const w of [...this.waiters.values()]) {
      this.scheduler.cancel(w.item.id);
      this.settle(w, null, poolRemoved(this.name));
    }
  }

  /** Called by {@link Slot.release}. */
  released(): void {
    this.live().pump();
  }

  /**
   * A request of this pool saw its first token (the router's ledger no longer counts it as
   * prefilling): an endpoint at its `maxPrefilling` gate may take the next waiting request.
   */
  firstToken(): void {
    const a = this.live();
    if (a.waiters.size > 0 && a.targets.engines.some(prefillGated)) a.pump();
  }

  private live(): PoolAdmission {
    let a: PoolAdmission = this;
    while (a.successor !== null) a = a.successor;
    return a;
  }

  private async wait(w: Waiter): Promise<void> {
    this.rearm(this.clock.now());
    const signal = w.req.signal;
    await new Promise<void>((resolve) => {
      w.wake = resolve;
      w.onAbort = () => this.cancelled(w);
      signal.addEventListener('abort', w.onAbort, { once: true });
      if (signal.aborted) this.cancelled(w);
    });
  }

  /** The client left while waiting: out of the queue, counted once; the caller answers 499. */
  private cancelled(w: Waiter): void {
    const a = this.queueOf(w);
    if (a === null) return;
    a.scheduler.cancel(w.item.id);
    a.dropCounter('cancelled').inc();
    a.settle(w, null, null);
    a.rearm(this.clock.now());
  }

  /** The admission whose queue holds `w` now (a hand-over moves it), or null once it left. */
  private queueOf(w: Waiter): PoolAdmission | null {
    for (let a: PoolAdmission | null = this; a !== null; a = a.successor) {
      if (a.waiters.get(w.item.id) === w) return a;
    }
    return null;
  }

  private tryStart(item: QueueItem): boolean {
    const w = this.waiters.get(item.id);
    assert(w !== undefined, `the scheduler started ${item.id}, which is not waiting`);
    // The activator holds the request until a replica of the autoscaled pool is registered.
    if ((this.targets.scaler ?? null) !== null && !this.usable()) return false;
    let slot: Slot;
    try {
      slot = this.reserve(w.req, true);
    } catch (err) {
      const e = asSwitchyardError(err);
      if (e.code === 'SWY_ERR_OVERLOADED') return false;
      // Nothing healthy left (or a bug): the request leaves the queue with that error.
      this.settle(w, null, e);
      return true;
    }
    this.waitSeconds[item.priority].observe((this.clock.now() - item.arrivalMs) / 1000);
    this.settle(w, slot, null);
    return true;
  }

  /** The fast path of a request that must not queue: start now or throw SWY_ERR_OVERLOADED. */
  private startNow(req: AdmissionRequest): Slot {
    if (this.waiters.size > 0) throw saturated(this.name, 'requests are waiting for it');
    if (req.priority === 'batch') {
      // The scheduler's batch rule, for a request it never sees.
      if (!batchFits(this.load(), this.batchHeadroom, this.batchWithoutPrefill))
        throw saturated(this.name, 'it has no idle capacity for batch work');
    }
    const slot = this.reserve(req, true);
    this.waitSeconds[req.priority].observe(0);
    return slot;
  }

  /**
   * Routes `req` and takes the chosen endpoint's slot at once; throws the router's error. A start
   * (not a retry) charges the tenant's prompt to the fairness counters now, so the next pick of the
   * same pump sees it.
   */
  private reserve(req: AdmissionRequest, start: boolean): Slot {
    const { engines, router } = this.targets;
    const views = new Array<EndpointView>(engines.length);
    for (let i = 0; i < engines.length; i++) views[i] = engines[i]!.state.view(i);
    const engine = engines[router.route(req.routing, views, req.record).index]!;
    engine.state.inFlight++;
    if (start) this.scheduler.onServed(req.tenant, req.routing.promptTokensEstimate, 0);
    return new Slot(this, engine, router, router.lastReason);
  }

  private load(): { inFlight: number; limit: number; prefilling: number } {
    let inFlight = 0;
    let limit = 0;
    for (const e of this.targets.engines) {
      inFlight += e.state.inFlight;
      if (usableEndpoint(e)) limit += e.state.maxConcurrency;
    }
    return { inFlight, limit, prefilling: this.targets.router.prefilling };
  }

  private dropped(item: QueueItem, reason: DropReason, retryAfterS: number): void {
    const w = this.waiters.get(item.id);
    assert(w !== undefined, `the scheduler dropped ${item.id}, which is not waiting`);
    assert(reason !== 'cancelled', "cancellations are the caller's, never a scheduler drop");
    this.dropCounter(reason).inc();
    const retryAfter = Math.max(1, Math.ceil(retryAfterS));
    let error: SwitchyardError;
    if (this.usable()) error = queueError(this.name, reason, retryAfter);
    else if ((this.targets.scaler ?? null) !== null) error = noReplicaYet(this.name, reason);
    else error = noUsableEndpoint(this.name);
    this.settle(w, null, error);
  }

  private settle(w: Waiter, slot: Slot | null, error: SwitchyardError | null): void {
    this.waiters.delete(w.item.id);
    if (this.waiters.size === 0) this.stopTimer(); // an idle pool holds no timer (nor the process open)
    w.slot = slot;
    w.error = error;
    if (w.onAbort !== null) w.req.signal.removeEventListener('abort', w.onAbort);
    w.wake?.();
  }

  private dropCounter(reason: DropReason): ReturnType<GatewayMetrics['queueDrops']['labels']> {
    return this.metrics.queueDrops.labels({ model: this.name, reason });
  }

  /** Arms the pool's one timer at the next time a waiting request would expire. */
  private rearm(nowMs: number): void {
    const next = this.waiters.size === 0 ? Number.POSITIVE_INFINITY : this.scheduler.expire(nowMs);
    if (next === this.timerAtMs) return;
    this.stopTimer();
    if (next === Number.POSITIVE_INFINITY) return;
    this.timerAtMs = next;
    this.timer = this.clock.setTimer(next - nowMs, () => {
      this.timer = null;
      this.timerAtMs = Number.POSITIVE_INFINITY;
      this.rearm(this.clock.now());
    });
  }

  private stopTimer(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.timerAtMs = Number.POSITIVE_INFINITY;
  }

  /** Whether any endpoint is healthy with its circuit not open (capacity aside). */
  private usable(): boolean {
    return this.targets.engines.some(usableEndpoint);
  }
}

function usableEndpoint(e: HttpEngine): boolean {
  return e.state.healthy && e.state.breaker.state() !== 'open';
}

/**
 * The scheduler options of a pool's effective scheduling config. In the config a class's
 * `maxWaitMs` replaces the pool-wide one for that class (batch may wait longer than interactive
 * requests); the scheduler's bounds apply a class bound besides the pool-wide one, so the pool-wide
 * bound given to it is the longest of them and every class gets its own.
 */
export function schedulerOptions(cfg: SchedulingConfig): SchedulerOptions {
  const waitMs = (c: PriorityClass): number => cfg.perClass[c]?.maxWaitMs ?? cfg.maxWaitMs;
  const perClass: Partial<Record<PriorityClass, { maxLength?: number; maxWaitMs: number }>> = {};
  for (const c of PRIORITY_CLASSES) {
    const maxLength = cfg.perClass[c]?.maxQueueLength;
    perClass[c] = maxLength === undefined ? { maxWaitMs: waitMs(c) } : { maxLength, maxWaitMs: waitMs(c) };
  }
  return {
    order: cfg.queue,
    bounds: {
      maxLength: cfg.maxQueueLength,
      maxWaitMs: Math.max(...PRIORITY_CLASSES.map(waitMs)),
      perClass,
    },
    batchHeadroom: cfg.batchHeadroom,
    batchOnlyWithoutPrefill: cfg.batchOnlyWithoutPrefill,
    agingMs: cfg.agingMs,
    dropLate: cfg.dropLate,
    tenantWeights: cfg.tenantWeights,
  };
}

function queueError(
  pool: string,
  reason: Exclude<DropReason, 'cancelled'>,
  retryAfterS: number,
): SwitchyardError {
  const why = {
    queue_full: 'the queue is full',
    shed: 'it was shed from the queue for a more urgent request',
    wait_timeout: 'it waited in the queue past its limit',
    deadline: 'it can no longer meet its time-to-first-token deadline',
  }[reason];
  return new SwitchyardError(DROP_CODES[reason], `pool "${pool}" is saturated and ${why}`, { retryAfterS });
}

function poolRemoved(pool: string): SwitchyardError {
  return new SwitchyardError(
    'SWY_ERR_NO_HEALTHY_ENDPOINT',
    `pool "${pool}" was removed by a configuration reload while the request waited`,
  );
}

function noUsableEndpoint(pool: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_NO_HEALTHY_ENDPOINT', `no healthy endpoint for model "${pool}"`);
}

function noReplicaYet(pool: string, reason: DropReason): SwitchyardError {
  const why = reason === 'queue_full' ? 'its queue is full' : 'the request waited past its limit';
  return new SwitchyardError(
    'SWY_ERR_NO_HEALTHY_ENDPOINT',
    `model "${pool}" is autoscaled and has no ready replica yet, and ${why}`,
  );
}

function prefillGated(e: HttpEngine): boolean {
  return (e.state.info.gate?.maxPrefilling ?? null) !== null;
}

function saturated(pool: string, why: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_OVERLOADED', `pool "${pool}" is saturated: ${why}`);
}

/** The drop reason of a queue error code, for {@link DROP_REASON_HEADER}; undefined for other codes. */
export function dropReasonOf(code: ErrorCode): DropReason | undefined {
  for (const [reason, c] of Object.entries(DROP_CODES)) if (c === code) return reason as DropReason;
  return undefined;
}
