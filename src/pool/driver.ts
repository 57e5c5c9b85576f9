/**
 * @module pool/driver
 * Everything that happens to a request inside one pool, and to the pool's routing state, written
 * once for both hosts: the live gateway calls these methods from its HTTP code (a thin async
 * adapter, gateway/admission.ts), the simulator from its event loop on a virtual clock.
 *
 * ```
 * arrive ─► scaled pool with no usable endpoint? wake the autoscaler (the activator)
 *    │
 *    ├─ no queue (simulator without scheduling, or a tier pool with a pool after it) ─► start now or fail
 *    └─ PoolScheduler.arrive ─► tryStart: route, reserve the endpoint's slot ─► started
 *                                   └─ every endpoint at its gate ─► queued ─► (pump) tryStart …
 *                                   └─ queue full / shed / wait or deadline passed ─► dropped
 * started ─► host sends ─► firstToken ─► finished (ok, or failed: the host may retry elsewhere)
 * ```
 *
 * The driver owns the pool's {@link Router} over a {@link PoolLedger} that outlives config
 * versions and replica changes, its {@link PoolScheduler}, the output-length predictor and, for an
 * autoscaled pool, its {@link ScalingLoop}. It reads time only from its {@link Clock} and sets one
 * timer of its own (the queue's next expiry). Every admission ends exactly once: started (then the
 * host reports its end), dropped, failed, or cancelled.
 */
import type { PoolSample } from '../autoscaler/metrics-window.js';
import { assert } from '../core/assert.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import type { EndpointState } from '../datalayer/endpoint-state.js';
import type { EndpointView } from '../framework/endpoint.js';
import type { ModelFactors } from '../framework/routing.js';
import type { RoutingRegistry } from '../plugins/routing/register.js';
import { PoolLedger } from '../router/ledger.js';
import { Router, type RoutingProfileSpec } from '../router/router.js';
import { PoolScheduler, batchFits } from '../scheduler/pool-scheduler.js';
import { OutputLengthPredictor } from '../scheduler/predictor.js';
import type { DropReason, PriorityClass, QueueItem } from '../scheduler/types.js';
import { noReplicaYet, noUsableEndpoint, poolRemoved, queueError, saturated } from './errors.js';
import type { ScalingLoop } from './scaling.js';
import {
  Admission,
  type DriverEndpoint,
  type DriverEvent,
  type DriverHost,
  type PoolRequest,
  type QueuePlan,
  type RequestOutcome,
} from './types.js';

export { dropReasonOf } from './errors.js';
export * from './types.js';

/** Queue item ids, unique across pools and drivers (a client may repeat x-request-id). */
let queueSeq = 0;

/** One pool's request lifecycle and routing state; see the module comment. */
export class PoolDriver<E> {
  readonly ledger = new PoolLedger();
  private router: Router | null = null;
  private routingKey = '';
  private endpoints: DriverEndpoint<E>[] = [];
  private bySlot: (DriverEndpoint<E> | undefined)[] = [];
  private slots: number[] = [];
  private scheduler: PoolScheduler | null = null;
  private queue: QueuePlan | null = null;
  private predictor: OutputLengthPredictor | null = null;
  private readonly waiters = new Map<string, Admission<E>>();
  private scaling: ScalingLoop | null = null;
  private prefillGated = false;
  private timer: TimerHandle | null = null;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private closed = false;
  /** The host's endpoint views were refreshed by this arrival and nothing has routed since. */
  private fresh = false;
  /** Requests that arrived (all time). */
  arrivals = 0;
  /** Hears every decision (null: nobody listens). */
  onEvent: ((e: DriverEvent) => void) | null = null;

  constructor(
    readonly name: string,
    private readonly clock: Clock,
    private readonly rng: Rng,
    private readonly registry: RoutingRegistry,
    private readonly host: DriverHost<E>,
  ) {}

  // ── configuration: what a config version or a replica change sets ──────────────────────────

