/**
 * @module tenancy/identity
 * Who a request is: its bearer token resolved to a principal (key, tenant, project, roles, the
 * models it may use, and the limits and budgets of each level). Config keys are resolved from a
 * map built at start; database keys through a cache whose entries are re-read at most every
 * `auth.cacheMs` (default 1 s), in the background after half of it, so that a revocation or
 * suspension reaches every gateway replica within that bound without a database read per request.
 * Unknown tokens are cached too (briefly, bounded), so a flood of bad keys cannot become a flood of
 * database reads. With `auth.oidc`, a bearer token shaped like a JWT goes to the OIDC verifier
 * instead, and the tenant it names is resolved here exactly as a key's is.
 */
import { readFileSync } from 'node:fs';
import type { SwitchyardConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';
import { hashToken, sameHash, visiblePrefix } from './keys.js';
import { OidcVerifier, looksLikeJwt } from './oidc.js';
import type {
  BudgetSpec,
  KeyRecord,
  LimitScope,
  LimitSpec,
  ProjectRecord,
  Role,
  TenancyStore,
  TenantRecord,
} from './types.js';

/** The caller of one request. */
export interface Principal {
  /** `key_…` for database keys, `config:NAME` for config keys, `oidc:SUBJECT` for OIDC tokens, `anonymous` without authentication. */
  readonly keyId: string;
  /** Hash of the token (the cache key); empty for anonymous callers. */
  readonly keyHash: string;
  readonly tenant: string;
  readonly project: string | null;
  readonly roles: readonly Role[];
  /** Models or aliases the caller may use (the tenant's and the key's lists both apply); null = all. */
  readonly models: readonly string[] | null;
  readonly storeContent: boolean;
  /** Limits and budgets from the outermost level in: tenant, project, key. */
  readonly scopes: readonly LimitScope[];
}

/** What one level contributes to a principal's scopes. */
interface Level {
  readonly limits: LimitSpec;
  readonly budget: BudgetSpec | null;
}

/** A tenant's level, with what applies to every caller in it. */
type TenantLevel = Level & { readonly models: readonly string[] | null; readonly storeContent: boolean };

/** A caller a verified token names, before its tenant and project are looked up. */
export interface Identity {
  readonly keyId: string;
  readonly keyHash: string;
  readonly tenant: string;
  readonly project: string | null;
  readonly roles: readonly Role[];
}

interface CacheEntry {
  /** null: no such key (a negative entry). */
  readonly value: Principal | SwitchyardError | null;
  readonly loadedMs: number;
  refreshing: boolean;
}

const NEGATIVE_CACHE_MAX = 10_000;

function unauthorized(message: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_UNAUTHORIZED', message, { param: 'authorization' });
}

/** Whether `config` asks for authentication (written out, or implied by keys, OIDC or a database). */
export function authEnabled(config: SwitchyardConfig): boolean {
  const a = config.auth;
  if (a.mode !== undefined) return a.mode === 'keys';
  return (
    a.apiKeys.length > 0 || a.keys.length > 0 || a.oidc !== undefined || config.database.url !== undefined
  );
}

/** The scopes of a principal's levels (a level with neither limits nor budget still counts: it names the caller). */
function scopesOf(
  tenant: string,
  t: Level,
  project: string | null,
  p: Level | null,
  keyId: string,
  k: Level,
): LimitScope[] {
  const scopes: LimitScope[] = [
    { level: 'tenant', id: `tenant:${tenant}`, limits: t.limits, budget: t.budget },
  ];
  if (project !== null && p !== null)
    scopes.push({ level: 'project', id: `project:${tenant}/${project}`, limits: p.limits, budget: p.budget });
  scopes.push({ level: 'key', id: `key:${tenant}/${keyId}`, limits: k.limits, budget: k.budget });
  return scopes;
}

/** Both allow-lists apply: the intersection, or whichever is set. */
function intersectModels(
  a: readonly string[] | null | undefined,
  b: readonly string[] | null | undefined,
): readonly string[] | null {
  if (a == null) return b ?? null;
  if (b == null) return a;
  const inB = new Set(b);
  return a.filter((m) => inB.has(m));
}

const NO_LIMITS: Level = { limits: {}, budget: null };

export class IdentityResolver {
  /** Config keys by token hash. */
  private readonly configKeys = new Map<string, Principal>();
  private readonly cache = new Map<string, CacheEntry>();
  private readonly oidc: OidcVerifier | null;
  readonly enabled: boolean;

  constructor(
    private readonly config: SwitchyardConfig,
    private readonly store: TenancyStore | null,
    private readonly clock: Clock,
  ) {
    this.enabled = authEnabled(config);
    const o = config.auth.oidc;
    this.oidc =
      o === undefined ? null : new OidcVerifier(o, config.auth.cacheMs, (id) => this.principalOfIdentity(id));
    for (const token of config.auth.apiKeys) {
      this.addConfigKey(token, { name: visiblePrefix(token), tenant: 'default', roles: ['member'] });
    }
    for (const k of config.auth.keys) {
      const token = k.key ?? readFileSync(k.keyFile!, 'utf8').split('\n')[0]!.trim();
      if (token.length < 16)
        throw new Error(`auth.keys ${k.name}: the key in ${k.keyFile} is shorter than 16 characters`);
      this.addConfigKey(token, k);
    }
  }

  private addConfigKey(
    token: string,
    k: { name: string; tenant: string; project?: string; roles: readonly Role[]; models?: readonly string[] },
  ): void {
    const t = this.configTenant(k.tenant);
    const keyId = `config:${k.name}`;
    const keyHash = hashToken(token);
    this.configKeys.set(keyHash, {
      keyId,
      keyHash,
      tenant: k.tenant,
      project: k.project ?? null,
      roles: k.roles,
      models: intersectModels(t.models, k.models),
      storeContent: t.storeContent,
      scopes: scopesOf(k.tenant, t, k.project ?? null, NO_LIMITS, keyId, NO_LIMITS),
    });
  }

  /** A tenant from the config, or one with no limits. */
  private configTenant(id: string): TenantLevel {
    const t = this.config.tenants[id];
    if (t === undefined) return { ...NO_LIMITS, models: null, storeContent: false };
    return {
      limits: t.limits,
      budget: t.budget ?? null,
      models: t.models ?? null,
      storeContent: t.storeContent,
    };
  }

  /** The anonymous caller of a gateway without authentication: the tenant its header names. */
  anonymous(tenant: string | null): Principal {
    const id = tenant ?? 'default';
    const t = this.configTenant(id);
    return {
      keyId: 'anonymous',
      keyHash: '',
      tenant: id,
      project: null,
      roles: ['member'],
      models: t.models,
      storeContent: t.storeContent,
      scopes: [{ level: 'tenant', id: `tenant:${id}`, limits: t.limits, budget: t.budget }],
    };
  }

  /**
   * The principal of a bearer token; throws 401 for a missing, unknown, expired, revoked or
   * suspended key. Resolves without a database read while the key's cache entry is fresh.
   */
  async authenticate(token: string | null): Promise<Principal> {
    if (token === null) throw unauthorized('You must provide an API key (Authorization: Bearer KEY)');
    if (this.oidc !== null && looksLikeJwt(token)) return this.oidc.principal(token);
    const hash = hashToken(token);
    const fromConfig = this.configKeys.get(hash);
    if (fromConfig !== undefined && sameHash(fromConfig.keyHash, hash)) return fromConfig;
    if (this.store === null) throw unauthorized('Incorrect API key provided');
    const now = this.clock.now();
    const cacheMs = this.config.auth.cacheMs;
    let entry = this.cache.get(hash);
    if (entry === undefined || now - entry.loadedMs >= cacheMs) {
      entry = await this.load(hash);
    } else if (now - entry.loadedMs >= cacheMs / 2 && !entry.refreshing) {
      entry.refreshing = true;
      void this.load(hash).catch(() => {
        entry!.refreshing = false;
      });
    }
    const v = entry.value;
    if (v === null) throw unauthorized('Incorrect API key provided');
    if (v instanceof SwitchyardError) throw v;
    // The store found the key by hash; the constant-time compare guards against a lookup that matched loosely.
    if (!sameHash(v.keyHash, hash)) throw unauthorized('Incorrect API key provided');
    return v;
  }

  /** Reads a key with its tenant and project and caches the outcome. */
  private async load(hash: string): Promise<CacheEntry> {
    const store = this.store!;
    const key = await store.getKeyByHash(hash);
    let value: CacheEntry['value'] = null;
    if (key !== null) {
      const tenant = await store.getTenant(key.tenant);
      const project = key.project === null ? null : await store.getProject(key.tenant, key.project);
      value = this.principalOf(key, tenant, project);
    }
    const entry: CacheEntry = { value, loadedMs: this.clock.now(), refreshing: false };
    if (value === null && this.cache.size >= NEGATIVE_CACHE_MAX) this.evictNegative();
    this.cache.set(hash, entry);
    return entry;
  }

  private evictNegative(): void {
    for (const [h, e] of this.cache) {
      if (e.value === null) this.cache.delete(h);
      if (this.cache.size < NEGATIVE_CACHE_MAX / 2) return;
    }
  }

  private principalOf(
    key: KeyRecord,
    tenant: TenantRecord | null,
    project: ProjectRecord | null,
  ): Principal | SwitchyardError {
    // Expiry and revocation are wall-clock timestamps (the clock's time is monotonic, not epoch).
    const now = Date.now();
    if (key.revokedMs !== null && key.revokedMs <= now) return unauthorized('This API key has been revoked');
    if (key.expiresMs !== null && key.expiresMs <= now) return unauthorized('This API key has expired');
    if (key.suspended) return unauthorized('This API key is suspended');
    const t = this.tenantLevel(key.tenant, tenant);
    if (t instanceof SwitchyardError) return t;
    return {
      keyId: key.id,
      keyHash: key.hash,
      tenant: key.tenant,
      project: key.project,
      roles: key.roles,
      models: intersectModels(t.models, key.models),
      storeContent: t.storeContent,
      scopes: scopesOf(key.tenant, t, key.project, project, key.id, key),
    };
  }

  /** The store's tenant (401 when suspended), else the config's. */
  private tenantLevel(id: string, tenant: TenantRecord | null): TenantLevel | SwitchyardError {
    if (tenant === null) return this.configTenant(id);
    if (tenant.suspended) return unauthorized(`Tenant ${id} is suspended`);
    return {
      limits: tenant.limits,
      budget: tenant.budget,
      models: tenant.models,
      storeContent: tenant.storeContent,
    };
  }

  /**
   * The principal of a verified OIDC identity: its tenant's limits, budget and models as a key's,
   * and its project's when the store has it. A tenant neither in the store nor in the config is
   * refused: the issuer's claim alone must not open a scope without limits.
   */
  private async principalOfIdentity(id: Identity): Promise<Principal | SwitchyardError> {
    const record = this.store === null ? null : await this.store.getTenant(id.tenant);
    if (record === null && this.config.tenants[id.tenant] === undefined)
      return unauthorized(`Tenant ${id.tenant} named by the token is not known to this gateway`);
    const t = this.tenantLevel(id.tenant, record);
    if (t instanceof SwitchyardError) return t;
    const p =
      id.project === null ? null : ((await this.store?.getProject(id.tenant, id.project)) ?? NO_LIMITS);
    return {
      ...id,
      models: t.models,
      storeContent: t.storeContent,
      scopes: scopesOf(id.tenant, t, id.project, p, id.keyId, NO_LIMITS),
    };
  }

  /** Drops cached keys (after an admin change in this process; other replicas see it within `cacheMs`). */
  invalidate(hash?: string): void {
    if (hash === undefined) {
      this.cache.clear();
      this.oidc?.invalidate();
    } else this.cache.delete(hash);
  }
}
