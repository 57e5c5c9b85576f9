/**
 * @module tenancy/limits/local
 * The limiter of a single gateway process: the counters are Maps, and an admission checks and
 * reserves every scope in one synchronous stretch, so it is atomic without locks. Its rules are
 * windows.ts's and the same as the Redis limiter's (one test suite runs against both), with two
 * differences that only a fleet could see: a concurrency slot is a plain counter (a crashed process
 * loses its counters with it, so there is nothing to lease back), and budget alerts fired before a
 * restart fire once more after it (the flags are not persisted; the spend is, by `loadSpend`).
 */
import { randomUUID } from 'node:crypto';
import type {
  AdmitResult,
  BudgetAlert,
  Limiter,
  LimitName,
  LimitScope,
  LimitTicket,
  Reservation,
} from '../types.js';
import {
  type AdmissionPlan,
  type BudgetPlan,
  type LoadSpend,
  type ScopePlan,
  type TicketState,
  BUDGET_GRACE_MS,
  budgetAlerts,
  planAdmission,
  retryAfterS,
  settleDeltas,
  ticketState,
  toMicroUsd,
} from './windows.js';

export interface LocalLimiterOptions {
  /** Seeds a scope's budget counter the first time a period needs it (spend after a restart). */
  readonly loadSpend?: LoadSpend;
}

interface BudgetCounter {
  /** Spend plus outstanding reservations, micro-USD. */
  micro: number;
  soft: boolean;
  hard: boolean;
  readonly periodEndMs: number;
}

type WindowCounter = 'rpm' | 'itpm' | 'otpm';

export class LocalLimiter implements Limiter {
  readonly #loadSpend: LoadSpend | undefined;
  /** Minute window → `counter scopeId` → count. Windows older than the previous one are dropped. */
  readonly #windows = new Map<number, Map<string, number>>();
  readonly #concurrent = new Map<string, number>();
  /** `periodStartMs scopeId` → counter; dropped an hour after the period ends. */
  readonly #budgets = new Map<string, BudgetCounter>();
  readonly #loading = new Map<string, Promise<void>>();
  readonly #tickets = new Map<string, TicketState>();
  #sweptWindow = Number.NEGATIVE_INFINITY;

  constructor(opts: LocalLimiterOptions = {}) {
    this.#loadSpend = opts.loadSpend;
  }