  /** Compiles `spec` into a router over this pool's ledger, unless it is the one in use (its plugins keep their state). */
  prepareRouting(spec: RoutingProfileSpec): Router {
    const key = JSON.stringify(spec);
    if (this.router !== null && key === this.routingKey) return this.router;
    return new Router(spec, this.registry, [], this.rng, this.ledger);
  }

  /** Routes with `router` from now on (one {@link prepareRouting} made). */
  useRouter(router: Router, spec: RoutingProfileSpec): void {
    this.router = router;
    this.routingKey = JSON.stringify(spec);
  }

  /** The pool's endpoints are now `endpoints`: known ids keep their routing state. Capacity may have freed. */
  setEndpoints(endpoints: readonly DriverEndpoint<E>[]): void {
    this.endpoints = [...endpoints];
    this.slots = this.ledger.setEndpoints(endpoints.map((e) => ({ id: e.id, info: e.state.info })));
    this.bySlot = [];
    for (let i = 0; i < endpoints.length; i++) this.bySlot[this.slots[i]!] = endpoints[i];
    this.prefillGated = endpoints.some((e) => (e.state.info.gate?.maxPrefilling ?? null) !== null);
    this.pump();
  }

  /**
   * The pool's queue (null: none, requests start at once or fail). A different plan replaces the
   * queue: waiting requests move to the new one in arrival order, keeping their arrival times.
   */
  setQueue(plan: QueuePlan | null): void {
    if ((plan?.key ?? null) === (this.queue?.key ?? null)) return;
    const moving = [...this.waiters.values()];
    for (const a of moving) this.scheduler!.cancel(a.item!.id);
    this.stopTimer();
    this.queue = plan;
    this.scheduler =
      plan === null
        ? null
        : new PoolScheduler(plan.options, {
            tryStart: (item) => this.tryStart(item),
            load: () => this.load(),
            drop: (item, reason, retryAfterS) => this.dropped(item, reason, retryAfterS),
          });
    const sjf = plan?.options.order === 'sjf';
    if (!sjf) this.predictor = null;
    else this.predictor ??= new OutputLengthPredictor(plan.predictor);
    const now = this.clock.now();
    for (const a of moving) {
      if (this.scheduler === null) this.fail(a, poolRemoved(this.name));
      else this.scheduler.arrive(a.item!, now); // started, queued or dropped there
    }
    this.rearm(now);
  }

  /** Attaches (or with null detaches) the pool's autoscaling loop. */
  setScaling(loop: ScalingLoop | null): void {
    if (loop === this.scaling) return;
    this.scaling = loop;
    loop?.bind({
      sample: () => this.sample(),
      waiting: () => this.waiters.size,
      onEvent: (ev) =>
        this.onEvent?.({ kind: 'scale', atMs: ev.atMs, from: ev.from, to: ev.to, reason: ev.reason }),
    });
  }

  /** The pool is gone: every waiting request fails with 503. */
  close(): void {
    this.closed = true;
    this.stopTimer();
    for (const a of [...this.waiters.values()]) {
      this.scheduler?.cancel(a.item!.id);
      this.fail(a, poolRemoved(this.name));
    }
  }

  // ── reading ────────────────────────────────────────────────────────────────────────────────

  get waiting(): number {
    return this.waiters.size;
  }

  get defaultPriority(): PriorityClass {
    return this.queue?.defaultPriority ?? 'normal';
  }

  get order(): string | null {
    return this.queue?.options.order ?? null;
  }

  get scalingLoop(): ScalingLoop | null {
    return this.scaling;
  }

  /** The router in use (its ledger is {@link ledger}). */
  get routing(): Router {
    assert(this.router !== null, `pool ${this.name} has no router yet`);
    return this.router;
  }

  /** Waiting requests by class (the queue-length gauge). */
  waitingByClass(): Record<PriorityClass, number> {
    const out: Record<PriorityClass, number> = { high: 0, normal: 0, low: 0, batch: 0 };
    for (const a of this.waiters.values()) out[a.req.priority]++;
    return out;
  }

