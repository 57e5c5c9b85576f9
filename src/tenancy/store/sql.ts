/**
 * @module tenancy/store/sql
 * What the SQLite and PostgreSQL stores share: each record's columns and its mapping to and from a
 * row, and the usage statements (query, spend, roll-up), whose SQL is the same in both dialects
 * once table names and parameter placeholders are filled in. One text for both keeps their answers
 * identical, which the shared test suite checks.
 *
 * Roll-up rows store an absent project or key as '' (never a real id), because a primary key
 * cannot hold NULL in PostgreSQL and does not unify NULLs in SQLite; usage queries map '' back to
 * null. Row values are read through `Number()`, so PostgreSQL's BIGINT and NUMERIC (strings in
 * `pg`) arrive as numbers.
 */
import type {
  AuditEntry,
  BudgetSpec,
  KeyRecord,
  LimitSpec,
  ProjectRecord,
  Role,
  TenantRecord,
  UsageBucket,
  UsageQuery,
  UsageRow,
} from '../types.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export type Table = 'tenants' | 'projects' | 'keys' | 'audit' | 'usage' | 'usage_hourly' | 'usage_daily';
/** Each table's name as written in SQL (schema-qualified in PostgreSQL). */
export type Tables = Readonly<Record<Table, string>>;
/** A parameter's placeholder, by name: `@name` in SQLite, `$n` in PostgreSQL. */
export type Placeholder = (name: string) => string;
/** A row as a driver returns it, or statement parameters by name. */
export type Row = Record<string, unknown>;

export const TENANT_COLUMNS = [
  'id',
  'limits',
  'budget',
  'models',
  'store_content',
  'suspended',
  'created_ms',
] as const;
export const TENANT_MUTABLE = ['limits', 'budget', 'models', 'store_content', 'suspended'] as const;
export const PROJECT_COLUMNS = ['tenant', 'id', 'limits', 'budget', 'created_ms'] as const;
export const PROJECT_MUTABLE = ['limits', 'budget'] as const;
export const KEY_COLUMNS = [
  'id',
  'prefix',
  'hash',
  'tenant',
  'project',
  'name',
  'roles',
  'models',
  'limits',
  'budget',
  'expires_ms',
  'revoked_ms',
  'suspended',
  'created_ms',
] as const;
/** A key's id, secret hash, tenant and creation time never change; a new secret is a new key. */
export const KEY_MUTABLE = [
  'project',
  'name',
  'roles',
  'models',
  'limits',
  'budget',
  'expires_ms',
  'revoked_ms',
  'suspended',
] as const;
export const AUDIT_COLUMNS = ['time_ms', 'actor', 'action', 'tenant', 'target', 'detail'] as const;
export const USAGE_COLUMNS = [
  'request_id',
  'time_ms',
  'tenant',
  'project',
  'key_id',
  'session',
  'model_asked',
  'pool',
  'endpoint',
  'input_tokens',
  'cached_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'cost_usd',
  'latency_ms',
  'ttft_ms',
  'status',
  'reason',
  'content',
] as const;

/** The roll-up tables' key, in primary-key order, and their sums. */
const ROLLUP_KEY = ['start_ms', 'tenant', 'project', 'key_id', 'model', 'pool'] as const;
const ROLLUP_SUMS = [
  'requests',
  'errors',
  'input_tokens',
  'cached_input_tokens',
  'output_tokens',
  'reasoning_tokens',
  'cost_usd',
] as const;

/** The named columns of a parameter row (an update's SET list). */
export function pick(row: Row, columns: readonly string[]): Row {
  const out: Row = {};
  for (const c of columns) out[c] = row[c];
  return out;
}

