/**
 * @module tenancy/types
 * Who is asking and what they may spend: tenants, projects, keys and their roles; the limits and
 * budgets that nest tenant → project → key → session (each level capped by its parent, as cgroups
 * nest); the usage ledger's rows; and the two seams behind them — the store (SQLite embedded,
 * PostgreSQL for a fleet) and the limiter (in-process, or Redis shared by every gateway replica).
 */

/** What a key may do: `admin` everything; `tenant-admin` its own tenant's admin routes; `member` inference. */
export type Role = 'admin' | 'tenant-admin' | 'member';
export const ROLES: readonly Role[] = ['admin', 'tenant-admin', 'member'];

/** Per-minute and concurrency limits of one scope; an absent field is no limit at that level. */
export interface LimitSpec {
  readonly requestsPerMinute?: number;
  readonly inputTokensPerMinute?: number;
  readonly outputTokensPerMinute?: number;
  readonly concurrentRequests?: number;
  /** `max_tokens` given to a request that names none. */
  readonly maxTokensDefault?: number;
  /** The largest `max_tokens` a request may ask for (larger is refused with 400). */
  readonly maxTokensCeiling?: number;
  /**
   * Output tokens a streamed answer may carry, whatever it asked for (the runaway-output guard: an
   * upstream that ignores `max_tokens`, or a prompt that makes a model write until the limit); the
   * stream is ended cleanly with `finish_reason: "length"` when it crosses this.
   */
  readonly maxOutputTokensPerRequest?: number;
}

/** A spending cap in USD over a calendar period (UTC). */
export interface BudgetSpec {
  readonly usd: number;
  readonly period: 'day' | 'month';
  /** Share of `usd` at which a soft alert is logged and counted (default 0.8). */
  readonly alertAt?: number;
}

export interface TenantRecord {
  /** Chosen by the operator: letters, digits, `.`, `_`, `-`. */
  readonly id: string;
  readonly limits: LimitSpec;
  readonly budget: BudgetSpec | null;
  /** Models or aliases the tenant may use; null = all. */
  readonly models: readonly string[] | null;
  /** Whether prompts and completions may be kept in the ledger (off unless the tenant opts in). */
  readonly storeContent: boolean;
  readonly suspended: boolean;
  readonly createdMs: number;
}

export interface ProjectRecord {
  readonly tenant: string;
  /** Unique within its tenant. */
  readonly id: string;
  readonly limits: LimitSpec;
  readonly budget: BudgetSpec | null;
  readonly createdMs: number;
}

export interface KeyRecord {
  /** Public id (`key_…`), used in the ledger, logs and the admin API; never the secret. */
  readonly id: string;
  /** The token's first characters, shown to recognise a key (`sk-swy-AbCd…`). */
  readonly prefix: string;
  /** Hex SHA-256 of the whole token: the only form of the secret that is stored. */
  readonly hash: string;
  readonly tenant: string;
  readonly project: string | null;
  readonly name: string;
  readonly roles: readonly Role[];
  /** Models or aliases this key may use (within its tenant's); null = the tenant's. */
  readonly models: readonly string[] | null;
  readonly limits: LimitSpec;
  readonly budget: BudgetSpec | null;
  readonly expiresMs: number | null;
  readonly revokedMs: number | null;
  /** Suspended by anomaly detection or an admin (reversible, unlike revocation). */
  readonly suspended: boolean;
  readonly createdMs: number;
}

/** One admin action, kept in the audit log. */
export interface AuditEntry {
  readonly timeMs: number;
  /** Key id of the caller (or `config`/`cli`). */
  readonly actor: string;
  /** e.g. `tenant.create`, `key.revoke`. */
  readonly action: string;
  /** Tenant the action concerned, if any (tenant admins see only their own). */
  readonly tenant: string | null;
  /** The target's id (tenant, project or key id). */
  readonly target: string;
  /** What changed, without secrets. */
  readonly detail: Readonly<Record<string, unknown>>;
}

/** One finished request: the usage ledger's row. No prompt or completion text unless opted in. */
export interface UsageRow {
  /** The gateway's request id: unique, so a batch written twice counts once. */
  readonly requestId: string;
  readonly timeMs: number;
  readonly tenant: string;
  readonly project: string | null;
  readonly keyId: string | null;
  readonly session: string | null;
  /** The model the client asked for (a pool, pool alias or tier alias). */
  readonly modelAsked: string;
  /** The pool that served it (`none` when it was refused before routing). */
  readonly pool: string;
  readonly endpoint: string;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly reasoningTokens: number;
  readonly costUsd: number;
  readonly latencyMs: number;
  readonly ttftMs: number | null;
  /** HTTP status the client got (499: the client left). */
  readonly status: number;
  /** The error code, queue drop reason or limit that ended it; null when it succeeded. */
  readonly reason: string | null;
  /** Prompt and completion text, only for tenants with `storeContent`. */
  readonly content: string | null;
}

/** Usage summed over one time bucket and group. */
export interface UsageBucket {
  /** Start of the bucket (UTC), ms. */
  readonly startMs: number;
  readonly tenant: string;
  /** Present when grouped by key / model; null otherwise. */
  readonly keyId: string | null;
  readonly model: string | null;
  readonly requests: number;
  readonly errors: number;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: number;
}