  /** The engine model's correction learnt of each current endpoint (the metrics' gauge). */
  corrections(): { endpoint: string; factors: ModelFactors }[] {
    return this.endpoints.map((e, i) => {
      const f = this.ledger.correction(this.slots[i]!);
      return { endpoint: e.state.id, factors: { prefill: f.prefill, decode: f.decode } };
    });
  }

  /** Whether any endpoint is healthy with its circuit not open (capacity aside). */
  usable(): boolean {
    return this.endpoints.some((e) => usableState(e.state));
  }

  /** The pool's state for the autoscaler's window: in flight, waiting, and the healthy engines' scraped numbers. */
  sample(): PoolSample {
    this.host.refresh?.();
    let inFlight = 0;
    let engineWaiting = 0;
    let kv = 0;
    let scraped = 0;
    for (const e of this.endpoints) {
      inFlight += e.state.inFlight;
      const m = e.state.metrics;
      if (m === null || !e.state.healthy) continue;
      engineWaiting += m.waiting;
      kv += m.kvUsage;
      scraped++;
    }
    return {
      inFlight,
      queued: this.waiters.size,
      engineWaiting,
      kvUsage: scraped > 0 ? kv / scraped : Number.NaN,
    };
  }

  // ── the request lifecycle ─────────────────────────────────────────────────────────────────

  /**
   * A request arrives. With `queue` it waits its turn in the pool's queue (state `waiting` until
   * {@link DriverHost.settled}); without, or without a queue, it starts now or leaves at once
   * (state `failed`, with the error: overloaded or nothing usable).
   */
  arrive(req: PoolRequest, queue = true): Admission<E> {
    this.host.refresh?.();
    // The routing this arrival may start reads the views just refreshed.
    this.fresh = true;
    try {
      return this.admit(req, queue);
    } finally {
      this.fresh = false;
    }
  }

  private admit(req: PoolRequest, queue: boolean): Admission<E> {
    const now = this.clock.now();
    const a = new Admission<E>(String(++queueSeq), req, now);
    this.arrivals++;
    if (this.closed) return this.fail(a, poolRemoved(this.name));
    this.scaling?.arrival(now);
    if (!this.usable()) {
      a.cold = this.scaling !== null;
      if (this.scaling === null) return this.fail(a, noUsableEndpoint(this.name));
      this.scaling.wake(now);
      // A tier pool with a pool after it does not wait for a cold start: the next pool serves it.
      if (!queue) return this.fail(a, noUsableEndpoint(this.name));
    }
    if (!queue || this.scheduler === null) return this.startNow(a, queue);
    const item: QueueItem = {
      id: a.id,
      arrivalMs: now,
      tenant: req.tenant,
      priority: req.priority,
      promptTokens: req.routing.promptTokensEstimate,
      predictedOutputTokens: this.predicted(req),
      deadlineMs: req.deadlineMs ?? now + this.queue!.ttftDeadlineMs,
    };
    a.item = item;
    a.state = 'waiting';
    this.waiters.set(a.id, a);
    if (this.scheduler.arrive(item, now) === 'queued') this.rearm(now);
    return a;
  }

  /** A retry after an upstream failure: routed at once, never queued. Throws when nothing can take it. */
  retry(a: Admission<E>): void {
    a.resetAttempt();
    this.reserve(a, false);
  }

  /** The client went away while its request waited: out of the queue, counted once. */
  cancel(a: Admission<E>): void {
    if (a.state !== 'waiting') return;
    this.scheduler!.cancel(a.id);
    this.host.onDrop?.('cancelled');
    this.settle(a, 'cancelled');
    this.rearm(this.clock.now());
    this.wakeHost(a);
  }

