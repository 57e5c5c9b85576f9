/**
 * @module gateway/context
 * The per-request state, typed (not a bag): identity, the runtime version it runs under, timings,
 * usage, and the exactly-once finish that records metrics and releases admission.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Cancellation } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/logger.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import type { Principal } from '../tenancy/identity.js';
import { costUsd } from '../tenancy/prices.js';
import type { Admission, Tenancy } from '../tenancy/service.js';
import type { GatewayRuntime } from './runtime.js';
import type { Usage } from './sse.js';

/** The caller of a gateway run without tenancy (a bare context in tests and tools). */
const ANONYMOUS: Principal = {
  keyId: 'anonymous',
  keyHash: '',
  tenant: 'default',
  project: null,
  roles: ['member'],
  models: null,
  storeContent: false,
  scopes: [],
};

/** State of one accepted request from arrival to its single finish. */
export class RequestContext {
  /** Client model name once resolved; `none` while unknown. */
  model = 'none';
  /** Endpoint of the last attempt; `none` if never routed. */
  endpoint = 'none';
  usage: Usage | null = null;
  /** The caller, once authenticated; null for a request refused before (no ledger row then). */
  principal: Principal | null = null;
  /** Its reservation of limits and budgets, once admitted. */
  admission: Admission | null = null;
  /** The model the client asked for (a pool, pool alias or tier alias). */
  modelAsked = 'none';
  session: string | null = null;
  /** Estimated prompt tokens: the ledger's input count when the upstream reported no usage. */
  promptEstimate = 0;
  /** Tokens streamed to the client: the output count when the upstream reported no usage. */
  private streamed = 0;
  /** USD of answers the client never got (a cascade's first answer), added to the request's cost. */
  private discardedCostUsd = 0;
  /** The error code that ended the request, if any. */
  reason: string | null = null;
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
    private readonly tenancy: Tenancy | null = null,
  ) {
    this.startMs = clock.now();
  }

  /** Resolves the caller (401 when authentication is on and its key is not valid). */
  async authenticate(headers: IncomingHttpHeaders): Promise<Principal> {
    this.principal = this.tenancy === null ? ANONYMOUS : await this.tenancy.principal(headers);
    return this.principal;
  }

  /** Checks and reserves the caller's limits and budgets (see Tenancy.admit); null without tenancy. */
  async admit(a: Parameters<Tenancy['admit']>[1]): Promise<Admission | null> {
    if (this.tenancy === null || this.principal === null) return null;
    this.admission = await this.tenancy.admit(this.principal, a);
    return this.admission;
  }

  /** Told of the tokens the current upstream attempt streams (the pool's driver: ledger, fairness). */
  onTokens: ((count: number) => void) | null = null;

  /** `count` tokens were streamed to the client; the first one marks the time to first token. */
  markTokens(count: number): void {
    if (Number.isNaN(this.firstTokenMs)) this.firstTokenMs = this.clock.now();
    this.streamed += count;
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
    this.discardedCostUsd += costUsd(this.runtime.config.pools[model]?.prices, tokenCounts(usage));
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
    if (this.principal !== null && this.tenancy !== null) this.settle(status);
    if (status >= 500)
      this.log.warn(
        { requestId: this.id, model: this.model, endpoint: this.endpoint, status },
        'request failed',
      );
    this.onDone(this);
  }

  /** Settles limits and writes the ledger row, with estimates where the upstream reported no usage. */
  private settle(status: number): void {
    const u = this.usage ?? {
      promptTokens: this.admission === null ? 0 : this.promptEstimate,
      completionTokens: this.streamed,
      cachedTokens: null,
      reasoningTokens: null,
    };
    const now = this.clock.now();
    this.tenancy!.finish(this.principal!, this.admission, {
      requestId: this.id,
      modelAsked: this.modelAsked,
      pool: this.model,
      endpoint: this.endpoint,
      prices: this.runtime.config.pools[this.model]?.prices,
      extraCostUsd: this.discardedCostUsd,
      session: this.session,
      ...tokenCounts(u),
      latencyMs: now - this.startMs,
      ttftMs: Number.isNaN(this.firstTokenMs) ? null : this.firstTokenMs - this.startMs,
      status,
      // A success may carry a reason too (a stream the output guard ended).
      reason: this.reason ?? (status < 400 ? null : status === 499 ? 'client_closed' : `http_${status}`),
    });
  }

  get isFinished(): boolean {
    return this.finished;
  }
}

function tokenCounts(u: Usage) {
  return {
    inputTokens: u.promptTokens,
    cachedInputTokens: u.cachedTokens ?? 0,
    outputTokens: u.completionTokens,
    reasoningTokens: u.reasoningTokens ?? 0,
  };
}
