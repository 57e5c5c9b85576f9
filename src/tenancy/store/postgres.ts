/**
 * @module tenancy/store/postgres
 * The tenancy store for a fleet: every gateway replica shares one PostgreSQL database, so keys,
 * budgets' spend and the usage ledger are the same whichever replica a request lands on. Tables
 * live in one schema (default `switchyard`; tests use a throwaway one). Replicas that start
 * together all run `migrate()`: each migrates in a transaction holding a per-schema advisory lock,
 * so one applies the pending versions and the others then find them in `schema_migrations`.
 */
import pg from 'pg';
import { fnv1a } from '../../core/hash.js';
import type {
  AuditEntry,
  KeyRecord,
  ProjectRecord,
  TenancyStore,
  TenantRecord,
  UsageBucket,
  UsageQuery,
  UsageRow,
} from '../types.js';
import {
  AUDIT_COLUMNS,
  auditFromRow,
  auditParams,
  compactionCutoffs,
  insertSql,
  KEY_COLUMNS,
  KEY_MUTABLE,
  keyFromRow,
  keyParams,
  listAuditSql,
  type Placeholder,
  PROJECT_COLUMNS,
  PROJECT_MUTABLE,
  pick,
  projectFromRow,
  projectParams,
  type Row,
  rollUpHourlySql,
  rollUpRawSql,
  spendParams,
  spendSql,
  TENANT_COLUMNS,
  TENANT_MUTABLE,
  type Tables,
  tenantFromRow,
  tenantParams,
  USAGE_COLUMNS,
  updateSql,
  usageBuckets,
  usageParams,
  usageQueryParams,
  usageQuerySql,
} from './sql.js';

/** First key of the migration's advisory lock (the second is the schema's hash). */
const MIGRATION_LOCK_CLASS = fnv1a('switchyard:migrate') | 0;
/** Rows per INSERT in `insertUsage`: 19 parameters each, under PostgreSQL's 65 535. */
const USAGE_ROWS_PER_INSERT = 1000;

/** SQL text with `$n` placeholders and the parameter name each number stands for. */
interface Numbered {
  readonly text: string;
  readonly names: readonly string[];
}

/** Builds SQL written with named placeholders into `$1, $2 …` (a name used twice keeps its number). */
function numbered(build: (ph: Placeholder) => string): Numbered {
  const names: string[] = [];
  const text = build((name) => {
    let i = names.indexOf(name);
    if (i < 0) i = names.push(name) - 1;
    return `$${i + 1}`;
  });
  return { text, names };
}

function values(sql: Numbered, params: Row): unknown[] {
  return sql.names.map((n) => {
    if (!(n in params)) throw new Error(`no value for SQL parameter ${n}`);
    return params[n];
  });
}

/** Roll-up tables: one row per bucket start and key, holding sums. */
const rollUpTable = (table: string, index: string): string => `CREATE TABLE ${table} (
  start_ms BIGINT NOT NULL, tenant TEXT NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL,
  model TEXT NOT NULL, pool TEXT NOT NULL,
  requests BIGINT NOT NULL, errors BIGINT NOT NULL, input_tokens BIGINT NOT NULL,
  cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,
  cost_usd DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (start_ms, tenant, project, key_id, model, pool)
);
CREATE INDEX ${index} ON ${table} (tenant, start_ms);`;

