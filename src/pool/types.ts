/**
 * @module pool/types
 * What a pool driver and its hosts exchange: endpoints, queue plans, requests, admissions and the
 * decisions the driver reports.
 */
import type { SwitchyardError } from '../core/errors.js';
import type { EndpointState } from '../datalayer/endpoint-state.js';
import type { RoutingOutcome, RoutingRequest } from '../framework/routing.js';
import type { DecisionRecord } from '../router/router.js';
import type { SchedulerOptions } from '../scheduler/pool-scheduler.js';
import type { PredictorFeatures, PredictorOptions } from '../scheduler/predictor.js';
import type { DropReason, PriorityClass, QueueItem } from '../scheduler/types.js';

/** One endpoint of the pool, as the host knows it: a stable id, its data-layer state, the host's handle. */
export interface DriverEndpoint<E> {
  readonly id: string;
  readonly state: EndpointState;
  readonly ref: E;
}

/** A pool's queue as compiled from its config (pool/plan.ts). */
export interface QueuePlan {
  readonly options: SchedulerOptions;
  /** TTFT deadline given to every queued request, ms (the `edf` order reads it). */
  readonly ttftDeadlineMs: number;
  readonly defaultPriority: PriorityClass;
  /** `sjf`: the output-length predictor's options (default: its own). */
  readonly predictor?: PredictorOptions;
  /** The plan's identity: an equal key keeps the queue across reloads. */
  readonly key: string;
}

/** A request as the pool sees it. */
export interface PoolRequest {
  /** The routing signals; `excluded` grows as attempts fail. */
  readonly routing: RoutingRequest & { excluded: Set<string> | null };
  readonly priority: PriorityClass;
  readonly tenant: string;
  /** Predictor features (read only when the order is `sjf` and no oracle size is given). */
  readonly features: () => PredictorFeatures;
  /** A known output length (the simulator's labelled oracle) instead of a prediction. */
  readonly oracleOutputTokens?: number;
  /** An absolute TTFT deadline instead of arrival + the queue plan's. */
  readonly deadlineMs?: number;
  /** Filled with the routing decision's explanation when given. */
  readonly record?: DecisionRecord;
}

/** Why the router picked an endpoint: reason, candidates after filters, predicted cached tokens. */
export interface RouteNote {
  readonly reason: string;
  readonly candidates: number;
  readonly cached: number;
  /** The TTFT a cost-model policy predicted there, correction applied (NaN: no such policy). */
  readonly predictedTtftMs: number;
}

/** How a started request left its endpoint. */
export interface RequestOutcome extends RoutingOutcome {
  /** Time per output token after the first, ms (NaN: unknown or not streamed). */
  readonly tpotMs: number;
}

/** One request's passage through the pool; see the module comment. */
export class Admission<E> {
  state: 'new' | 'waiting' | 'running' | 'ended' | 'dropped' | 'failed' | 'cancelled' = 'new';
  endpoint: DriverEndpoint<E> | null = null;
  route: RouteNote = NO_ROUTE;
  /** Set when it left without running: the 429/503 the host answers. */
  error: SwitchyardError | null = null;
  dropReason: DropReason | null = null;
  /** It met the pool with no usable endpoint (an autoscaled pool at zero or still starting). */
  cold = false;
  /** Output tokens charged to the tenant so far (as they streamed). */
  charged = 0;
  /** Set by a host that waits for a queued admission to settle. */
  wake: (() => void) | null = null;
  item: QueueItem | null = null;
  private firstToken = false;

  constructor(
    readonly id: string,
    readonly req: PoolRequest,
    readonly arrivalMs: number,
  ) {}

  /** Called by the driver; true the first time only. */
  takeFirstToken(): boolean {
    if (this.firstToken) return false;
    this.firstToken = true;
    return true;
  }

  /** A retry starts a new attempt: its first token counts again. */
  resetAttempt(): void {
    this.firstToken = false;
  }
}

export const NO_ROUTE: RouteNote = { reason: 'none', candidates: 0, cached: 0, predictedTtftMs: Number.NaN };

/** What the driver tells its host. */
export interface DriverHost<E> {
  /**
   * An admission settled: started (the host sends it), dropped or failed (the host answers its
   * error). Called for every admission, also from inside {@link PoolDriver.arrive}.
   */
  settled(a: Admission<E>): void;
  /** Refresh endpoint metrics before a decision (the simulator's scrape-at-decision mode). */
  refresh?(): void;
  /** An endpoint's last request ended (a draining replica may stop). */
  idle?(e: DriverEndpoint<E>): void;
  /** Counts a queue drop (the gateway's metric). */
  onDrop?(reason: DropReason): void;
  /** A queued admission started after waiting `waitMs`. */
  onStart?(a: Admission<E>, waitMs: number): void;
}

/**
 * A decision of the driver, as it is taken: a request started on an endpoint (or retried), left
 * the queue, or failed to find one; the autoscaler changed its target. Two hosts that run the same
 * arrivals see the same sequence (the live-versus-simulated test compares them).
 */
export type DriverEvent =
  | {
      readonly kind: 'start' | 'retry';
      readonly atMs: number;
      readonly request: string;
      readonly endpoint: string;
      readonly reason: string;
      /** Prompt tokens the router believed cached there. */
      readonly cached: number;
    }
  | {
      readonly kind: 'drop' | 'fail';
      readonly atMs: number;
      readonly request: string;
      readonly reason: string;
    }
  | {
      readonly kind: 'scale';
      readonly atMs: number;
      readonly from: number;
      readonly to: number;
      readonly reason: string;
    };
