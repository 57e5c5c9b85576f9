/**
 * @module tenancy/service
 * The gateway's tenancy: one per process, outliving config reloads. It resolves each request's
 * principal, checks the model against its allow-lists, applies `max_tokens` caps, reserves the
 * nested limits and budgets before the request is queued or routed, and at the request's single
 * finish settles them with the real usage and appends the ledger row. The store is optional
 * (no `database.url`: config keys and tenants only, no ledger); limits are per process unless
 * `redis.url` is set.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { SwitchyardConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';
import type { Logger } from '../obs/logger.js';
import { IdentityResolver, type Principal, authEnabled } from './identity.js';
import { bearerToken } from './keys.js';
import { UsageLedger } from './ledger.js';
import { LocalLimiter } from './limits/local.js';
import { RedisLimiter } from './limits/redis.js';
import { isLimited } from './limits/windows.js';
import { type Prices, costUsd } from './prices.js';
import { openStore } from './store/index.js';
import type {
  BudgetAlert,
  LimitName,
  LimitScope,
  LimitTicket,
  Limiter,
  Reservation,
  TenancyStore,
} from './types.js';

const LIMIT_ERRORS = {
  requests_per_minute: 'SWY_ERR_RATE_LIMIT_REQUESTS',
  input_tokens_per_minute: 'SWY_ERR_RATE_LIMIT_INPUT_TOKENS',
  output_tokens_per_minute: 'SWY_ERR_RATE_LIMIT_OUTPUT_TOKENS',
  concurrent_requests: 'SWY_ERR_CONCURRENCY_LIMIT',
  budget: 'SWY_ERR_BUDGET_EXCEEDED',
} as const satisfies Record<LimitName, string>;

/**
 * Output tokens reserved for a request that names no `max_tokens` and has no default: what it may
 * produce is unknown, so the reservation is a typical answer's size; settlement corrects it.
 */
const UNKNOWN_OUTPUT_RESERVATION = 512;

/** What {@link Tenancy.admit} decided for one request. */
export interface Admission {
  readonly ticket: LimitTicket | null;
  /** `max_tokens` to send upstream when a default applied (the request named none); else null. */
  readonly injectMaxTokens: number | null;
  readonly reservation: Reservation;
  /** Output tokens after which a stream is ended (the smallest `maxOutputTokensPerRequest`); null: none. */
  readonly outputGuard: number | null;
}

/** How one request ended, for settlement and the ledger. */
export interface RequestOutcome {
  readonly requestId: string;
  readonly modelAsked: string;
  readonly pool: string;
  readonly endpoint: string;
  readonly prices: Prices | undefined;
  /** USD of answers the client never got (a cascade's first answer). */
  readonly extraCostUsd: number;
  readonly session: string | null;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly reasoningTokens: number;
  readonly latencyMs: number;
  readonly ttftMs: number | null;
  readonly status: number;
  readonly reason: string | null;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Refuses a config that would serve a non-loopback address without authentication unless
 * `auth.mode: none` is written out; returns a warning to log when it is.
 */
export function checkExposure(config: SwitchyardConfig): string | null {
  const host = config.server.host;
  if (isLoopback(host) || authEnabled(config)) return null;
  if (config.auth.mode === 'none')
    return `serving ${host} without authentication (auth.mode: none): anyone who reaches it can use every model`;
  throw new SwitchyardError(
    'SWY_ERR_INVALID_REQUEST',
    `server.host ${host} is not a loopback address and no authentication is configured: configure keys (docs/tenancy.md) or write auth: { mode: none }`,
  );
}

export class Tenancy {
  private identity: IdentityResolver;

  private constructor(
    config: SwitchyardConfig,
    readonly store: TenancyStore | null,
    readonly limiter: Limiter,
    readonly ledger: UsageLedger | null,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.identity = new IdentityResolver(config, store, clock);
  }

  static async open(config: SwitchyardConfig, clock: Clock, log: Logger): Promise<Tenancy> {
    const warning = checkExposure(config);
    if (warning !== null) log.warn(warning);
    const store =
      config.database.url === undefined
        ? null
        : openStore(config.database.url, { schema: config.database.schema });
    try {
      await store?.migrate();
      // Budgets resume from the ledger after a restart (the ledger's last interval excepted).
      const loadSpend =
        store === null
          ? undefined
          : (scope: LimitScope, fromMs: number) => store.spend(spendScope(scope), fromMs);
      const limiter: Limiter =
        config.redis.url === undefined
          ? new LocalLimiter({ loadSpend })
          : new RedisLimiter({ redis: config.redis.url, prefix: config.redis.prefix, loadSpend });
      const d = config.database;
      const ledger =
        store === null
          ? null
          : new UsageLedger(store, {
              flushMs: d.ledgerFlushMs,
              maxBatch: d.ledgerMaxBatch,
              maxBuffered: d.ledgerMaxBuffered,
              onError: (err) => log.error({ err: (err as Error).message }, 'usage ledger write failed'),
            });
      return new Tenancy(config, store, limiter, ledger, clock, log);
    } catch (err) {
      await store?.close();
      throw err;
    }
  }

  /** Whether requests must carry a key. */
  get authRequired(): boolean {
    return this.identity.enabled;
  }

  /** A reload: config keys and tenants change; the store, limiter and ledger stay. */
  reconfigure(config: SwitchyardConfig): void {
    this.identity = new IdentityResolver(config, this.store, this.clock);
  }

  /** Drops cached keys after an admin change made through this process. */
  invalidate(): void {
    this.identity.invalidate();
  }

