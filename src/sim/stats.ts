/**
 * @module sim/stats
 * What a simulation counts: latency histograms, SLO attainment overall and by class and tenant,
 * rejections by reason, the time-average of requests in the system, and the request records. Pure
 * bookkeeping: it decides nothing.
 */
import type { EngineProfile, EngineRequestResult } from '../engine-model/types.js';
import { prefillPairs, stepTimeMs } from '../engine-model/step-time.js';
import type { RouteNote } from '../pool/driver.js';
import { PRIORITY_CLASSES, type PriorityClass } from '../scheduler/types.js';
import type { TraceRecord } from '../traces/record.js';
import { LogHistogram } from './log-histogram.js';
import type { Timeline } from './timeline.js';
import type { GroupSummary, RejectReason, RequestRecord, SimOptions, SimSummary } from './types.js';

/** Tenants broken out in {@link SimSummary.by_tenant}; later ones share one group, so memory stays bounded. */
export const MAX_TENANT_GROUPS = 64;
const OTHER_TENANTS = '(other)';

/** Counters and histograms of one class or tenant. */
class GroupStats {
  requests = 0;
  completed = 0;
  sloMet = 0;
  tooLong = 0;
  readonly ttft = new LogHistogram();
  readonly e2e = new LogHistogram();
  readonly wait = new LogHistogram();

  summary(): GroupSummary {
    const judged = this.requests - this.tooLong;
    const pair = (h: LogHistogram) => ({ p50: h.quantile(0.5), p99: h.quantile(0.99) });
    return {
      requests: this.requests,
      completed: this.completed,
      slo_attainment: judged > 0 ? this.sloMet / judged : Number.NaN,
      ttft_ms: pair(this.ttft),
      e2e_ms: pair(this.e2e),
      gateway_queue_ms: pair(this.wait),
    };
  }
}

/** A request as the statistics see it. */
export interface Judged {
  readonly id: string;
  readonly trace: TraceRecord;
  readonly pool: string;
  readonly arrivalMs: number;
  readonly priority: PriorityClass;
  readonly tenant: string;
}

/** Everything a run counts; {@link summary} turns it into the summary's request part. */
export class SimStats {
  readonly hist = {
    ttft: new LogHistogram(),
    tpot: new LogHistogram(),
    e2e: new LogHistogram(),
    queue: new LogHistogram(),
    gatewayQueue: new LogHistogram(),
  };
  requests = 0;
  completed = 0;
  rejected = 0;
  readonly rejectedBy: Record<string, number> = {};
  readonly reasons: Record<string, number> = {};
  readonly droppedBy: Record<string, number> = {};
  queued = 0;
  maxWaiting = 0;
  sloMet = 0;
  outputTokens = 0;
  promptTokens = 0;
  cachedTokens = 0;
  /** Some request carried engine block hashes (the prefix hit rate is meaningful). */
  hashes = false;
  inSystem = 0;
  private inSystemArea = 0;
  private lastChangeMs = 0;
  firstArrivalMs = Number.NaN;
  lastArrivalMs = Number.NaN;
  lastEventMs = 0;
  private readonly byClass = new Map<string, GroupStats>();
  private readonly byTenant = new Map<string, GroupStats>();
  sink: ((r: RequestRecord) => void) | null = null;

  constructor(
    private readonly slo: NonNullable<SimOptions['slo']>,
    private readonly timeline: Timeline,
  ) {}

  arrived(p: Judged): void {
    this.requests++;
    this.group(this.byClass, p.priority).requests++;
    this.group(this.byTenant, p.tenant).requests++;
    this.timeline.at(p.arrivalMs - this.firstArrivalMs).arrivals++;
  }

  /** The request left the gateway for an engine after waiting `waitMs` there. */
  sent(p: Judged, waitMs: number): void {
    this.hist.gatewayQueue.add(waitMs);
    this.group(this.byClass, p.priority).wait.add(waitMs);
    this.group(this.byTenant, p.tenant).wait.add(waitMs);
  }

