/**
 * @module tenancy/limits/redis
 * The limiter shared by every gateway replica: the counters live in Redis, and each admission is
 * one Lua script (one EVALSHA, one round trip on the request path) that checks every scope and then
 * reserves in all of them, or refuses and reserves nothing — Redis runs a script alone, so two
 * replicas admitting at once cannot both take the last unit. Settlement is one script too. The
 * rules are windows.ts's, the same as the local limiter's (one test suite runs against both).
 *
 * Keys, under the prefix (default `swy:`): `rpm:|itpm:|otpm:<scope>:<minute>` (integers, PEXPIRE 2
 * minutes), `conc:<scope>` (sorted set of ticket ids scored by lease expiry, so a crashed replica's
 * slots come back after `leaseMs`), `budget:<scope>:<periodStartMs>` (micro-USD, kept an hour past
 * the period) with `…:soft` and `…:hard` flags that make each alert fire once fleet-wide. Time is
 * the caller's `nowMs`, not Redis's clock: replicas must keep their clocks in step (NTP is enough).
 * On Redis Cluster every key of one admission must share a slot: use a hash-tag prefix (`{swy}:`).
 *
 * A ticket's details stay in the replica that admitted it (the request lives there), which makes a
 * second settlement of it a no-op. The first admission of a period for a budgeted scope, when
 * `loadSpend` is given and the counter does not exist yet, costs two more round trips: the script
 * answers which counters are missing, they are seeded with SET NX (so two replicas seeding at once
 * add the ledger's spend once), and the script runs again.
 *
 * When Redis fails, `admit` and `settle` reject: whether to fail open or closed is the gateway's
 * choice. A failed settlement is not retried: its slot comes back with the lease, and its token and
 * cost reservations stay counted (the safe side).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { AdmitResult, BudgetAlert, Limiter, LimitScope, LimitTicket, Reservation } from '../types.js';
import {
  type AdmissionPlan,
  type BudgetPlan,
  type LoadSpend,
  type TicketState,
  BUDGET_GRACE_MS,
  DEFAULT_LEASE_MS,
  LIMIT_ORDER,
  MINUTE_MS,
  WINDOW_TTL_MS,
  budgetAlert,
  planAdmission,
  retryAfterS,
  settleDeltas,
  ticketState,
  toMicroUsd,
} from './windows.js';

export interface RedisLimiterOptions {
  /** A URL (`redis://host:6379/0`; the limiter owns and closes that client) or a client to share. */
  readonly redis: string | Redis;
  /** Prefix of every key (default `swy:`). */
  readonly prefix?: string;
  /** How long a concurrency slot is held without settlement before it is taken back (default 10 min). */
  readonly leaseMs?: number;
  /** Seeds a scope's budget counter when a period's counter does not exist yet (spend after a restart). */
  readonly loadSpend?: LoadSpend;
}

/**
 * KEYS, 7 per scope: rpm, itpm, otpm, conc, budget, soft flag, hard flag.
 * ARGV: now, window TTL, lease expiry, conc TTL, ticket, input tokens, output tokens, cost (µUSD),
 * seed (1: first answer which budget counters are missing); then 7 per scope: rpm, itpm, otpm,
 * conc limits, budget and soft threshold (µUSD), budget TTL (-1: no such limit).
 * Returns {0, scope, limit code} refused; {2, scope…} counters to seed first;
 * {1, scope, kind (1 soft, 2 hard), spent…} admitted, with the alerts crossed.
 */