  /**
   * The caller: from its key when authentication is on (401 otherwise), else the anonymous
   * principal of the tenant its `x-switchyard-tenant` header names.
   */
  principal(headers: IncomingHttpHeaders): Principal | Promise<Principal> {
    if (!this.identity.enabled) {
      const t = headers['x-switchyard-tenant'];
      return this.identity.anonymous(typeof t === 'string' && t.length > 0 ? t : null);
    }
    return this.identity.authenticate(bearerToken(headers));
  }

  /**
   * Checks `model` against the principal's allow-list (403), applies the `max_tokens` ceiling
   * (400) and default, and reserves every scope's limits and budget (429 naming the limit).
   */
  async admit(
    p: Principal,
    a: { model: string; prices: Prices | undefined; promptTokens: number; maxTokens: number | null },
  ): Promise<Admission> {
    if (p.models !== null && !p.models.includes(a.model)) {
      throw new SwitchyardError(
        'SWY_ERR_MODEL_NOT_ALLOWED',
        `Your key may not use the model \`${a.model}\``,
        { param: 'model' },
      );
    }
    let ceiling = Number.POSITIVE_INFINITY;
    let guard = Number.POSITIVE_INFINITY;
    let dflt: number | null = null;
    // Outermost first: each level's ceiling caps; the innermost default wins.
    for (const s of p.scopes) {
      if (s.limits.maxTokensCeiling !== undefined) ceiling = Math.min(ceiling, s.limits.maxTokensCeiling);
      if (s.limits.maxTokensDefault !== undefined) dflt = s.limits.maxTokensDefault;
      guard = Math.min(guard, s.limits.maxOutputTokensPerRequest ?? guard);
    }
    if (a.maxTokens !== null && a.maxTokens > ceiling) {
      throw new SwitchyardError(
        'SWY_ERR_INVALID_REQUEST',
        `max_tokens ${a.maxTokens} is above this key's ceiling of ${ceiling}`,
        { param: 'max_tokens' },
      );
    }
    const injectMaxTokens = a.maxTokens === null && dflt !== null ? Math.min(dflt, ceiling) : null;
    const outputTokens =
      a.maxTokens ?? injectMaxTokens ?? (Number.isFinite(ceiling) ? ceiling : UNKNOWN_OUTPUT_RESERVATION);
    const reservation: Reservation = {
      inputTokens: a.promptTokens,
      outputTokens,
      costUsd: costUsd(a.prices, {
        inputTokens: a.promptTokens,
        cachedInputTokens: 0,
        outputTokens,
        reasoningTokens: 0,
      }),
    };
    // Minute windows and budget periods are UTC calendar time: epoch ms, not the monotonic clock.
    const outputGuard = Number.isFinite(guard) ? guard : null;
    // A caller with no limit or budget anywhere (the default gateway's) skips the limiter: nothing to settle.
    if (!p.scopes.some(isLimited)) return { ticket: null, injectMaxTokens, reservation, outputGuard };
    const r = await this.limiter.admit(p.scopes, reservation, Date.now());
    if (!r.ok) {
      throw new SwitchyardError(
        LIMIT_ERRORS[r.limit],
        `${r.limit.replaceAll('_', ' ')} limit reached for ${r.scopeId}`,
        { retryAfterS: Math.max(1, Math.ceil(r.retryAfterS)) },
      );
    }
    this.logAlerts(r.alerts);
    return {
      ticket: r.ticket,
      injectMaxTokens,
      reservation,
      outputGuard,
    };
  }

  /** Settles a request's reservation and appends its ledger row (never throws, never waits on I/O). */
  finish(p: Principal, admission: Admission | null, o: RequestOutcome): void {
    const cost = costUsd(o.prices, o) + o.extraCostUsd;
    if (admission?.ticket) {
      const ticket = admission.ticket;
      this.limiter
        .settle(
          ticket,
          { inputTokens: o.inputTokens, outputTokens: o.outputTokens, costUsd: cost },
          Date.now(),
        )
        .then((alerts) => this.logAlerts(alerts))
        .catch((err: Error) => this.log.error({ err: err.message }, 'limit settlement failed'));
    }
    this.ledger?.append({
      requestId: o.requestId,
      timeMs: Date.now(),
      tenant: p.tenant,
      project: p.project,
      keyId: p.keyId === 'anonymous' ? null : p.keyId,
      session: o.session,
      modelAsked: o.modelAsked,
      pool: o.pool,
      endpoint: o.endpoint,
      inputTokens: o.inputTokens,
      cachedInputTokens: o.cachedInputTokens,
      outputTokens: o.outputTokens,
      reasoningTokens: o.reasoningTokens,
      costUsd: cost,
      latencyMs: o.latencyMs,
      ttftMs: o.ttftMs,
      status: o.status,
      reason: o.reason,
      content: null,
    });
  }

  private logAlerts(alerts: readonly BudgetAlert[]): void {
    for (const a of alerts)
      this.log.warn(
        { scope: a.scopeId, spentUsd: a.spentUsd, budgetUsd: a.budgetUsd, kind: a.kind },
        a.kind === 'hard' ? 'budget exhausted' : 'budget alert',
      );
  }

  async close(): Promise<void> {
    await this.ledger?.close();
    await this.limiter.close();
    await this.store?.close();
  }
}

/** The ledger filter of a limit scope, for budgets' spend after a restart. */
function spendScope(s: LimitScope): { tenant: string; project?: string; keyId?: string } {
  const id = s.id.slice(s.id.indexOf(':') + 1);
  switch (s.level) {
    case 'project': {
      const [tenant, project] = id.split('/') as [string, string];
      return { tenant, project };
    }
    case 'key': {
      const [tenant, keyId] = id.split('/') as [string, string];
      return { tenant, keyId };
    }
    default:
      return { tenant: id };
  }
}
