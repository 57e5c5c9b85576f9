/**
 * @module gateway/context
 * The per-request state, typed (not a bag): identity, the runtime version it runs under, timings,
 * usage, and the exactly-once finish that records metrics and releases admission.
 */
import { Cancellation } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/logger.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import type { GatewayRuntime } from './runtime.js';
import type { Usage } from './sse.js';

/** State of one accepted request from arrival to its single finish. */
export class RequestContext {
  /** Client model name once resolved; `none` while unknown. */
  model = 'none';
  /** Endpoint of the last attempt; `none` if never routed. */
  endpoint = 'none';
  usage: Usage | null = null;
  /**
   * Aborted when the client goes away; cancels the upstream request. Not an AbortController: Node's
   * AbortSignal outlives young-generation GCs (see core/abort).
   */
  readonly abort = new Cancellation();
  private readonly startMs: number;
  private firstTokenMs = Number.NaN;
  private finished = false;

  constructor(
    readonly id: string,
    readonly runtime: GatewayRuntime,
    readonly log: Logger,
    private readonly clock: Clock,
    private readonly metrics: GatewayMetrics,
    private readonly onDone: (ctx: RequestContext) => void,
  ) {
    this.startMs = clock.now();
  }

  /** Told of the tokens the current upstream attempt streams (the pool's driver: ledger, fairness). */
  onTokens: ((count: number) => void) | null = null;

  /** `count` tokens were streamed to the client; the first one marks the time to first token. */
  markTokens(count: number): void {
    if (Number.isNaN(this.firstTokenMs)) this.firstTokenMs = this.clock.now();
    this.onTokens?.(count);
  }

  /**
   * Time per output token after the first, ms: from the first token to now over the tokens after
   * it (NaN when not streamed, or for a single token).
   */
  tpotMs(): number {
    const tokens = this.usage?.completionTokens ?? 0;
    if (tokens <= 1 || Number.isNaN(this.firstTokenMs)) return Number.NaN;
    return (this.clock.now() - this.firstTokenMs) / (tokens - 1);
  }

  /** Counts a routing decision of `pool` by its reason. */
  onRouted(pool: string, reason: string): void {
    this.metrics.routingDecisions.inc({ model: pool, reason });
  }

  onRetry(): void {
    this.metrics.retries.inc({ model: this.model });
  }

  /** Counts a tier alias's decision: the pool it tries first and the rule that chose it. */
  onTierDecision(alias: string, pool: string, rule: string): void {
    this.metrics.tierDecisions.inc({ alias, pool, rule });
  }

  /** Counts a pool of a tier plan that failed or was saturated. */
  onTierPoolFailure(alias: string, pool: string): void {
    this.metrics.tierPoolFailures.inc({ alias, pool });
  }

  /** Counts a cascade escalation by the check the first answer failed. */
  onCascadeEscalation(alias: string, check: string): void {
    this.metrics.cascadeEscalations.inc({ alias, check });
  }

  /**
   * Tokens an upstream spent on an answer the client never got (a cascade's first answer): added to
   * that endpoint's token counters now, while the request itself is counted once, at its finish.
   */
  countDiscardedUsage(model: string, endpoint: string, usage: Usage): void {
    const s = this.metrics.seriesOf(model, endpoint);
    s.promptTokens.inc(usage.promptTokens);
    s.completionTokens.inc(usage.completionTokens);
  }

  /** Records the outcome once; later calls are ignored (the invariant: every request ends once). */
  finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    const s = this.metrics.seriesOf(this.model, this.endpoint);
    s.requests(status).inc();
    s.duration.observe((this.clock.now() - this.startMs) / 1000);
    if (!Number.isNaN(this.firstTokenMs)) s.ttft.observe((this.firstTokenMs - this.startMs) / 1000);
    if (this.usage !== null) {
      s.promptTokens.inc(this.usage.promptTokens);
      s.completionTokens.inc(this.usage.completionTokens);
    }
    if (status >= 500)
      this.log.warn(
        { requestId: this.id, model: this.model, endpoint: this.endpoint, status },
        'request failed',
      );
    this.onDone(this);
  }

  get isFinished(): boolean {
    return this.finished;
  }
}
