/**
 * @module gateway/admission
 * The gateway's async adapter over a pool's {@link PoolDriver}: a request's first attempt is
 * admitted (at once, or after waiting in the pool's queue, or refused), its later attempts are
 * retries that never queue, and each attempt's end is reported once. The rules themselves (queue
 * order and bounds, routing, the activator, fairness, the length predictor) live in the driver,
 * which the simulator runs too.
 *
 *   admit ─► driver.arrive ─► running ─► Attempt ─► upstream ─► Attempt.end(outcome) ─► driver.finished
 *                    ├─ waiting ─► (driver settles it) ─► running / dropped (429, 503) / failed
 *                    │     └─ client left ─► driver.cancel ─► null (the caller answers 499)
 *                    └─ failed (overloaded, nothing usable) ─► thrown
 */
import { assert } from '../core/assert.js';
import type { HttpEngine } from '../adapters/engines/http-engine.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import type { Admission, DriverHost, PoolDriver, PoolRequest, RequestOutcome } from '../pool/driver.js';
import { PRIORITY_CLASSES, type PriorityClass } from '../scheduler/types.js';

export { dropReasonOf } from '../pool/driver.js';

/** Response header naming why a request left the queue without running (a closed set: DropReason). */
export const DROP_REASON_HEADER = 'x-switchyard-drop-reason';

/** A pool's driver as the gateway runs it. */
export type GatewayDriver = PoolDriver<HttpEngine>;

/** One attempt on one endpoint: the request may send there; {@link end} reports how it left. */
export class Attempt {
  private ended = false;

  constructor(
    private readonly driver: GatewayDriver,
    readonly admission: Admission<HttpEngine>,
  ) {}

  get engine(): HttpEngine {
    return this.admission.endpoint!.ref;
  }

  /** The routing decision's reason. */
  get reason(): string {
    return this.admission.route.reason;
  }

  /** Streamed tokens arrived (the first marks the end of the prefill); bound, to be passed as a callback. */
  readonly onTokens = (count: number): void => this.driver.tokens(this.admission, count);

  /** The attempt left its endpoint; frees its slot and lets the queue start whoever fits. */
  end(outcome: RequestOutcome): void {
    assert(!this.ended, `attempt on ${this.engine.name} ended twice`);
    this.ended = true;
    this.driver.finished(this.admission, outcome);
  }
}

/**
 * A request's first attempt: an attempt now, or after waiting in the queue. With `queue` false (a
 * tier pool with a fallback after it) a saturated pool throws SWY_ERR_OVERLOADED at once instead.
 * Throws the 429/503 of a drop; resolves null when the client left while waiting.
 */
export async function admit(
  driver: GatewayDriver,
  req: PoolRequest,
  queue: boolean,
  signal: AbortSignal,
): Promise<Attempt | null> {
  const a = driver.arrive(req, queue);
  if (a.state === 'waiting') await waitFor(driver, a, signal);
  if (a.state === 'cancelled') return null;
  if (a.error !== null) throw a.error;
  return new Attempt(driver, a);
}

/** A retry after an upstream failure: routed at once, never queued; throws when nothing can take it. */
export function retry(driver: GatewayDriver, a: Admission<HttpEngine>): Attempt {
  driver.retry(a);
  return new Attempt(driver, a);
}

function waitFor(driver: GatewayDriver, a: Admission<HttpEngine>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const onAbort = (): void => driver.cancel(a);
    a.wake = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
  });
}

type HistogramChild = ReturnType<GatewayMetrics['queueWait']['labels']>;

/** What a pool's driver tells the gateway: queue waits and drops, as metrics. */
export function driverHost(pool: string, metrics: GatewayMetrics): DriverHost<HttpEngine> {
  const waitSeconds = Object.fromEntries(
    PRIORITY_CLASSES.map((c) => [c, metrics.queueWait.labels({ model: pool, class: c })]),
  ) as Record<PriorityClass, HistogramChild>;
  return {
    settled: () => {}, // a waiting request is woken through its admission
    onStart: (a, waitMs) => waitSeconds[a.req.priority].observe(waitMs / 1000),
    onDrop: (reason) => metrics.queueDrops.labels({ model: pool, reason }).inc(),
  };
}