  /**
   * The started request produced `count` tokens. The first ends its prefill (a `maxPrefilling` gate
   * may open); each is charged to its tenant's fairness counter (VTC) as it is produced, as the
   * VTC paper's counter is updated each decode step.
   */
  tokens(a: Admission<E>, count: number): void {
    if (a.state !== 'running') return;
    this.scheduler?.onServed(a.req.tenant, 0, count);
    a.charged += count;
    const now = this.clock.now();
    if (!a.takeFirstToken()) {
      this.router?.tokens(a.req.routing.id, now);
      return;
    }
    this.router?.firstToken(a.req.routing.id, now);
    this.scaling?.window.firstToken(now, now - a.arrivalMs);
    if (this.prefillGated && this.waiters.size > 0) this.pump();
  }

  /**
   * The request's attempt left its endpoint. On success its tenant's fairness counter (VTC) is
   * charged the output tokens not yet charged as they streamed (its prompt was charged at its
   * start), the length predictor learns, and the autoscaler's window counts the completion.
   * Capacity freed: the queue starts who fits.
   */
  finished(a: Admission<E>, outcome: RequestOutcome, pump = true): void {
    const e = a.endpoint;
    assert(e !== null && a.state === 'running', `request ${a.id} finished without running`);
    a.state = 'ended';
    this.router?.finished(a.req.routing.id, outcome);
    e.state.inFlight--;
    const now = this.clock.now();
    if (outcome.ok && outcome.outputTokens !== null) {
      const uncharged = outcome.outputTokens - a.charged;
      if (uncharged > 0) this.scheduler?.onServed(a.req.tenant, 0, uncharged);
      if (a.req.oracleOutputTokens === undefined)
        this.predictor?.learn(a.req.features(), outcome.outputTokens);
      this.scaling?.window.completed(now, outcome.tpotMs, outcome.outputTokens);
    }
    if (e.state.inFlight === 0) this.host.idle?.(e);
    if (pump) this.pump();
  }

