/**
 * @module tenancy/store/sqlite
 * The embedded tenancy store: one SQLite file beside the gateway (or `:memory:`), for a single
 * replica or a trial. better-sqlite3 is synchronous, and every call here is short (an indexed
 * look-up, a batch insert in one transaction), so results are simply wrapped in promises. Files use
 * WAL, so usage queries do not block the ledger's writes. The schema version is `PRAGMA
 * user_version`, read and raised in one immediate (write-locked) transaction, so two processes
 * opening one file do not both migrate it.
 */
import Database from 'better-sqlite3';
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
  pick,
  PROJECT_COLUMNS,
  PROJECT_MUTABLE,
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

const TABLES: Tables = {
  tenants: 'tenants',
  projects: 'projects',
  keys: 'keys',
  audit: 'audit',
  usage: 'usage',
  usage_hourly: 'usage_hourly',
  usage_daily: 'usage_daily',
};

const named = (name: string): string => `@${name}`;

/** Roll-up tables: one row per bucket start and key, holding sums. */
const rollUpTable = (name: string): string => `CREATE TABLE ${name} (
  start_ms INTEGER NOT NULL, tenant TEXT NOT NULL, project TEXT NOT NULL, key_id TEXT NOT NULL,
  model TEXT NOT NULL, pool TEXT NOT NULL,
  requests INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
  cached_input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  PRIMARY KEY (start_ms, tenant, project, key_id, model, pool)
) STRICT;
CREATE INDEX ${name}_tenant_start ON ${name} (tenant, start_ms);`;

