/**
 * @module tenancy/limits/windows
 * The rules both limiters (local.ts in-process, redis.ts shared) obey, stated once: which scopes
 * count, which window and budget period a moment falls in, money as integer micro-USD (so a budget
 * summed from thousands of settlements is exact, and Redis can INCRBY it), the order limits are
 * checked in, and how long a refused client is told to wait. The limiters only keep the counters.
 *
 * Semantics, per scope that has the limit:
 * - requests / input tokens / output tokens per minute: fixed windows aligned to the UTC minute.
 *   Admitted when count + amount ≤ limit (amounts: 1, the reserved input tokens, the reserved
 *   output tokens); the amounts are added to the window the ticket remembers, and settlement adds
 *   (actual − reserved) tokens to that same window, floored at 0. Counters live about 2 minutes.
 * - concurrent requests: one slot per admitted request until it is settled (Redis: a lease of
 *   `leaseMs`, so a crashed replica's slots come back).
 * - budget: spend plus outstanding reservations per UTC day or month; a request is admitted while
 *   that total is under the budget (its estimate may overshoot), refused once it is reached.
 *   Alerts fire once per scope and period, when that total (reservations included) reaches
 *   alertAt × usd (`soft`) or usd (`hard`), at an admission or a settlement.
 * Scopes are checked in the order given (tenant → … → model) and, within one, in LIMIT_ORDER; the
 * first failure is the one reported, and nothing is reserved anywhere.
 */
import type { BudgetAlert, BudgetSpec, LimitName, LimitScope, Reservation } from '../types.js';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
/** Lifetime of a minute counter: its own minute, and one more for late settlements. */
export const WINDOW_TTL_MS = 2 * MINUTE_MS;
/** How long a budget counter outlives its period (settlements of requests that straddle the end). */
export const BUDGET_GRACE_MS = 3_600_000;
/** Default concurrency lease: a slot not settled within it is taken back (Redis). */
export const DEFAULT_LEASE_MS = 600_000;
export const DEFAULT_ALERT_AT = 0.8;
/** Retry-after for a request that can never fit in one window (larger than the whole limit). */
export const OVERSIZE_RETRY_S = 60;

/** Order of the checks within one scope; also the codes the Redis script returns (index + 1). */
export const LIMIT_ORDER: readonly LimitName[] = [
  'requests_per_minute',
  'input_tokens_per_minute',
  'output_tokens_per_minute',
  'concurrent_requests',
  'budget',
];

/** USD already spent by a scope since `periodStartMs` (from the usage ledger), to seed a budget. */
export type LoadSpend = (scope: LimitScope, periodStartMs: number) => Promise<number>;

/** The UTC minute `nowMs` falls in (window index). */
export function minuteWindow(nowMs: number): number {
  return Math.floor(nowMs / MINUTE_MS);
}

export function windowEndMs(window: number): number {
  return (window + 1) * MINUTE_MS;
}