export function insertSql(table: string, columns: readonly string[], ph: Placeholder): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(ph).join(', ')})`;
}

export function updateSql(
  table: string,
  set: readonly string[],
  where: readonly string[],
  ph: Placeholder,
): string {
  const assignments = set.map((c) => `${c} = ${ph(c)}`).join(', ');
  return `UPDATE ${table} SET ${assignments} WHERE ${where.map((c) => `${c} = ${ph(c)}`).join(' AND ')}`;
}

const json = (v: unknown): string => JSON.stringify(v);
const jsonOrNull = (v: unknown): string | null => (v === null ? null : JSON.stringify(v));
const parsed = <T>(v: unknown): T => JSON.parse(String(v)) as T;
const parsedOrNull = <T>(v: unknown): T | null => (v === null ? null : (JSON.parse(String(v)) as T));
const numberOrNull = (v: unknown): number | null => (v === null ? null : Number(v));
const stringOrNull = (v: unknown): string | null => (v === null ? null : String(v));

export function tenantParams(t: TenantRecord): Row {
  return {
    id: t.id,
    limits: json(t.limits),
    budget: jsonOrNull(t.budget),
    models: jsonOrNull(t.models),
    store_content: t.storeContent,
    suspended: t.suspended,
    created_ms: t.createdMs,
  };
}

export function tenantFromRow(r: Row): TenantRecord {
  return {
    id: String(r.id),
    limits: parsed<LimitSpec>(r.limits),
    budget: parsedOrNull<BudgetSpec>(r.budget),
    models: parsedOrNull<string[]>(r.models),
    storeContent: Boolean(r.store_content),
    suspended: Boolean(r.suspended),
    createdMs: Number(r.created_ms),
  };
}

export function projectParams(p: ProjectRecord): Row {
  return {
    tenant: p.tenant,
    id: p.id,
    limits: json(p.limits),
    budget: jsonOrNull(p.budget),
    created_ms: p.createdMs,
  };
}

export function projectFromRow(r: Row): ProjectRecord {
  return {
    tenant: String(r.tenant),
    id: String(r.id),
    limits: parsed<LimitSpec>(r.limits),
    budget: parsedOrNull<BudgetSpec>(r.budget),
    createdMs: Number(r.created_ms),
  };
}

export function keyParams(k: KeyRecord): Row {
  return {
    id: k.id,
    prefix: k.prefix,
    hash: k.hash,
    tenant: k.tenant,
    project: k.project,
    name: k.name,
    roles: json(k.roles),
    models: jsonOrNull(k.models),
    limits: json(k.limits),
    budget: jsonOrNull(k.budget),
    expires_ms: k.expiresMs,
    revoked_ms: k.revokedMs,
    suspended: k.suspended,
    created_ms: k.createdMs,
  };
}

export function keyFromRow(r: Row): KeyRecord {
  return {
    id: String(r.id),
    prefix: String(r.prefix),
    hash: String(r.hash),
    tenant: String(r.tenant),
    project: stringOrNull(r.project),
    name: String(r.name),
    roles: parsed<Role[]>(r.roles),
    models: parsedOrNull<string[]>(r.models),
    limits: parsed<LimitSpec>(r.limits),
    budget: parsedOrNull<BudgetSpec>(r.budget),
    expiresMs: numberOrNull(r.expires_ms),
    revokedMs: numberOrNull(r.revoked_ms),
    suspended: Boolean(r.suspended),
    createdMs: Number(r.created_ms),
  };
}

export function auditParams(e: AuditEntry): Row {
  return {
    time_ms: e.timeMs,
    actor: e.actor,
    action: e.action,
    tenant: e.tenant,
    target: e.target,
    detail: json(e.detail),
  };
}

export function auditFromRow(r: Row): AuditEntry {
  return {
    timeMs: Number(r.time_ms),
    actor: String(r.actor),
    action: String(r.action),
    tenant: stringOrNull(r.tenant),
    target: String(r.target),
    detail: parsed<Record<string, unknown>>(r.detail),
  };
}

export function usageParams(u: UsageRow): Row {
  return {
    request_id: u.requestId,
    time_ms: u.timeMs,
    tenant: u.tenant,
    project: u.project,
    key_id: u.keyId,
    session: u.session,
    model_asked: u.modelAsked,
    pool: u.pool,
    endpoint: u.endpoint,
    input_tokens: u.inputTokens,
    cached_input_tokens: u.cachedInputTokens,
    output_tokens: u.outputTokens,
    reasoning_tokens: u.reasoningTokens,
    cost_usd: u.costUsd,
    latency_ms: u.latencyMs,
    ttft_ms: u.ttftMs,
    status: u.status,
    reason: u.reason,
    content: u.content,
  };
}

export function listAuditSql(tables: Tables, byTenant: boolean, ph: Placeholder): string {
  const where = byTenant ? ` WHERE tenant = ${ph('tenant')}` : '';
  return (
    `SELECT ${AUDIT_COLUMNS.join(', ')} FROM ${tables.audit}${where}` +
    ` ORDER BY time_ms DESC, id DESC LIMIT ${ph('limit')}`
  );
}

/**
 * The usage query: raw rows and both roll-ups, each filtered on its own time column, summed per
 * bucket. A roll-up row counts when its start lies in [fromMs, toMs), so a range that does not
 * begin and end on the roll-ups' boundaries counts a rolled-up hour or day whole or not at all.
 * Daily roll-ups cannot be split into hours: with `bucket: 'hour'` they count in the bucket of
 * their day's start (00:00 UTC).
 */
export function usageQuerySql(q: UsageQuery, tables: Tables, ph: Placeholder): string {
  const size = q.bucket === 'hour' ? HOUR_MS : DAY_MS;
  const byKey = q.groupBy?.includes('key') ?? false;
  const byModel = q.groupBy?.includes('model') ?? false;
  const where = (time: string, model: string): string => {
    const terms = [`${time} >= ${ph('from')}`, `${time} < ${ph('to')}`];
    if (q.tenant !== undefined) terms.push(`tenant = ${ph('tenant')}`);
    if (q.keyId !== undefined) terms.push(`key_id = ${ph('keyId')}`);
    if (q.model !== undefined) terms.push(`${model} = ${ph('model')}`);
    return terms.join(' AND ');
  };
  const sums = 'requests, errors, input_tokens, cached_input_tokens, output_tokens, cost_usd';
  const rollUp = (table: string) =>
    `SELECT start_ms AS t, tenant, key_id, model, ${sums} FROM ${table} WHERE ${where('start_ms', 'model')}`;
  const group = ['1', 'tenant', ...(byKey ? ['key_id'] : []), ...(byModel ? ['model'] : [])];
  return `SELECT (t / ${size}) * ${size} AS start_ms, tenant,
      ${byKey ? 'key_id' : 'NULL'} AS key_id, ${byModel ? 'model' : 'NULL'} AS model,
      SUM(requests) AS requests, SUM(errors) AS errors, SUM(input_tokens) AS input_tokens,
      SUM(cached_input_tokens) AS cached_input_tokens, SUM(output_tokens) AS output_tokens,
      SUM(cost_usd) AS cost_usd
    FROM (
      SELECT time_ms AS t, tenant, COALESCE(key_id, '') AS key_id, model_asked AS model, 1 AS requests,
        CASE WHEN status >= 400 THEN 1 ELSE 0 END AS errors,
        input_tokens, cached_input_tokens, output_tokens, cost_usd
      FROM ${tables.usage} WHERE ${where('time_ms', 'model_asked')}
      UNION ALL ${rollUp(tables.usage_hourly)}
      UNION ALL ${rollUp(tables.usage_daily)}
    ) u
    GROUP BY ${group.join(', ')}`;
}

export function usageQueryParams(q: UsageQuery): Row {
  const params: Row = { from: q.fromMs, to: q.toMs };
  if (q.tenant !== undefined) params.tenant = q.tenant;
  if (q.keyId !== undefined) params.keyId = q.keyId;
  if (q.model !== undefined) params.model = q.model;
  return params;
}

/** Buckets from {@link usageQuerySql}'s rows, sorted by start, tenant, key, model (no key first). */
export function usageBuckets(rows: readonly Row[]): UsageBucket[] {
  const buckets = rows.map(
    (r): UsageBucket => ({
      startMs: Number(r.start_ms),
      tenant: String(r.tenant),
      keyId: r.key_id === null || r.key_id === '' ? null : String(r.key_id),
      model: stringOrNull(r.model),
      requests: Number(r.requests),
      errors: Number(r.errors),
      inputTokens: Number(r.input_tokens),
      cachedInputTokens: Number(r.cached_input_tokens),
      outputTokens: Number(r.output_tokens),
      costUsd: Number(r.cost_usd),
    }),
  );
  // Sorted here rather than in SQL: PostgreSQL orders text by the database's collation.
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return buckets.sort(
    (a, b) =>
      a.startMs - b.startMs ||
      cmp(a.tenant, b.tenant) ||
      cmp(a.keyId ?? '', b.keyId ?? '') ||
      cmp(a.model ?? '', b.model ?? ''),
  );
}

/**
 * Cost since `from` over raw rows and roll-ups. Roll-ups count by their start, which is exact when
 * `from` is an hour's start (every budget period begins at 00:00 UTC).
 */
export function spendSql(
  tables: Tables,
  scope: { project?: string; keyId?: string },
  ph: Placeholder,
): string {
  const where = (time: string): string => {
    const terms = [`tenant = ${ph('tenant')}`, `${time} >= ${ph('from')}`];
    if (scope.project !== undefined) terms.push(`project = ${ph('project')}`);
    if (scope.keyId !== undefined) terms.push(`key_id = ${ph('keyId')}`);
    return terms.join(' AND ');
  };
  return `SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM (
      SELECT cost_usd FROM ${tables.usage} WHERE ${where('time_ms')}
      UNION ALL SELECT cost_usd FROM ${tables.usage_hourly} WHERE ${where('start_ms')}
      UNION ALL SELECT cost_usd FROM ${tables.usage_daily} WHERE ${where('start_ms')}
    ) u`;
}

export function spendParams(
  scope: { tenant: string; project?: string; keyId?: string },
  fromMs: number,
): Row {
  const params: Row = { tenant: scope.tenant, from: fromMs };
  if (scope.project !== undefined) params.project = scope.project;
  if (scope.keyId !== undefined) params.keyId = scope.keyId;
  return params;
}

/**
 * The compaction's cut-offs, aligned down to an hour (raw rows) and a day (hourly roll-ups): only
 * whole hours and days are rolled up, so a rolled-up hour has no raw rows left beside it.
 */
export function compactionCutoffs(
  nowMs: number,
  opts: { rawRetentionMs: number; hourlyRetentionMs: number },
): { rawBeforeMs: number; hourlyBeforeMs: number } {
  return {
    rawBeforeMs: Math.floor((nowMs - opts.rawRetentionMs) / HOUR_MS) * HOUR_MS,
    hourlyBeforeMs: Math.floor((nowMs - opts.hourlyRetentionMs) / DAY_MS) * DAY_MS,
  };
}

/**
 * Adds raw rows into `usage_hourly`, summed per hour and key (`source`: the raw rows to move, a
 * table or CTE with the usage table's columns, and its WHERE clause). Existing roll-up rows are
 * added to, so a late row or a second compaction never overwrites a sum.
 */
export function rollUpRawSql(tables: Tables, source: string): string {
  return `INSERT INTO ${tables.usage_hourly} AS r (${[...ROLLUP_KEY, ...ROLLUP_SUMS].join(', ')})
    SELECT (time_ms / ${HOUR_MS}) * ${HOUR_MS}, tenant, COALESCE(project, ''), COALESCE(key_id, ''),
      model_asked, pool, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens),
      SUM(cached_input_tokens), SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_usd)
    FROM ${source}
    GROUP BY 1, 2, 3, 4, 5, 6
    ${addOnConflict()}`;
}

/** Adds hourly roll-ups into `usage_daily` (`source` as in {@link rollUpRawSql}). */
export function rollUpHourlySql(tables: Tables, source: string): string {
  return `INSERT INTO ${tables.usage_daily} AS r (${[...ROLLUP_KEY, ...ROLLUP_SUMS].join(', ')})
    SELECT (start_ms / ${DAY_MS}) * ${DAY_MS}, tenant, project, key_id, model, pool,
      ${ROLLUP_SUMS.map((c) => `SUM(${c})`).join(', ')}
    FROM ${source}
    GROUP BY 1, 2, 3, 4, 5, 6
    ${addOnConflict()}`;
}

function addOnConflict(): string {
  const sums = ROLLUP_SUMS.map((c) => `${c} = r.${c} + excluded.${c}`).join(', ');
  return `ON CONFLICT (${ROLLUP_KEY.join(', ')}) DO UPDATE SET ${sums}`;
}