/**
 * Schema versions in order; `user_version` is the last applied. STRICT tables refuse a value of
 * the wrong type (a fractional time, say) as PostgreSQL's typed columns do.
 */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE tenants (
  id TEXT PRIMARY KEY, limits TEXT NOT NULL, budget TEXT, models TEXT,
  store_content INTEGER NOT NULL, suspended INTEGER NOT NULL, created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE projects (
  tenant TEXT NOT NULL, id TEXT NOT NULL, limits TEXT NOT NULL, budget TEXT, created_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant, id)
) STRICT;
CREATE TABLE keys (
  id TEXT PRIMARY KEY, prefix TEXT NOT NULL, hash TEXT NOT NULL, tenant TEXT NOT NULL, project TEXT,
  name TEXT NOT NULL, roles TEXT NOT NULL, models TEXT, limits TEXT NOT NULL, budget TEXT,
  expires_ms INTEGER, revoked_ms INTEGER, suspended INTEGER NOT NULL, created_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX keys_hash ON keys (hash);
CREATE INDEX keys_tenant ON keys (tenant);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, tenant TEXT, target TEXT NOT NULL, detail TEXT NOT NULL
) STRICT;
CREATE INDEX audit_tenant_time ON audit (tenant, time_ms);
CREATE TABLE usage (
  request_id TEXT PRIMARY KEY, time_ms INTEGER NOT NULL, tenant TEXT NOT NULL, project TEXT,
  key_id TEXT, session TEXT, model_asked TEXT NOT NULL, pool TEXT NOT NULL, endpoint TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, latency_ms REAL NOT NULL, ttft_ms REAL,
  status INTEGER NOT NULL, reason TEXT, content TEXT
) STRICT;
CREATE INDEX usage_tenant_time ON usage (tenant, time_ms);
CREATE INDEX usage_time ON usage (time_ms);
${rollUpTable('usage_hourly')}
${rollUpTable('usage_daily')}
`,
  },
];

/** better-sqlite3 binds no booleans: they are stored as 0 / 1. */
function bindable(params: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(params)) out[k] = typeof v === 'boolean' ? Number(v) : v;
  return out;
}

export class SqliteStore implements TenancyStore {
  private readonly db: Database.Database;
  /** Prepared statements by their text, each prepared on first use (after `migrate`). */
  private readonly statements = new Map<string, Database.Statement>();

  /** `path`: a database file (created if absent) or `:memory:`. */
  constructor(path: string) {
    this.db = new Database(path);
    if (path !== ':memory:') this.db.pragma('journal_mode = WAL');
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private run(sql: string, params: Row): Database.RunResult {
    return this.statement(sql).run(bindable(params));
  }

  private get(sql: string, params: Row): Row | undefined {
    return this.statement(sql).get(params) as Row | undefined;
  }

  private all(sql: string, params: Row): Row[] {
    return this.statement(sql).all(params) as Row[];
  }

  async migrate(): Promise<void> {
    this.db
      .transaction(() => {
        const current = Number(this.db.pragma('user_version', { simple: true }));
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          this.db.exec(m.sql);
          this.db.pragma(`user_version = ${m.version}`);
        }
      })
      .immediate();
  }

  async createTenant(t: TenantRecord): Promise<void> {
    this.run(insertSql(TABLES.tenants, TENANT_COLUMNS, named), tenantParams(t));
  }

  async getTenant(id: string): Promise<TenantRecord | null> {
    const row = this.get(`SELECT ${TENANT_COLUMNS.join(', ')} FROM tenants WHERE id = @id`, { id });
    return row === undefined ? null : tenantFromRow(row);
  }

  async listTenants(): Promise<TenantRecord[]> {
    return this.all(`SELECT ${TENANT_COLUMNS.join(', ')} FROM tenants ORDER BY id`, {}).map(tenantFromRow);
  }

  async updateTenant(t: TenantRecord): Promise<boolean> {
    const params = { id: t.id, ...pick(tenantParams(t), TENANT_MUTABLE) };
    return this.run(updateSql(TABLES.tenants, TENANT_MUTABLE, ['id'], named), params).changes > 0;
  }

  async deleteTenant(id: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.run('DELETE FROM keys WHERE tenant = @id', { id });
      this.run('DELETE FROM projects WHERE tenant = @id', { id });
      return this.run('DELETE FROM tenants WHERE id = @id', { id }).changes > 0;
    })();
  }

  async createProject(p: ProjectRecord): Promise<void> {
    this.run(insertSql(TABLES.projects, PROJECT_COLUMNS, named), projectParams(p));
  }

  async getProject(tenant: string, id: string): Promise<ProjectRecord | null> {
    const sql = `SELECT ${PROJECT_COLUMNS.join(', ')} FROM projects WHERE tenant = @tenant AND id = @id`;
    const row = this.get(sql, { tenant, id });
    return row === undefined ? null : projectFromRow(row);
  }

  async listProjects(tenant: string): Promise<ProjectRecord[]> {
    const sql = `SELECT ${PROJECT_COLUMNS.join(', ')} FROM projects WHERE tenant = @tenant ORDER BY id`;
    return this.all(sql, { tenant }).map(projectFromRow);
  }

  async updateProject(p: ProjectRecord): Promise<boolean> {
    const params = { tenant: p.tenant, id: p.id, ...pick(projectParams(p), PROJECT_MUTABLE) };
    return this.run(updateSql(TABLES.projects, PROJECT_MUTABLE, ['tenant', 'id'], named), params).changes > 0;
  }

  async deleteProject(tenant: string, id: string): Promise<boolean> {
    return this.run('DELETE FROM projects WHERE tenant = @tenant AND id = @id', { tenant, id }).changes > 0;
  }

  async insertKey(k: KeyRecord): Promise<void> {
    this.run(insertSql(TABLES.keys, KEY_COLUMNS, named), keyParams(k));
  }

  async getKeyByHash(hash: string): Promise<KeyRecord | null> {
    const row = this.get(`SELECT ${KEY_COLUMNS.join(', ')} FROM keys WHERE hash = @hash`, { hash });
    return row === undefined ? null : keyFromRow(row);
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const row = this.get(`SELECT ${KEY_COLUMNS.join(', ')} FROM keys WHERE id = @id`, { id });
    return row === undefined ? null : keyFromRow(row);
  }

  async listKeys(tenant?: string): Promise<KeyRecord[]> {
    const columns = KEY_COLUMNS.join(', ');
    const rows =
      tenant === undefined
        ? this.all(`SELECT ${columns} FROM keys ORDER BY id`, {})
        : this.all(`SELECT ${columns} FROM keys WHERE tenant = @tenant ORDER BY id`, { tenant });
    return rows.map(keyFromRow);
  }

  async updateKey(k: KeyRecord): Promise<boolean> {
    const params = { id: k.id, ...pick(keyParams(k), KEY_MUTABLE) };
    return this.run(updateSql(TABLES.keys, KEY_MUTABLE, ['id'], named), params).changes > 0;
  }

  async appendAudit(e: AuditEntry): Promise<void> {
    this.run(insertSql(TABLES.audit, AUDIT_COLUMNS, named), auditParams(e));
  }

  async listAudit(filter: { tenant?: string; limit: number }): Promise<AuditEntry[]> {
    const byTenant = filter.tenant !== undefined;
    const params: Row = byTenant ? { tenant: filter.tenant, limit: filter.limit } : { limit: filter.limit };
    return this.all(listAuditSql(TABLES, byTenant, named), params).map(auditFromRow);
  }

  async insertUsage(rows: readonly UsageRow[]): Promise<void> {
    const insert = this.statement(
      `${insertSql(TABLES.usage, USAGE_COLUMNS, named)} ON CONFLICT (request_id) DO NOTHING`,
    );
    this.db.transaction(() => {
      for (const row of rows) insert.run(usageParams(row));
    })();
  }

  async queryUsage(q: UsageQuery): Promise<UsageBucket[]> {
    return usageBuckets(this.all(usageQuerySql(q, TABLES, named), usageQueryParams(q)));
  }

  async spend(scope: { tenant: string; project?: string; keyId?: string }, fromMs: number): Promise<number> {
    const row = this.get(spendSql(TABLES, scope, named), spendParams(scope, fromMs));
    return Number(row?.usd ?? 0);
  }

  async compact(nowMs: number, opts: { rawRetentionMs: number; hourlyRetentionMs: number }): Promise<void> {
    const { rawBeforeMs, hourlyBeforeMs } = compactionCutoffs(nowMs, opts);
    // One immediate transaction: no other writer runs between a roll-up and its delete.
    this.db
      .transaction(() => {
        this.run(rollUpRawSql(TABLES, 'usage WHERE time_ms < @before'), { before: rawBeforeMs });
        this.run('DELETE FROM usage WHERE time_ms < @before', { before: rawBeforeMs });
        this.run(rollUpHourlySql(TABLES, 'usage_hourly WHERE start_ms < @before'), {
          before: hourlyBeforeMs,
        });
        this.run('DELETE FROM usage_hourly WHERE start_ms < @before', { before: hourlyBeforeMs });
      })
      .immediate();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