/** Schema versions in order, each a function of the tables' qualified names. */
const MIGRATIONS: readonly { version: number; sql: (t: Tables) => string }[] = [
  {
    version: 1,
    sql: (t) => `
CREATE TABLE ${t.tenants} (
  id TEXT PRIMARY KEY, limits TEXT NOT NULL, budget TEXT, models TEXT,
  store_content BOOLEAN NOT NULL, suspended BOOLEAN NOT NULL, created_ms BIGINT NOT NULL
);
CREATE TABLE ${t.projects} (
  tenant TEXT NOT NULL, id TEXT NOT NULL, limits TEXT NOT NULL, budget TEXT, created_ms BIGINT NOT NULL,
  PRIMARY KEY (tenant, id)
);
CREATE TABLE ${t.keys} (
  id TEXT PRIMARY KEY, prefix TEXT NOT NULL, hash TEXT NOT NULL, tenant TEXT NOT NULL, project TEXT,
  name TEXT NOT NULL, roles TEXT NOT NULL, models TEXT, limits TEXT NOT NULL, budget TEXT,
  expires_ms BIGINT, revoked_ms BIGINT, suspended BOOLEAN NOT NULL, created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX keys_hash ON ${t.keys} (hash);
CREATE INDEX keys_tenant ON ${t.keys} (tenant);
CREATE TABLE ${t.audit} (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, tenant TEXT, target TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX audit_tenant_time ON ${t.audit} (tenant, time_ms);
CREATE TABLE ${t.usage} (
  request_id TEXT PRIMARY KEY, time_ms BIGINT NOT NULL, tenant TEXT NOT NULL, project TEXT,
  key_id TEXT, session TEXT, model_asked TEXT NOT NULL, pool TEXT NOT NULL, endpoint TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,
  latency_ms DOUBLE PRECISION NOT NULL, ttft_ms DOUBLE PRECISION,
  status INTEGER NOT NULL, reason TEXT, content TEXT
);
CREATE INDEX usage_tenant_time ON ${t.usage} (tenant, time_ms);
CREATE INDEX usage_time ON ${t.usage} (time_ms);
${rollUpTable(t.usage_hourly, 'usage_hourly_tenant_start')}
${rollUpTable(t.usage_daily, 'usage_daily_tenant_start')}
`,
  },
];

/** Statements whose text does not depend on the arguments, numbered once per store. */
function statements(t: Tables) {
  // Text ordered by its bytes (collation "C"), as SQLite orders it, whatever the database's locale.
  const byId = 'ORDER BY id COLLATE "C"';
  return {
    insertTenant: numbered((ph) => insertSql(t.tenants, TENANT_COLUMNS, ph)),
    getTenant: numbered(
      (ph) => `SELECT ${TENANT_COLUMNS.join(', ')} FROM ${t.tenants} WHERE id = ${ph('id')}`,
    ),
    listTenants: numbered(() => `SELECT ${TENANT_COLUMNS.join(', ')} FROM ${t.tenants} ${byId}`),
    updateTenant: numbered((ph) => updateSql(t.tenants, TENANT_MUTABLE, ['id'], ph)),
    deleteTenantKeys: numbered((ph) => `DELETE FROM ${t.keys} WHERE tenant = ${ph('id')}`),
    deleteTenantProjects: numbered((ph) => `DELETE FROM ${t.projects} WHERE tenant = ${ph('id')}`),
    deleteTenant: numbered((ph) => `DELETE FROM ${t.tenants} WHERE id = ${ph('id')}`),
    insertProject: numbered((ph) => insertSql(t.projects, PROJECT_COLUMNS, ph)),
    getProject: numbered(
      (ph) =>
        `SELECT ${PROJECT_COLUMNS.join(', ')} FROM ${t.projects} WHERE tenant = ${ph('tenant')} AND id = ${ph('id')}`,
    ),
    listProjects: numbered(
      (ph) =>
        `SELECT ${PROJECT_COLUMNS.join(', ')} FROM ${t.projects} WHERE tenant = ${ph('tenant')} ${byId}`,
    ),
    updateProject: numbered((ph) => updateSql(t.projects, PROJECT_MUTABLE, ['tenant', 'id'], ph)),
    deleteProject: numbered(
      (ph) => `DELETE FROM ${t.projects} WHERE tenant = ${ph('tenant')} AND id = ${ph('id')}`,
    ),
    insertKey: numbered((ph) => insertSql(t.keys, KEY_COLUMNS, ph)),
    getKeyByHash: numbered(
      (ph) => `SELECT ${KEY_COLUMNS.join(', ')} FROM ${t.keys} WHERE hash = ${ph('hash')}`,
    ),
    getKey: numbered((ph) => `SELECT ${KEY_COLUMNS.join(', ')} FROM ${t.keys} WHERE id = ${ph('id')}`),
    listKeys: numbered(() => `SELECT ${KEY_COLUMNS.join(', ')} FROM ${t.keys} ${byId}`),
    listTenantKeys: numbered(
      (ph) => `SELECT ${KEY_COLUMNS.join(', ')} FROM ${t.keys} WHERE tenant = ${ph('tenant')} ${byId}`,
    ),
    updateKey: numbered((ph) => updateSql(t.keys, KEY_MUTABLE, ['id'], ph)),
    appendAudit: numbered((ph) => insertSql(t.audit, AUDIT_COLUMNS, ph)),
    listAudit: numbered((ph) => listAuditSql(t, false, ph)),
    listTenantAudit: numbered((ph) => listAuditSql(t, true, ph)),
    // Each statement deletes exactly the rows it rolls up, so a row inserted meanwhile is never
    // deleted unsummed, and of two replicas compacting at once each row is moved by one.
    rollUpRaw: numbered(
      (ph) =>
        `WITH moved AS (DELETE FROM ${t.usage} WHERE time_ms < ${ph('before')} RETURNING *)
        ${rollUpRawSql(t, 'moved')}`,
    ),
    rollUpHourly: numbered(
      (ph) =>
        `WITH moved AS (DELETE FROM ${t.usage_hourly} WHERE start_ms < ${ph('before')} RETURNING *)
        ${rollUpHourlySql(t, 'moved')}`,
    ),
  };
}