  routed(route: RouteNote): void {
    this.reasons[route.reason] = (this.reasons[route.reason] ?? 0) + 1;
  }

  /** A request answered by `profile`'s replica `endpoint`. */
  finished(
    p: Judged,
    res: EngineRequestResult,
    profile: EngineProfile,
    endpoint: string,
    route: RouteNote,
  ): void {
    this.completed++;
    const ttft = res.firstTokenMs - p.arrivalMs;
    const e2e = res.finishedMs - p.arrivalMs;
    const queue = res.firstScheduledMs - res.arrivalMs;
    const tpot = tpotOf(res);
    this.hist.ttft.add(ttft);
    this.hist.e2e.add(e2e);
    this.hist.queue.add(queue);
    if (!Number.isNaN(tpot)) this.hist.tpot.add(tpot);
    this.outputTokens += res.outputTokens;
    this.promptTokens += res.promptTokens;
    this.cachedTokens += res.cachedTokens;
    const b = this.timeline.at(res.finishedMs - this.firstArrivalMs);
    b.completions++;
    b.ttftSum += ttft;
    b.promptTokens += res.promptTokens;
    b.cachedTokens += res.cachedTokens;
    const met = this.meetsSlo(profile, res.promptTokens, ttft, tpot);
    if (met) this.sloMet++;
    for (const g of [this.group(this.byClass, p.priority), this.group(this.byTenant, p.tenant)]) {
      g.completed++;
      if (met) g.sloMet++;
      g.ttft.add(ttft);
      g.e2e.add(e2e);
    }
    this.sink?.({
      id: p.id,
      arrival_ms: p.arrivalMs,
      input_tokens: res.promptTokens,
      output_tokens: res.outputTokens,
      cached_tokens: res.cachedTokens,
      queue_ms: queue,
      gateway_queue_ms: res.arrivalMs - p.arrivalMs,
      ttft_ms: ttft,
      tpot_ms: tpot,
      e2e_ms: e2e,
      endpoint,
      pool: p.pool,
      priority: p.priority,
      tenant: p.tenant,
      status: 'ok',
      reject_reason: 'none',
      preemptions: res.preemptions,
      slo_met: met,
      ...routeFields(route),
    });
  }

  /** A request that left without an answer. */
  refused(p: Judged, nowMs: number, endpoint: string, reason: RejectReason, route: RouteNote): void {
    this.rejected++;
    this.rejectedBy[reason] = (this.rejectedBy[reason] ?? 0) + 1;
    if (reason === 'too_long') {
      this.group(this.byClass, p.priority).tooLong++;
      this.group(this.byTenant, p.tenant).tooLong++;
    }
    this.timeline.at(nowMs - this.firstArrivalMs).rejections++;
    this.sink?.({
      id: p.id,
      arrival_ms: p.arrivalMs,
      input_tokens: p.trace.inputTokens,
      output_tokens: p.trace.outputTokens,
      cached_tokens: 0,
      queue_ms: Number.NaN,
      gateway_queue_ms: nowMs - p.arrivalMs,
      ttft_ms: Number.NaN,
      tpot_ms: Number.NaN,
      e2e_ms: Number.NaN,
      endpoint,
      pool: p.pool,
      priority: p.priority,
      tenant: p.tenant,
      status: 'rejected',
      reject_reason: reason,
      preemptions: 0,
      slo_met: false,
      ...routeFields(route),
    });
  }

  enter(now: number): void {
    this.account(now);
    this.inSystem++;
  }

  leave(now: number): void {
    this.account(now);
    this.inSystem--;
  }

  /** The TTFT a request of `promptTokens` must meet to count toward the SLO. */
  ttftLimitMs(p: EngineProfile, promptTokens: number): number {
    const s = this.slo;
    return s.ttftMs ?? (s.ttftScale ?? 5) * idleTtftMs(s.referenceProfile ?? p, promptTokens);
  }