export function periodStart(period: BudgetSpec['period'], nowMs: number): number {
  if (period === 'day') return Math.floor(nowMs / DAY_MS) * DAY_MS;
  const d = new Date(nowMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function periodEnd(period: BudgetSpec['period'], nowMs: number): number {
  if (period === 'day') return periodStart('day', nowMs) + DAY_MS;
  const d = new Date(nowMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Whole seconds until `untilMs`, at least 1. */
export function secondsUntil(untilMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((untilMs - nowMs) / 1000));
}

/** USD → integer micro-USD (negative and non-finite amounts count as 0). */
export function toMicroUsd(usd: number): number {
  return Number.isFinite(usd) && usd > 0 ? Math.round(usd * 1e6) : 0;
}

export function fromMicroUsd(micro: number): number {
  return micro / 1e6;
}

/** A token count as a non-negative integer. */
export function tokenCount(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

/** A scope's budget in the period `nowMs` falls in, in micro-USD. */
export interface BudgetPlan {
  readonly micro: number;
  /** Spend at which the soft alert fires. */
  readonly softMicro: number;
  readonly periodStartMs: number;
  readonly periodEndMs: number;
}

/** One scope's limits as an admission sees them (null: no such limit). */
export interface ScopePlan {
  readonly scope: LimitScope;
  readonly rpm: number | null;
  readonly itpm: number | null;
  readonly otpm: number | null;
  readonly concurrent: number | null;
  readonly budget: BudgetPlan | null;
}

export interface AdmissionPlan {
  readonly window: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costMicro: number;
  /** Scopes with at least one limit or a budget, first occurrence of each id, in the order given. */
  readonly scopes: readonly ScopePlan[];
}

/** An absent (or infinite) limit is none; a negative one refuses everything, as 0 does. */
function limitOf(n: number | undefined): number | null {
  return n === undefined || Number.isNaN(n) || n === Number.POSITIVE_INFINITY ? null : Math.max(0, n);
}

export function budgetPlan(b: BudgetSpec, nowMs: number): BudgetPlan {
  const micro = toMicroUsd(b.usd);
  return {
    micro,
    softMicro: Math.round(micro * (b.alertAt ?? DEFAULT_ALERT_AT)),
    periodStartMs: periodStart(b.period, nowMs),
    periodEndMs: periodEnd(b.period, nowMs),
  };
}

/** Whether a scope has any limit or budget an admission must check (else it costs nothing). */
export function isLimited(scope: LimitScope): boolean {
  const l = scope.limits;
  return (
    limitOf(l.requestsPerMinute) !== null ||
    limitOf(l.inputTokensPerMinute) !== null ||
    limitOf(l.outputTokensPerMinute) !== null ||
    limitOf(l.concurrentRequests) !== null ||
    (scope.budget !== null && Number.isFinite(scope.budget.usd))
  );
}

/** What an admission at `nowMs` must check and reserve. */
export function planAdmission(scopes: readonly LimitScope[], r: Reservation, nowMs: number): AdmissionPlan {
  const seen = new Set<string>();
  const plans: ScopePlan[] = [];
  for (const scope of scopes) {
    if (seen.has(scope.id)) continue;
    seen.add(scope.id);
    if (!isLimited(scope)) continue;
    plans.push({
      scope,
      rpm: limitOf(scope.limits.requestsPerMinute),
      itpm: limitOf(scope.limits.inputTokensPerMinute),
      otpm: limitOf(scope.limits.outputTokensPerMinute),
      concurrent: limitOf(scope.limits.concurrentRequests),
      budget: scope.budget && Number.isFinite(scope.budget.usd) ? budgetPlan(scope.budget, nowMs) : null,
    });
  }
  return {
    window: minuteWindow(nowMs),
    inputTokens: tokenCount(r.inputTokens),
    outputTokens: tokenCount(r.outputTokens),
    costMicro: toMicroUsd(r.costUsd),
    scopes: plans,
  };
}

/** Seconds a request refused by `limit` in scope `p` should wait. */
export function retryAfterS(limit: LimitName, p: ScopePlan, plan: AdmissionPlan, nowMs: number): number {
  const untilWindowEnd = (amount: number, cap: number | null): number =>
    cap !== null && amount > cap ? OVERSIZE_RETRY_S : secondsUntil(windowEndMs(plan.window), nowMs);
  switch (limit) {
    case 'requests_per_minute':
      return untilWindowEnd(1, p.rpm);
    case 'input_tokens_per_minute':
      return untilWindowEnd(plan.inputTokens, p.itpm);
    case 'output_tokens_per_minute':
      return untilWindowEnd(plan.outputTokens, p.otpm);
    case 'concurrent_requests':
      return 1;
    case 'budget':
      return secondsUntil(p.budget?.periodEndMs ?? nowMs, nowMs);
  }
}

/**
 * The alerts a budget counter now at `spentMicro` fires, given which were already fired this
 * period; `fire` marks one fired and says whether it was not yet (so each fires once).
 */
export function budgetAlerts(
  scopeId: string,
  b: Pick<BudgetPlan, 'micro' | 'softMicro'>,
  spentMicro: number,
  fire: (kind: BudgetAlert['kind']) => boolean,
): BudgetAlert[] {
  const out: BudgetAlert[] = [];
  for (const [kind, at] of [
    ['soft', b.softMicro],
    ['hard', b.micro],
  ] as const) {
    if (spentMicro >= at && fire(kind)) out.push(budgetAlert(scopeId, b.micro, spentMicro, kind));
  }
  return out;
}

export function budgetAlert(
  scopeId: string,
  budgetMicro: number,
  spentMicro: number,
  kind: BudgetAlert['kind'],
): BudgetAlert {
  return { scopeId, spentUsd: fromMicroUsd(spentMicro), budgetUsd: fromMicroUsd(budgetMicro), kind };
}

/** What a ticket reserved in one scope: the limits that held at admission, and its budget period. */
export interface TicketScope {
  readonly id: string;
  readonly itpm: boolean;
  readonly otpm: boolean;
  readonly concurrent: boolean;
  readonly budget: BudgetPlan | null;
}

/** What an admission reserved, kept by the limiter that admitted it until settlement. */
export interface TicketState {
  /** The minute window the tokens were reserved in (settlement corrects that window). */
  readonly window: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costMicro: number;
  readonly scopes: readonly TicketScope[];
}

export function ticketState(plan: AdmissionPlan): TicketState {
  return {
    window: plan.window,
    inputTokens: plan.inputTokens,
    outputTokens: plan.outputTokens,
    costMicro: plan.costMicro,
    scopes: plan.scopes.map((p) => ({
      id: p.scope.id,
      itpm: p.itpm !== null,
      otpm: p.otpm !== null,
      concurrent: p.concurrent !== null,
      budget: p.budget,
    })),
  };
}

/** Actual − reserved, per counter, for a settlement. */
export function settleDeltas(
  t: TicketState,
  actual: { inputTokens: number; outputTokens: number; costUsd: number },
): { input: number; output: number; costMicro: number } {
  return {
    input: tokenCount(actual.inputTokens) - t.inputTokens,
    output: tokenCount(actual.outputTokens) - t.outputTokens,
    costMicro: toMicroUsd(actual.costUsd) - t.costMicro,
  };
}