const ADMIT_LUA = `
local G, S, K = 9, 7, 7
local n = #KEYS / K
local now = tonumber(ARGV[1])
local nin, nout = tonumber(ARGV[6]), tonumber(ARGV[7])
local function num(key) return tonumber(redis.call('GET', key) or '0') end
if ARGV[9] == '1' then
  local missing = {2}
  for i = 0, n - 1 do
    if tonumber(ARGV[G + i * S + 5]) >= 0 and redis.call('EXISTS', KEYS[i * K + 5]) == 0 then
      missing[#missing + 1] = i + 1
    end
  end
  if #missing > 1 then return missing end
end
for i = 0, n - 1 do
  local a, k = G + i * S, i * K
  local rpm, itpm, otpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local conc, budget = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  if rpm >= 0 and num(KEYS[k + 1]) + 1 > rpm then return {0, i + 1, 1} end
  if itpm >= 0 and num(KEYS[k + 2]) + nin > itpm then return {0, i + 1, 2} end
  if otpm >= 0 and num(KEYS[k + 3]) + nout > otpm then return {0, i + 1, 3} end
  if conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 4], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 4]) + 1 > conc then return {0, i + 1, 4} end
  end
  if budget >= 0 and num(KEYS[k + 5]) >= budget then return {0, i + 1, 5} end
end
local out = {1}
for i = 0, n - 1 do
  local a, k = G + i * S, i * K
  if tonumber(ARGV[a + 1]) >= 0 then
    redis.call('INCRBY', KEYS[k + 1], 1)
    redis.call('PEXPIRE', KEYS[k + 1], ARGV[2])
  end
  if tonumber(ARGV[a + 2]) >= 0 then
    redis.call('INCRBY', KEYS[k + 2], ARGV[6])
    redis.call('PEXPIRE', KEYS[k + 2], ARGV[2])
  end
  if tonumber(ARGV[a + 3]) >= 0 then
    redis.call('INCRBY', KEYS[k + 3], ARGV[7])
    redis.call('PEXPIRE', KEYS[k + 3], ARGV[2])
  end
  if tonumber(ARGV[a + 4]) >= 0 then
    redis.call('ZADD', KEYS[k + 4], ARGV[3], ARGV[5])
    redis.call('PEXPIRE', KEYS[k + 4], ARGV[4])
  end
  local budget = tonumber(ARGV[a + 5])
  if budget >= 0 then
    local ttl = ARGV[a + 7]
    local spent = redis.call('INCRBY', KEYS[k + 5], ARGV[8])
    redis.call('PEXPIRE', KEYS[k + 5], ttl)
    if spent >= tonumber(ARGV[a + 6]) and redis.call('SET', KEYS[k + 6], '1', 'NX', 'PX', ttl) then
      out[#out + 1] = i + 1; out[#out + 1] = 1; out[#out + 1] = spent
    end
    if spent >= budget and redis.call('SET', KEYS[k + 7], '1', 'NX', 'PX', ttl) then
      out[#out + 1] = i + 1; out[#out + 1] = 2; out[#out + 1] = spent
    end
  end
end
return out
`;

/**
 * KEYS, 6 per scope: itpm, otpm (the ticket's window), conc, budget, soft flag, hard flag.
 * ARGV: ticket; then 6 per scope: input delta, output delta, conc ('1'), cost delta (µUSD),
 * budget, soft threshold, flag TTL ('' where the scope has no such limit).
 * Counters that no longer exist are left alone; the others are floored at 0.
 * Returns {scope, kind (1 soft, 2 hard), spent…}: the alerts crossed.
 */
const SETTLE_LUA = `
local S, K = 7, 6
local n = #KEYS / K
local function adjust(key, d)
  if redis.call('EXISTS', key) == 0 then return nil end
  local v = redis.call('INCRBY', key, d)
  if v < 0 then
    redis.call('SET', key, '0', 'KEEPTTL')
    v = 0
  end
  return v
end
local out = {}
for i = 0, n - 1 do
  local a, k = 1 + i * S, i * K
  if ARGV[a + 1] ~= '' then adjust(KEYS[k + 1], ARGV[a + 1]) end
  if ARGV[a + 2] ~= '' then adjust(KEYS[k + 2], ARGV[a + 2]) end
  if ARGV[a + 3] ~= '' then redis.call('ZREM', KEYS[k + 3], ARGV[1]) end
  if ARGV[a + 4] ~= '' then
    local spent = adjust(KEYS[k + 4], ARGV[a + 4])
    local ttl = ARGV[a + 7]
    if spent and spent >= tonumber(ARGV[a + 6]) and redis.call('SET', KEYS[k + 5], '1', 'NX', 'PX', ttl) then
      out[#out + 1] = i + 1; out[#out + 1] = 1; out[#out + 1] = spent
    end
    if spent and spent >= tonumber(ARGV[a + 5]) and redis.call('SET', KEYS[k + 6], '1', 'NX', 'PX', ttl) then
      out[#out + 1] = i + 1; out[#out + 1] = 2; out[#out + 1] = spent
    end
  end
end
return out
`;

interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const ADMIT = script(ADMIT_LUA);
const SETTLE = script(SETTLE_LUA);

export class RedisLimiter implements Limiter {
  readonly #redis: Redis;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #loadSpend: LoadSpend | undefined;
  readonly #tickets = new Map<string, TicketState>();
  readonly #seeding = new Map<string, Promise<void>>();

  constructor(opts: RedisLimiterOptions) {
    this.#owned = typeof opts.redis === 'string';
    this.#redis = typeof opts.redis === 'string' ? new Redis(opts.redis) : opts.redis;
    this.#prefix = opts.prefix ?? 'swy:';
    this.#leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.#loadSpend = opts.loadSpend;
  }

  async admit(scopes: readonly LimitScope[], r: Reservation, nowMs: number): Promise<AdmitResult> {
    const plan = planAdmission(scopes, r, nowMs);
    const id = randomUUID();
    if (plan.scopes.length === 0) return this.#admitted(id, plan, []);
    const keys: string[] = [];
    const perScope: (string | number)[] = [];
    for (const p of plan.scopes) {
      const budget = p.budget;
      keys.push(
        this.#windowKey('rpm', p.scope.id, plan.window),
        this.#windowKey('itpm', p.scope.id, plan.window),
        this.#windowKey('otpm', p.scope.id, plan.window),
        this.#concKey(p.scope.id),
        ...this.#budgetKeys(p.scope.id, budget),
      );
      perScope.push(
        p.rpm ?? -1,
        p.itpm ?? -1,
        p.otpm ?? -1,
        p.concurrent ?? -1,
        budget?.micro ?? -1,
        budget?.softMicro ?? -1,
        budget ? budgetTtlMs(budget, nowMs) : -1,
      );
    }
    const head = (seed: boolean): (string | number)[] => [
      nowMs,
      WINDOW_TTL_MS,
      nowMs + this.#leaseMs,
      this.#leaseMs + MINUTE_MS,
      id,
      plan.inputTokens,
      plan.outputTokens,
      plan.costMicro,
      seed ? 1 : 0,
    ];
    let reply = await this.#run(ADMIT, keys, [...head(this.#loadSpend !== undefined), ...perScope]);
    if (reply[0] === 2) {
      // Budget counters missing: seed them from the ledger, then run once more without asking.
      await Promise.all(reply.slice(1).map((i) => this.#seed(plan, i - 1, nowMs)));
      reply = await this.#run(ADMIT, keys, [...head(false), ...perScope]);
    }
    if (reply[0] === 0) {
      const p = plan.scopes[reply[1]! - 1]!;
      const limit = LIMIT_ORDER[reply[2]! - 1]!;
      const retry = retryAfterS(limit, p, plan, nowMs);
      return { ok: false, limit, scope: p.scope.level, scopeId: p.scope.id, retryAfterS: retry };
    }
    const alerts: BudgetAlert[] = [];
    for (let j = 1; j + 2 < reply.length; j += 3) {
      const p = plan.scopes[reply[j]! - 1]!;
      alerts.push(
        budgetAlert(p.scope.id, p.budget!.micro, reply[j + 2]!, reply[j + 1] === 1 ? 'soft' : 'hard'),
      );
    }
    return this.#admitted(id, plan, alerts);
  }

  async settle(
    ticket: LimitTicket,
    actual: { inputTokens: number; outputTokens: number; costUsd: number },
    nowMs: number,
  ): Promise<BudgetAlert[]> {
    const t = this.#tickets.get(ticket.id);
    if (!t) return [];
    this.#tickets.delete(ticket.id);
    const d = settleDeltas(t, actual);
    const keys: string[] = [];
    const args: (string | number)[] = [ticket.id];
    for (const s of t.scopes) {
      if (!s.itpm && !s.otpm && !s.concurrent && !s.budget) continue;
      keys.push(
        this.#windowKey('itpm', s.id, t.window),
        this.#windowKey('otpm', s.id, t.window),
        this.#concKey(s.id),
        ...this.#budgetKeys(s.id, s.budget),
      );
      args.push(
        s.itpm ? d.input : '',
        s.otpm ? d.output : '',
        s.concurrent ? '1' : '',
        s.budget ? d.costMicro : '',
        s.budget?.micro ?? '',
        s.budget?.softMicro ?? '',
        s.budget ? budgetTtlMs(s.budget, nowMs) : '',
      );
    }
    if (keys.length === 0) return [];
    const reply = await this.#run(SETTLE, keys, args);
    const used = t.scopes.filter((s) => s.itpm || s.otpm || s.concurrent || s.budget);
    const alerts: BudgetAlert[] = [];
    for (let j = 0; j + 2 < reply.length; j += 3) {
      const s = used[reply[j]! - 1]!;
      alerts.push(budgetAlert(s.id, s.budget!.micro, reply[j + 2]!, reply[j + 1] === 1 ? 'soft' : 'hard'));
    }
    return alerts;
  }

  async close(): Promise<void> {
    this.#tickets.clear();
    if (this.#owned) await this.#redis.quit();
  }

  #admitted(id: string, plan: AdmissionPlan, alerts: BudgetAlert[]): AdmitResult {
    this.#tickets.set(id, ticketState(plan));
    return { ok: true, ticket: { id }, alerts };
  }

  #windowKey(counter: 'rpm' | 'itpm' | 'otpm', scopeId: string, window: number): string {
    return `${this.#prefix}${counter}:${scopeId}:${window}`;
  }

  #concKey(scopeId: string): string {
    return `${this.#prefix}conc:${scopeId}`;
  }

