/**
 * @module tenancy/admin-api
 * `/admin/v1`: tenants, projects, keys, usage and the audit log, over the tenancy store. Admin keys
 * see everything; a tenant admin sees and changes only its own tenant (and cannot make admin keys);
 * a member key gets 403 on every route. Every body is validated and every error has the API's
 * shape. Every change is written to the audit log, without secrets: a key's token is returned
 * once, by the call that creates it, and never stored or logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { budgetSchema, limitSpecSchema, tenancyId } from '../config/tenancy-schema.js';
import { SwitchyardError } from '../core/errors.js';
import { asSwitchyardError, writeError } from '../gateway/errors.js';
import { parseJson, readBody } from '../gateway/body.js';
import { parseWith } from '../gateway/validate.js';
import type { Logger } from '../obs/logger.js';
import type { Principal } from './identity.js';
import { newKeyId, newToken } from './keys.js';
import type { Tenancy } from './service.js';
import type { KeyRecord, ProjectRecord, TenancyStore, TenantRecord, UsageQuery } from './types.js';

const MAX_ADMIN_BODY = 64 * 1024;

const tenantCreate = z.strictObject({
  id: tenancyId,
  limits: limitSpecSchema.default({}),
  budget: budgetSchema.nullable().default(null),
  models: z.array(z.string().min(1)).min(1).nullable().default(null),
  storeContent: z.boolean().default(false),
});
const tenantPatch = z.strictObject({
  limits: limitSpecSchema.optional(),
  budget: budgetSchema.nullable().optional(),
  models: z.array(z.string().min(1)).min(1).nullable().optional(),
  storeContent: z.boolean().optional(),
  suspended: z.boolean().optional(),
});
const projectCreate = z.strictObject({
  id: tenancyId,
  limits: limitSpecSchema.default({}),
  budget: budgetSchema.nullable().default(null),
});
const projectPatch = z.strictObject({
  limits: limitSpecSchema.optional(),
  budget: budgetSchema.nullable().optional(),
});
const role = z.enum(['admin', 'tenant-admin', 'member']);
const keyCreate = z.strictObject({
  tenant: tenancyId,
  project: tenancyId.nullable().default(null),
  name: z.string().min(1).max(128),
  roles: z.array(role).min(1).default(['member']),
  models: z.array(z.string().min(1)).min(1).nullable().default(null),
  limits: limitSpecSchema.default({}),
  budget: budgetSchema.nullable().default(null),
  /** Lifetime in seconds from now; absent: no expiry. */
  ttlSeconds: z.number().int().positive().optional(),
});
const keyPatch = z.strictObject({
  name: z.string().min(1).max(128).optional(),
  models: z.array(z.string().min(1)).min(1).nullable().optional(),
  limits: limitSpecSchema.optional(),
  budget: budgetSchema.nullable().optional(),
  suspended: z.boolean().optional(),
});

type Route = (c: Call) => Promise<unknown>;

/** One admin request: its caller, path parameters, query and body. */
interface Call {
  readonly caller: Principal;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly body: () => Promise<unknown>;
  readonly store: TenancyStore;
  /** Sets the response status (default 200). */
  status: number;
}

function forbidden(message: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_FORBIDDEN', message);
}

function notFound(what: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_NOT_FOUND', `no such ${what}`);
}

const isAdmin = (p: Principal) => p.roles.includes('admin');

/** Admins, and the tenant admins of `tenant`, may act on it; others get 403. */
function requireTenant(p: Principal, tenant: string): void {
  if (isAdmin(p)) return;
  if (p.roles.includes('tenant-admin') && p.tenant === tenant) return;
  throw forbidden(`this key may not administer tenant ${tenant}`);
}

function requireAdmin(p: Principal): void {
  if (!isAdmin(p)) throw forbidden('this route needs an admin key');
}

/** What the API shows of a key: never its hash. */
function publicKey(k: KeyRecord) {
  const { hash: _hash, ...rest } = k;
  return rest;
}