  /** The summary's request part (the caller adds replicas, cost and autoscaling). */
  requestSummary(
    spanMs: number,
  ): Omit<
    SimSummary,
    | 'per_endpoint'
    | 'replica_seconds'
    | 'cost_usd'
    | 'cold_starts'
    | 'autoscaling'
    | 'load_imbalance'
    | 'scheduling'
  > {
    const spanS = spanMs / 1000;
    const rate = (x: number) => (spanS > 0 ? x / spanS : 0);
    const tooLong = this.rejectedBy.too_long ?? 0;
    return {
      requests: this.requests,
      completed: this.completed,
      rejected: this.rejected,
      rejected_by_reason: { ...this.rejectedBy },
      routing_reasons: { ...this.reasons },
      duration_s: spanS,
      ttft_ms: this.hist.ttft.summary(),
      tpot_ms: this.hist.tpot.summary(),
      e2e_ms: this.hist.e2e.summary(),
      queue_ms: this.hist.queue.summary(),
      gateway_queue_ms: this.hist.gatewayQueue.summary(),
      by_class: groups(this.byClass, PRIORITY_CLASSES),
      by_tenant: groups(this.byTenant, [...this.byTenant.keys()]),
      // A prompt longer than the model's context is the client's error (the gateway answers 400),
      // not a miss of the service's SLO.
      slo_attainment: this.requests > tooLong ? this.sloMet / (this.requests - tooLong) : Number.NaN,
      goodput_rps: rate(this.sloMet),
      throughput_rps: rate(this.completed),
      arrival_rate_rps:
        this.lastArrivalMs > this.firstArrivalMs
          ? this.requests / ((this.lastArrivalMs - this.firstArrivalMs) / 1000)
          : 0,
      output_tokens_per_s: rate(this.outputTokens),
      prefix_hit_rate: this.hashes && this.promptTokens > 0 ? this.cachedTokens / this.promptTokens : null,
      mean_in_system: spanMs > 0 ? this.inSystemArea / spanMs : 0,
    };
  }

  private meetsSlo(p: EngineProfile, promptTokens: number, ttft: number, tpot: number): boolean {
    if (ttft > this.ttftLimitMs(p, promptTokens)) return false;
    return this.slo.tpotMs === undefined || Number.isNaN(tpot) || tpot <= this.slo.tpotMs;
  }

  private account(now: number): void {
    this.inSystemArea += this.inSystem * (now - this.lastChangeMs);
    this.lastChangeMs = now;
    if (now > this.lastEventMs) this.lastEventMs = now;
  }

  private group(map: Map<string, GroupStats>, key: string): GroupStats {
    let g = map.get(key);
    if (g !== undefined) return g;
    if (map === this.byTenant && map.size >= MAX_TENANT_GROUPS) key = OTHER_TENANTS;
    g = map.get(key) ?? new GroupStats();
    map.set(key, g);
    return g;
  }
}

function routeFields(route: RouteNote) {
  return {
    route: route.reason,
    route_candidates: route.candidates,
    predicted_cached_tokens: route.cached,
    predicted_ttft_ms: route.predictedTtftMs,
  };
}

/** Time per output token after the first (NaN for a single token). */
export function tpotOf(res: EngineRequestResult): number {
  return res.outputTokens > 1 ? (res.finishedMs - res.firstTokenMs) / (res.outputTokens - 1) : Number.NaN;
}

function groups(map: Map<string, GroupStats>, order: readonly string[]): Record<string, GroupSummary> {
  const out: Record<string, GroupSummary> = {};
  for (const k of order) {
    const g = map.get(k);
    if (g !== undefined) out[k] = g.summary();
  }
  return out;
}

/** TTFT of a prompt alone on an idle replica with a cold cache: the request overhead, then its prefill chunks back to back. */
export function idleTtftMs(p: EngineProfile, promptTokens: number): number {
  let done = 0;
  let ms = p.requestOverheadMs ?? 0; // the API server's share comes first, loaded or idle
  while (done < promptTokens) {
    const n = Math.min(p.maxNumBatchedTokens, promptTokens - done);
    ms += stepTimeMs(p, { requests: 1, tokens: n, prefillPairs: prefillPairs(n, done), decodeContext: 0 });
    done += n;
  }
  return ms;
}