  /** Capacity may have freed (an endpoint recovered, a scrape lowered its load): start who fits. */
  pump(): void {
    if (this.scheduler !== null && this.waiters.size > 0) this.scheduler.pump(this.clock.now());
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  private predicted(req: PoolRequest): number {
    if (req.oracleOutputTokens !== undefined) return Math.max(1, req.oracleOutputTokens);
    return this.predictor === null ? 0 : this.predictor.predict(req.features());
  }

  /** The fast path of a request that must not queue: start now or fail. */
  private startNow(a: Admission<E>, queue: boolean): Admission<E> {
    if (!queue && this.waiters.size > 0)
      return this.fail(a, saturated(this.name, 'requests are waiting for it'));
    const q = this.queue;
    if (!queue && a.req.priority === 'batch' && q !== null) {
      // The scheduler's batch rule, for a request it never sees.
      const o = q.options;
      if (!batchFits(this.load(), o.batchHeadroom ?? 0.25, o.batchOnlyWithoutPrefill ?? true))
        return this.fail(a, saturated(this.name, 'it has no idle capacity for batch work'));
    }
    try {
      this.reserve(a, true);
    } catch (err) {
      if (!(err instanceof SwitchyardError)) throw err;
      return this.fail(a, err);
    }
    this.host.onStart?.(a, 0);
    this.wakeHost(a);
    return a;
  }

  private tryStart(item: QueueItem): boolean {
    const a = this.waiters.get(item.id);
    assert(a !== undefined, `the scheduler started ${item.id}, which is not waiting`);
    // The activator holds the request until a replica of the autoscaled pool is usable.
    if (this.scaling !== null && !this.usable()) return false;
    try {
      this.reserve(a, true);
    } catch (err) {
      if (!(err instanceof SwitchyardError)) throw err;
      if (err.code === 'SWY_ERR_OVERLOADED') return false;
      // Nothing healthy left: the request leaves the queue with that error.
      this.fail(a, err);
      return true;
    }
    this.waiters.delete(a.id);
    if (this.waiters.size === 0) this.stopTimer();
    this.host.onStart?.(a, this.clock.now() - a.arrivalMs);
    this.wakeHost(a);
    return true;
  }

  /**
   * Routes the request and takes the chosen endpoint's slot at once; throws the router's error. A
   * start (not a retry) charges the tenant's prompt to the fairness counters now, so the next pick
   * of the same pump sees it.
   */
  private reserve(a: Admission<E>, start: boolean): void {
    const router = this.routing;
    if (!this.fresh) this.host.refresh?.();
    this.fresh = false;
    const eps = this.endpoints;
    const views = new Array<EndpointView>(eps.length);
    for (let i = 0; i < eps.length; i++) views[i] = eps[i]!.state.view(this.slots[i]!);
    const chosen = router.route(a.req.routing, views, a.req.record, this.clock.now());
    const e = this.bySlot[chosen.index]!;
    e.state.inFlight++;
    if (start) this.scheduler?.onServed(a.req.tenant, a.req.routing.promptTokensEstimate, 0);
    a.endpoint = e;
    a.route = {
      reason: router.lastReason,
      candidates: router.lastCandidates,
      cached: router.lastCachedTokens,
      predictedTtftMs: router.lastPredictedTtftMs,
    };
    a.state = 'running';
    this.onEvent?.({
      kind: start ? 'start' : 'retry',
      atMs: this.clock.now(),
      request: a.req.routing.id,
      endpoint: e.state.id,
      reason: a.route.reason,
      cached: a.route.cached,
    });
  }

  private load(): { inFlight: number; limit: number; prefilling: number } {
    let inFlight = 0;
    let limit = 0;
    for (const e of this.endpoints) {
      inFlight += e.state.inFlight;
      if (usableState(e.state)) limit += e.state.maxConcurrency;
    }
    return { inFlight, limit, prefilling: this.ledger.prefilling };
  }

  private dropped(item: QueueItem, reason: DropReason, retryAfterS: number): void {
    const a = this.waiters.get(item.id);
    assert(a !== undefined, `the scheduler dropped ${item.id}, which is not waiting`);
    assert(reason !== 'cancelled', "cancellations are the caller's, never a scheduler drop");
    this.host.onDrop?.(reason);
    const retryAfter = Math.max(1, Math.ceil(retryAfterS));
    a.dropReason = reason;
    this.onEvent?.({ kind: 'drop', atMs: this.clock.now(), request: a.req.routing.id, reason });
    if (this.usable()) a.error = queueError(this.name, reason, retryAfter);
    else if (this.scaling !== null) a.error = noReplicaYet(this.name, reason);
    else a.error = noUsableEndpoint(this.name);
    this.settle(a, 'dropped');
    this.wakeHost(a);
  }

  private fail(a: Admission<E>, error: SwitchyardError): Admission<E> {
    a.error = error;
    this.onEvent?.({ kind: 'fail', atMs: this.clock.now(), request: a.req.routing.id, reason: error.code });
    this.settle(a, 'failed');
    this.wakeHost(a);
    return a;
  }

  private settle(a: Admission<E>, state: Admission<E>['state']): void {
    this.waiters.delete(a.id);
    if (this.waiters.size === 0) this.stopTimer(); // an idle pool holds no timer (nor the process open)
    a.state = state;
  }

  private wakeHost(a: Admission<E>): void {
    this.host.settled(a);
    a.wake?.();
  }

  /** Arms the pool's one timer at the next time a waiting request would expire. */
  private rearm(nowMs: number): void {
    const s = this.scheduler;
    const next = this.waiters.size === 0 || s === null ? Number.POSITIVE_INFINITY : s.expire(nowMs);
    if (next === this.timerAtMs) return;
    this.stopTimer();
    if (next === Number.POSITIVE_INFINITY) return;
    this.timerAtMs = next;
    this.timer = this.clock.setTimer(next - nowMs, () => {
      this.timer = null;
      this.timerAtMs = Number.POSITIVE_INFINITY;
      const now = this.clock.now();
      this.scheduler?.expire(now);
      // A dropped item may have been the last non-batch one holding batch work back.
      this.pump();
      this.rearm(now);
    });
  }

  private stopTimer(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.timerAtMs = Number.POSITIVE_INFINITY;
  }
}

function usableState(s: EndpointState): boolean {
  return s.healthy && s.breaker.state() !== 'open';
}