/** `[method, pattern, handler]`; `:x` segments are parameters, in order. */
const ROUTES: readonly [string, string, Route][] = [
  ['GET', '/admin/v1/tenants', listTenants],
  ['POST', '/admin/v1/tenants', createTenant],
  ['GET', '/admin/v1/tenants/:t', getTenant],
  ['PATCH', '/admin/v1/tenants/:t', patchTenant],
  ['DELETE', '/admin/v1/tenants/:t', deleteTenant],
  ['GET', '/admin/v1/tenants/:t/projects', listProjects],
  ['POST', '/admin/v1/tenants/:t/projects', createProject],
  ['PATCH', '/admin/v1/tenants/:t/projects/:p', patchProject],
  ['DELETE', '/admin/v1/tenants/:t/projects/:p', deleteProject],
  ['GET', '/admin/v1/keys', listKeys],
  ['POST', '/admin/v1/keys', createKey],
  ['GET', '/admin/v1/keys/:k', getKey],
  ['PATCH', '/admin/v1/keys/:k', patchKey],
  ['POST', '/admin/v1/keys/:k/revoke', revokeKey],
  ['GET', '/admin/v1/usage', usage],
  ['GET', '/admin/v1/audit', audit],
];

export class AdminApi {
  constructor(
    private readonly tenancy: Tenancy,
    private readonly log: Logger,
  ) {}