  async admit(scopes: readonly LimitScope[], r: Reservation, nowMs: number): Promise<AdmitResult> {
    const plan = planAdmission(scopes, r, nowMs);
    this.#sweep(plan.window, nowMs);
    const loads = plan.scopes.flatMap((p) => {
      const load = p.budget && this.#seed(p.scope, p.budget);
      return load ? [load] : [];
    });
    if (loads.length > 0) await Promise.all(loads);
    // From here to the return nothing awaits: check all, then reserve in all.
    for (const p of plan.scopes) {
      const limit = this.#refusal(p, plan);
      if (limit !== null) {
        const retry = retryAfterS(limit, p, plan, nowMs);
        return { ok: false, limit, scope: p.scope.level, scopeId: p.scope.id, retryAfterS: retry };
      }
    }
    const alerts: BudgetAlert[] = [];
    for (const p of plan.scopes) {
      if (p.rpm !== null) this.#addWindow(plan.window, 'rpm', p.scope.id, 1, true);
      if (p.itpm !== null) this.#addWindow(plan.window, 'itpm', p.scope.id, plan.inputTokens, true);
      if (p.otpm !== null) this.#addWindow(plan.window, 'otpm', p.scope.id, plan.outputTokens, true);
      if (p.concurrent !== null) {
        this.#concurrent.set(p.scope.id, (this.#concurrent.get(p.scope.id) ?? 0) + 1);
      }
      if (p.budget !== null) {
        const key = budgetKey(p.scope.id, p.budget);
        let c = this.#budgets.get(key);
        if (!c) {
          c = { micro: 0, soft: false, hard: false, periodEndMs: p.budget.periodEndMs };
          this.#budgets.set(key, c);
        }
        c.micro += plan.costMicro;
        alerts.push(...this.#alerts(p.scope.id, p.budget, c));
      }
    }
    const id = randomUUID();
    this.#tickets.set(id, ticketState(plan));
    return { ok: true, ticket: { id }, alerts };
  }

  async settle(
    ticket: LimitTicket,
    actual: { inputTokens: number; outputTokens: number; costUsd: number },
    _nowMs: number,
  ): Promise<BudgetAlert[]> {
    const t = this.#tickets.get(ticket.id);
    if (!t) return [];
    this.#tickets.delete(ticket.id);
    const d = settleDeltas(t, actual);
    const alerts: BudgetAlert[] = [];
    for (const s of t.scopes) {
      if (s.itpm) this.#addWindow(t.window, 'itpm', s.id, d.input, false);
      if (s.otpm) this.#addWindow(t.window, 'otpm', s.id, d.output, false);
      if (s.concurrent) {
        const n = (this.#concurrent.get(s.id) ?? 0) - 1;
        if (n > 0) this.#concurrent.set(s.id, n);
        else this.#concurrent.delete(s.id);
      }
      if (s.budget) {
        const c = this.#budgets.get(budgetKey(s.id, s.budget));
        if (!c) continue; // the period's counter is gone: nothing left to correct
        c.micro = Math.max(0, c.micro + d.costMicro);
        alerts.push(...this.#alerts(s.id, s.budget, c));
      }
    }
    return alerts;
  }

  async close(): Promise<void> {
    this.#windows.clear();
    this.#concurrent.clear();
    this.#budgets.clear();
    this.#tickets.clear();
  }

  #refusal(p: ScopePlan, plan: AdmissionPlan): LimitName | null {
    const id = p.scope.id;
    if (p.rpm !== null && this.#count(plan.window, 'rpm', id) + 1 > p.rpm) return 'requests_per_minute';
    if (p.itpm !== null && this.#count(plan.window, 'itpm', id) + plan.inputTokens > p.itpm) {
      return 'input_tokens_per_minute';
    }
    if (p.otpm !== null && this.#count(plan.window, 'otpm', id) + plan.outputTokens > p.otpm) {
      return 'output_tokens_per_minute';
    }
    if (p.concurrent !== null && (this.#concurrent.get(id) ?? 0) + 1 > p.concurrent) {
      return 'concurrent_requests';
    }
    if (p.budget !== null && (this.#budgets.get(budgetKey(id, p.budget))?.micro ?? 0) >= p.budget.micro) {
      return 'budget';
    }
    return null;
  }

  #count(window: number, counter: WindowCounter, scopeId: string): number {
    return this.#windows.get(window)?.get(`${counter} ${scopeId}`) ?? 0;
  }

  /** Adds `n` (floored at 0); `create` false: only to a counter that still exists, as Redis does. */
  #addWindow(window: number, counter: WindowCounter, scopeId: string, n: number, create: boolean): void {
    let w = this.#windows.get(window);
    const key = `${counter} ${scopeId}`;
    const had = w?.get(key);
    if (had === undefined && !create) return;
    if (!w) {
      w = new Map();
      this.#windows.set(window, w);
    }
    w.set(key, Math.max(0, (had ?? 0) + n));
  }

  #alerts(scopeId: string, b: BudgetPlan, c: BudgetCounter): BudgetAlert[] {
    return budgetAlerts(scopeId, b, c.micro, (kind) => {
      if (c[kind]) return false;
      c[kind] = true;
      return true;
    });
  }

  /** Creates a scope's counter for a period from `loadSpend`, once even when admissions race. */
  #seed(scope: LimitScope, b: BudgetPlan): Promise<void> | undefined {
    const loadSpend = this.#loadSpend;
    const key = budgetKey(scope.id, b);
    if (!loadSpend || this.#budgets.has(key)) return undefined;
    let pending = this.#loading.get(key);
    if (!pending) {
      pending = loadSpend(scope, b.periodStartMs)
        .then((usd) => {
          if (!this.#budgets.has(key)) {
            this.#budgets.set(key, {
              micro: toMicroUsd(usd),
              soft: false,
              hard: false,
              periodEndMs: b.periodEndMs,
            });
          }
        })
        .finally(() => this.#loading.delete(key));
      this.#loading.set(key, pending);
    }
    return pending;
  }

  /** Drops minute windows before the previous one and budget periods an hour past their end. */
  #sweep(window: number, nowMs: number): void {
    if (window <= this.#sweptWindow) return;
    this.#sweptWindow = window;
    for (const w of this.#windows.keys()) if (w < window - 1) this.#windows.delete(w);
    for (const [key, c] of this.#budgets) {
      if (nowMs >= c.periodEndMs + BUDGET_GRACE_MS) this.#budgets.delete(key);
    }
  }
}

function budgetKey(scopeId: string, b: BudgetPlan): string {
  return `${b.periodStartMs} ${scopeId}`;
}