export interface UsageQuery {
  readonly tenant?: string;
  readonly keyId?: string;
  readonly model?: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly bucket: 'hour' | 'day';
  /** Split buckets by key and/or model (by tenant always). */
  readonly groupBy?: readonly ('key' | 'model')[];
}

/**
 * Persistent tenancy state. Implementations: store/sqlite.ts (embedded default) and
 * store/postgres.ts; both pass one shared test suite. Writes of admin objects are rare and may
 * block briefly; `insertUsage` is called off the request path by the ledger's batcher.
 */
export interface TenancyStore {
  /** Creates or upgrades the schema (idempotent; run on start). */
  migrate(): Promise<void>;

  createTenant(t: TenantRecord): Promise<void>;
  getTenant(id: string): Promise<TenantRecord | null>;
  listTenants(): Promise<TenantRecord[]>;
  /** Replaces the mutable fields; false when there is no such tenant. */
  updateTenant(t: TenantRecord): Promise<boolean>;
  /** Deletes the tenant, its projects and keys (usage rows stay); false when absent. */
  deleteTenant(id: string): Promise<boolean>;

  createProject(p: ProjectRecord): Promise<void>;
  getProject(tenant: string, id: string): Promise<ProjectRecord | null>;
  listProjects(tenant: string): Promise<ProjectRecord[]>;
  updateProject(p: ProjectRecord): Promise<boolean>;
  deleteProject(tenant: string, id: string): Promise<boolean>;

  insertKey(k: KeyRecord): Promise<void>;
  getKeyByHash(hash: string): Promise<KeyRecord | null>;
  getKey(id: string): Promise<KeyRecord | null>;
  /** Keys of one tenant, or all keys. */
  listKeys(tenant?: string): Promise<KeyRecord[]>;
  updateKey(k: KeyRecord): Promise<boolean>;

  appendAudit(e: AuditEntry): Promise<void>;
  /** Newest first. */
  listAudit(filter: { tenant?: string; limit: number }): Promise<AuditEntry[]>;

  /** Writes a batch in one transaction; rows whose request id is already stored are skipped. */
  insertUsage(rows: readonly UsageRow[]): Promise<void>;
  queryUsage(q: UsageQuery): Promise<UsageBucket[]>;
  /** Spend in USD of a tenant / project / key since `fromMs` (budgets' state after a restart). */
  spend(scope: { tenant: string; project?: string; keyId?: string }, fromMs: number): Promise<number>;
  /**
   * Keeps the ledger bounded: rolls raw rows older than `rawRetentionMs` into hourly roll-ups
   * (then deletes them), and hourly roll-ups older than `hourlyRetentionMs` into daily ones.
   * Usage queries read raw rows and roll-ups together, so totals do not change.
   */
  compact(nowMs: number, opts: { rawRetentionMs: number; hourlyRetentionMs: number }): Promise<void>;

  close(): Promise<void>;
}

/** One level of the nested limits an admission is checked against. */
export interface LimitScope {
  readonly level: 'tenant' | 'project' | 'key' | 'session' | 'model';
  /** Unique across levels, e.g. `tenant:acme`, `key:key_123`, `model:acme/gpt-4o`. */
  readonly id: string;
  readonly limits: LimitSpec;
  readonly budget: BudgetSpec | null;
}

/** What one request reserves at admission (settled with the actual amounts at its end). */
export interface Reservation {
  readonly inputTokens: number;
  /** The request's `max_tokens` (or the default): what it may still produce. */
  readonly outputTokens: number;
  /** Estimated cost: input estimate and `outputTokens` at the model's prices. */
  readonly costUsd: number;
}

/** Which limit refused a request. */
export type LimitName =
  | 'requests_per_minute'
  | 'input_tokens_per_minute'
  | 'output_tokens_per_minute'
  | 'concurrent_requests'
  | 'budget';

export type AdmitResult =
  | {
      readonly ok: true;
      readonly ticket: LimitTicket;
      /** Budget alerts this admission's cost reservation crossed (usually none). */
      readonly alerts: readonly BudgetAlert[];
    }
  | {
      readonly ok: false;
      readonly limit: LimitName;
      readonly scope: LimitScope['level'];
      readonly scopeId: string;
      /** Seconds until the refusing counter has room again (budget: until its period ends). */
      readonly retryAfterS: number;
    };

/** What an admission reserved, handed back at settlement. Opaque to the gateway. */
export interface LimitTicket {
  readonly id: string;
}

/** Budget alerts crossed by a settlement or admission, for logs and metrics. */
export interface BudgetAlert {
  readonly scopeId: string;
  readonly spentUsd: number;
  readonly budgetUsd: number;
  readonly kind: 'soft' | 'hard';
}

/**
 * Enforces limits and budgets. `admit` checks every scope and, only if all have room, reserves
 * one request, the token estimates, a concurrency slot and the cost estimate in each (atomically:
 * one Redis round trip in the shared limiter). `settle` replaces the reservation by the actual
 * amounts and frees the slot; it never fails the request and may complete in the background.
 */
export interface Limiter {
  admit(scopes: readonly LimitScope[], r: Reservation, nowMs: number): Promise<AdmitResult>;
  settle(
    ticket: LimitTicket,
    actual: { inputTokens: number; outputTokens: number; costUsd: number },
    nowMs: number,
  ): Promise<BudgetAlert[]>;
  close(): Promise<void>;
}