  /** Serves one `/admin/…` request; never throws. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, query: string): Promise<void> {
    try {
      const match = matchRoute(req.method ?? '', path);
      const store = this.tenancy.store;
      if (store === null) throw new SwitchyardError('SWY_ERR_NOT_FOUND', 'the admin API needs database.url');
      if (!this.tenancy.authRequired) throw forbidden('the admin API needs authentication (auth keys)');
      const caller = await this.tenancy.principal(req.headers);
      if (!caller.roles.includes('admin') && !caller.roles.includes('tenant-admin'))
        throw forbidden('this key has no admin role');
      const call: Call = {
        caller,
        params: match.params,
        query: new URLSearchParams(query),
        body: async () => parseJson(await readBody(req, MAX_ADMIN_BODY)),
        store,
        status: 200,
      };
      const result = await match.route(call);
      if (req.method !== 'GET') this.tenancy.invalidate();
      const body = JSON.stringify(result);
      res.writeHead(call.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    } catch (err) {
      const e = asSwitchyardError(err);
      if (e.code === 'SWY_ERR_INTERNAL')
        this.log.error({ err: (err as Error).message, path }, 'admin API error');
      writeError(res, e);
    }
  }
}

function matchRoute(method: string, path: string): { route: Route; params: string[] } {
  const parts = path.split('/');
  let pathMatched = false;
  for (const [m, pattern, route] of ROUTES) {
    const want = pattern.split('/');
    if (want.length !== parts.length) continue;
    const params: string[] = [];
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      if (want[i]!.startsWith(':')) params.push(decodeURIComponent(parts[i]!));
      else ok = want[i] === parts[i];
    }
    if (!ok) continue;
    pathMatched = true;
    if (m === method) return { route, params };
  }
  throw pathMatched
    ? new SwitchyardError('SWY_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`)
    : new SwitchyardError('SWY_ERR_NOT_FOUND', `no route for ${method} ${path}`);
}

async function audited(c: Call, action: string, tenant: string | null, target: string, detail: object) {
  await c.store.appendAudit({
    timeMs: Date.now(),
    actor: c.caller.keyId,
    action,
    tenant,
    target,
    detail: detail as Record<string, unknown>,
  });
}

async function tenantOr404(c: Call, id: string): Promise<TenantRecord> {
  requireTenant(c.caller, id);
  const t = await c.store.getTenant(id);
  if (t === null) throw notFound(`tenant ${id}`);
  return t;
}

async function listTenants(c: Call) {
  const all = await c.store.listTenants();
  return { data: isAdmin(c.caller) ? all : all.filter((t) => t.id === c.caller.tenant) };
}

async function createTenant(c: Call) {
  requireAdmin(c.caller);
  const b = parseWith(tenantCreate, await c.body());
  if ((await c.store.getTenant(b.id)) !== null)
    throw new SwitchyardError('SWY_ERR_CONFLICT', `tenant ${b.id} already exists`);
  const t: TenantRecord = { ...b, suspended: false, createdMs: Date.now() };
  await c.store.createTenant(t);
  await audited(c, 'tenant.create', t.id, t.id, b);
  c.status = 201;
  return t;
}

async function getTenant(c: Call) {
  return tenantOr404(c, c.params[0]!);
}

async function patchTenant(c: Call) {
  requireAdmin(c.caller);
  const t = await tenantOr404(c, c.params[0]!);
  const b = parseWith(tenantPatch, await c.body());
  const next: TenantRecord = { ...t, ...b };
  await c.store.updateTenant(next);
  await audited(c, 'tenant.update', t.id, t.id, b);
  return next;
}

async function deleteTenant(c: Call) {
  requireAdmin(c.caller);
  const id = c.params[0]!;
  if (!(await c.store.deleteTenant(id))) throw notFound(`tenant ${id}`);
  await audited(c, 'tenant.delete', id, id, {});
  return { id, deleted: true };
}

async function listProjects(c: Call) {
  const t = await tenantOr404(c, c.params[0]!);
  return { data: await c.store.listProjects(t.id) };
}

async function createProject(c: Call) {
  const t = await tenantOr404(c, c.params[0]!);
  const b = parseWith(projectCreate, await c.body());
  if ((await c.store.getProject(t.id, b.id)) !== null)
    throw new SwitchyardError('SWY_ERR_CONFLICT', `project ${t.id}/${b.id} already exists`);
  const p: ProjectRecord = { tenant: t.id, ...b, createdMs: Date.now() };
  await c.store.createProject(p);
  await audited(c, 'project.create', t.id, `${t.id}/${p.id}`, b);
  c.status = 201;
  return p;
}

async function patchProject(c: Call) {
  const [tenant, id] = c.params as [string, string];
  requireTenant(c.caller, tenant);
  const p = await c.store.getProject(tenant, id);
  if (p === null) throw notFound(`project ${tenant}/${id}`);
  const b = parseWith(projectPatch, await c.body());
  const next: ProjectRecord = { ...p, ...b };
  await c.store.updateProject(next);
  await audited(c, 'project.update', tenant, `${tenant}/${id}`, b);
  return next;
}

async function deleteProject(c: Call) {
  const [tenant, id] = c.params as [string, string];
  requireTenant(c.caller, tenant);
  if (!(await c.store.deleteProject(tenant, id))) throw notFound(`project ${tenant}/${id}`);
  await audited(c, 'project.delete', tenant, `${tenant}/${id}`, {});
  return { id, deleted: true };
}

async function listKeys(c: Call) {
  const tenant = c.query.get('tenant') ?? (isAdmin(c.caller) ? undefined : c.caller.tenant);
  if (tenant !== undefined) requireTenant(c.caller, tenant);
  return { data: (await c.store.listKeys(tenant)).map(publicKey) };
}

async function keyOr404(c: Call): Promise<KeyRecord> {
  const k = await c.store.getKey(c.params[0]!);
  // A tenant admin asking for another tenant's key learns nothing, not even that it exists.
  if (k === null || (!isAdmin(c.caller) && k.tenant !== c.caller.tenant))
    throw notFound(`key ${c.params[0]}`);
  return k;
}

async function createKey(c: Call) {
  const b = parseWith(keyCreate, await c.body());
  requireTenant(c.caller, b.tenant);
  if (b.roles.includes('admin') && !isAdmin(c.caller))
    throw forbidden('only an admin key can create admin keys');
  if ((await c.store.getTenant(b.tenant)) === null) throw notFound(`tenant ${b.tenant}`);
  if (b.project !== null && (await c.store.getProject(b.tenant, b.project)) === null)
    throw notFound(`project ${b.tenant}/${b.project}`);
  const { token, hash, prefix } = newToken();
  const now = Date.now();
  const { ttlSeconds, ...fields } = b;
  const k: KeyRecord = {
    ...fields,
    id: newKeyId(),
    prefix,
    hash,
    expiresMs: ttlSeconds === undefined ? null : now + ttlSeconds * 1000,
    revokedMs: null,
    suspended: false,
    createdMs: now,
  };
  await c.store.insertKey(k);
  await audited(c, 'key.create', k.tenant, k.id, { ...fields, prefix, ttlSeconds });
  c.status = 201;
  return { ...publicKey(k), key: token };
}

async function getKey(c: Call) {
  return publicKey(await keyOr404(c));
}

async function patchKey(c: Call) {
  const k = await keyOr404(c);
  const b = parseWith(keyPatch, await c.body());
  const next: KeyRecord = { ...k, ...b };
  await c.store.updateKey(next);
  await audited(
    c,
    b.suspended === undefined ? 'key.update' : b.suspended ? 'key.suspend' : 'key.resume',
    k.tenant,
    k.id,
    b,
  );
  return publicKey(next);
}

async function revokeKey(c: Call) {
  const k = await keyOr404(c);
  const next: KeyRecord = { ...k, revokedMs: k.revokedMs ?? Date.now() };
  await c.store.updateKey(next);
  await audited(c, 'key.revoke', k.tenant, k.id, {});
  return publicKey(next);
}

/** `from`/`to` as ISO dates or ms; default: the last 24 hours. */
function timeParam(q: URLSearchParams, name: string, dflt: number): number {
  const v = q.get(name);
  if (v === null) return dflt;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new SwitchyardError('SWY_ERR_INVALID_REQUEST', `${name}: not a date or ms timestamp`, {
      param: name,
    });
  return ms;
}

async function usage(c: Call) {
  const q = c.query;
  const tenant = q.get('tenant') ?? (isAdmin(c.caller) ? undefined : c.caller.tenant);
  if (tenant !== undefined) requireTenant(c.caller, tenant);
  const bucket = q.get('bucket') ?? 'day';
  if (bucket !== 'hour' && bucket !== 'day')
    throw new SwitchyardError('SWY_ERR_INVALID_REQUEST', 'bucket: hour or day', { param: 'bucket' });
  const groupBy = (q.get('group_by') ?? '').split(',').filter((g) => g.length > 0);
  for (const g of groupBy)
    if (g !== 'key' && g !== 'model')
      throw new SwitchyardError('SWY_ERR_INVALID_REQUEST', 'group_by: key, model or both', {
        param: 'group_by',
      });
  const now = Date.now();
  const query: UsageQuery = {
    ...(tenant === undefined ? {} : { tenant }),
    ...(q.get('key') === null ? {} : { keyId: q.get('key')! }),
    ...(q.get('model') === null ? {} : { model: q.get('model')! }),
    fromMs: timeParam(q, 'from', now - 86_400_000),
    toMs: timeParam(q, 'to', now + 1),
    bucket,
    groupBy: groupBy as ('key' | 'model')[],
  };
  return { data: await c.store.queryUsage(query) };
}

async function audit(c: Call) {
  const limit = Math.min(1000, Math.max(1, Number(c.query.get('limit') ?? 100) || 100));
  const tenant = c.query.get('tenant') ?? (isAdmin(c.caller) ? undefined : c.caller.tenant);
  if (tenant !== undefined) requireTenant(c.caller, tenant);
  return { data: await c.store.listAudit({ ...(tenant === undefined ? {} : { tenant }), limit }) };
}