type StatementName = keyof ReturnType<typeof statements>;

type Queryable = pg.Pool | pg.PoolClient;

export class PostgresStore implements TenancyStore {
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly tables: Tables;
  private readonly sql: Readonly<Record<StatementName, Numbered>>;

  /** `url`: `postgres://…`; `schema`: letters, digits and `_` (created by `migrate`). */
  constructor(url: string, schema = 'switchyard') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(schema))
      throw new Error(`invalid PostgreSQL schema name: ${schema}`);
    this.schema = schema;
    const q = (table: string): string => `"${schema}".${table}`;
    this.tables = {
      tenants: q('tenants'),
      projects: q('projects'),
      keys: q('keys'),
      audit: q('audit'),
      usage: q('usage'),
      usage_hourly: q('usage_hourly'),
      usage_daily: q('usage_daily'),
    };
    this.sql = statements(this.tables);
    this.pool = new pg.Pool({ connectionString: url });
    // An idle connection that breaks is dropped by the pool and the next query opens another;
    // without a listener the 'error' event would end the process.
    this.pool.on('error', () => {});
  }

  private async query(
    name: StatementName,
    params: Row,
    on: Queryable = this.pool,
  ): Promise<pg.QueryResult<Row>> {
    const sql = this.sql[name];
    return on.query<Row>(sql.text, values(sql, params));
  }

  private async queryBuilt(build: (ph: Placeholder) => string, params: Row): Promise<Row[]> {
    const sql = numbered(build);
    return (await this.pool.query<Row>(sql.text, values(sql, params))).rows;
  }

  /** Runs `fn` in a transaction on one connection; rolls back if it throws. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async migrate(): Promise<void> {
    const migrations = `"${this.schema}".schema_migrations`;
    await this.transaction(async (c) => {
      // Held to the end of the transaction: a replica starting at the same time waits here, then
      // sees the schema and the versions this one committed.
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [MIGRATION_LOCK_CLASS, fnv1a(this.schema) | 0]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${migrations} (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)`,
      );
      const applied = new Set(
        (await c.query<{ version: number }>(`SELECT version FROM ${migrations}`)).rows.map((r) => r.version),
      );
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql(this.tables));
        await c.query(`INSERT INTO ${migrations} (version, applied_ms) VALUES ($1, $2)`, [
          m.version,
          Date.now(),
        ]);
      }
    });
  }

  async createTenant(t: TenantRecord): Promise<void> {
    await this.query('insertTenant', tenantParams(t));
  }

  async getTenant(id: string): Promise<TenantRecord | null> {
    const row = (await this.query('getTenant', { id })).rows[0];
    return row === undefined ? null : tenantFromRow(row);
  }

  async listTenants(): Promise<TenantRecord[]> {
    return (await this.query('listTenants', {})).rows.map(tenantFromRow);
  }

  async updateTenant(t: TenantRecord): Promise<boolean> {
    const params = { id: t.id, ...pick(tenantParams(t), TENANT_MUTABLE) };
    return ((await this.query('updateTenant', params)).rowCount ?? 0) > 0;
  }

  async deleteTenant(id: string): Promise<boolean> {
    return this.transaction(async (c) => {
      await this.query('deleteTenantKeys', { id }, c);
      await this.query('deleteTenantProjects', { id }, c);
      return ((await this.query('deleteTenant', { id }, c)).rowCount ?? 0) > 0;
    });
  }

  async createProject(p: ProjectRecord): Promise<void> {
    await this.query('insertProject', projectParams(p));
  }

  async getProject(tenant: string, id: string): Promise<ProjectRecord | null> {
    const row = (await this.query('getProject', { tenant, id })).rows[0];
    return row === undefined ? null : projectFromRow(row);
  }

  async listProjects(tenant: string): Promise<ProjectRecord[]> {
    return (await this.query('listProjects', { tenant })).rows.map(projectFromRow);
  }

  async updateProject(p: ProjectRecord): Promise<boolean> {
    const params = { tenant: p.tenant, id: p.id, ...pick(projectParams(p), PROJECT_MUTABLE) };
    return ((await this.query('updateProject', params)).rowCount ?? 0) > 0;
  }

  async deleteProject(tenant: string, id: string): Promise<boolean> {
    return ((await this.query('deleteProject', { tenant, id })).rowCount ?? 0) > 0;
  }

  async insertKey(k: KeyRecord): Promise<void> {
    await this.query('insertKey', keyParams(k));
  }

  async getKeyByHash(hash: string): Promise<KeyRecord | null> {
    const row = (await this.query('getKeyByHash', { hash })).rows[0];
    return row === undefined ? null : keyFromRow(row);
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const row = (await this.query('getKey', { id })).rows[0];
    return row === undefined ? null : keyFromRow(row);
  }

  async listKeys(tenant?: string): Promise<KeyRecord[]> {
    const result =
      tenant === undefined
        ? await this.query('listKeys', {})
        : await this.query('listTenantKeys', { tenant });
    return result.rows.map(keyFromRow);
  }

  async updateKey(k: KeyRecord): Promise<boolean> {
    const params = { id: k.id, ...pick(keyParams(k), KEY_MUTABLE) };
    return ((await this.query('updateKey', params)).rowCount ?? 0) > 0;
  }

  async appendAudit(e: AuditEntry): Promise<void> {
    await this.query('appendAudit', auditParams(e));
  }

  async listAudit(filter: { tenant?: string; limit: number }): Promise<AuditEntry[]> {
    const result =
      filter.tenant === undefined
        ? await this.query('listAudit', { limit: filter.limit })
        : await this.query('listTenantAudit', { tenant: filter.tenant, limit: filter.limit });
    return result.rows.map(auditFromRow);
  }

  async insertUsage(rows: readonly UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.transaction(async (c) => {
      for (let start = 0; start < rows.length; start += USAGE_ROWS_PER_INSERT) {
        const chunk = rows.slice(start, start + USAGE_ROWS_PER_INSERT);
        const params: unknown[] = [];
        const tuples = chunk.map((row) => {
          const p = usageParams(row);
          const first = params.length;
          for (const column of USAGE_COLUMNS) params.push(p[column]);
          return `(${USAGE_COLUMNS.map((_, i) => `$${first + i + 1}`).join(', ')})`;
        });
        await c.query(
          `INSERT INTO ${this.tables.usage} (${USAGE_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}
           ON CONFLICT (request_id) DO NOTHING`,
          params,
        );
      }
    });
  }

  async queryUsage(q: UsageQuery): Promise<UsageBucket[]> {
    return usageBuckets(
      await this.queryBuilt((ph) => usageQuerySql(q, this.tables, ph), usageQueryParams(q)),
    );
  }

  async spend(scope: { tenant: string; project?: string; keyId?: string }, fromMs: number): Promise<number> {
    const rows = await this.queryBuilt((ph) => spendSql(this.tables, scope, ph), spendParams(scope, fromMs));
    return Number(rows[0]?.usd ?? 0);
  }

  async compact(nowMs: number, opts: { rawRetentionMs: number; hourlyRetentionMs: number }): Promise<void> {
    const { rawBeforeMs, hourlyBeforeMs } = compactionCutoffs(nowMs, opts);
    await this.transaction(async (c) => {
      await this.query('rollUpRaw', { before: rawBeforeMs }, c);
      await this.query('rollUpHourly', { before: hourlyBeforeMs }, c);
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