  /** The counter and its two flags; for a scope without budget, names that are never touched. */
  #budgetKeys(scopeId: string, b: BudgetPlan | null): [string, string, string] {
    const key = `${this.#prefix}budget:${scopeId}:${b?.periodStartMs ?? 'none'}`;
    return [key, `${key}:soft`, `${key}:hard`];
  }

  /** Sets a missing budget counter to the ledger's spend (SET NX: a racing replica's seed wins). */
  #seed(plan: AdmissionPlan, index: number, nowMs: number): Promise<void> {
    const p = plan.scopes[index]!;
    const b = p.budget!;
    const [key] = this.#budgetKeys(p.scope.id, b);
    let pending = this.#seeding.get(key);
    if (!pending) {
      const loadSpend = this.#loadSpend!;
      pending = (async () => {
        const micro = toMicroUsd(await loadSpend(p.scope, b.periodStartMs));
        await this.#redis.set(key, micro, 'PX', budgetTtlMs(b, nowMs), 'NX');
      })().finally(() => this.#seeding.delete(key));
      this.#seeding.set(key, pending);
    }
    return pending;
  }

  /** EVALSHA; after a Redis restart or SCRIPT FLUSH (NOSCRIPT), EVAL, which caches it again. */
  async #run(s: Script, keys: string[], args: (string | number)[]): Promise<number[]> {
    try {
      return (await this.#redis.evalsha(s.sha, keys.length, ...keys, ...args)) as number[];
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return (await this.#redis.eval(s.lua, keys.length, ...keys, ...args)) as number[];
    }
  }
}

function budgetTtlMs(b: BudgetPlan, nowMs: number): number {
  return Math.max(1, b.periodEndMs - nowMs + BUDGET_GRACE_MS);
}
