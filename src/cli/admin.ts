/**
 * @module cli/admin
 * `switchyard admin …`: the admin API (`/admin/v1`) from the command line. It holds no logic of its
 * own: each verb is one HTTP call, its answer printed as JSON, an error as the API's message with a
 * non-zero exit.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './sim.js';

export const ADMIN_HELP = `Usage: switchyard admin [--url URL] [--key KEY] RESOURCE VERB [ARGS] [OPTIONS]

Calls the gateway's admin API. The key (an admin or tenant-admin key) comes from --key or the
SWITCHYARD_ADMIN_KEY environment variable; the gateway from --url or SWITCHYARD_URL
(default http://127.0.0.1:8080).

  tenants list
  tenants create ID [--limits JSON] [--budget-usd N [--budget-period day|month]] [--models A,B]
  tenants get ID
  tenants update ID --json '{"limits":{…},"suspended":true}'
  tenants delete ID
  projects list TENANT
  projects create TENANT ID [--limits JSON] [--budget-usd N [--budget-period day|month]]
  keys list [--tenant T]
  keys create --tenant T --name NAME [--project P] [--roles member,tenant-admin] [--models A,B]
              [--limits JSON] [--budget-usd N [--budget-period day|month]] [--ttl SECONDS]
              (prints the new key once: store it now)
  keys get ID | keys revoke ID | keys suspend ID | keys resume ID
  keys update ID --json '{"limits":{"requestsPerMinute":60}}'
  usage [--tenant T] [--key-id ID] [--models M] [--from DATE] [--to DATE] [--bucket hour|day]
        [--group-by key,model]
  audit [--tenant T] [--limit N]

Limits JSON: {"requestsPerMinute":600,"inputTokensPerMinute":100000,"outputTokensPerMinute":20000,
"concurrentRequests":8,"maxTokensDefault":512,"maxTokensCeiling":4096} (every field optional).
`;

const OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  'key-id': { type: 'string' },
  json: { type: 'string' },
  limits: { type: 'string' },
  'budget-usd': { type: 'string' },
  'budget-period': { type: 'string' },
  models: { type: 'string' },
  tenant: { type: 'string' },
  project: { type: 'string' },
  name: { type: 'string' },
  roles: { type: 'string' },
  ttl: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  bucket: { type: 'string' },
  'group-by': { type: 'string' },
  limit: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

interface ApiCall {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
}

function jsonOption(v: Values, name: 'json' | 'limits'): Record<string, unknown> | undefined {
  const text = v[name];
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--${name}: not a JSON object (${(err as Error).message})`);
  }
}

function list(s: string | undefined): string[] | undefined {
  return s === undefined
    ? undefined
    : s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0);
}

function budget(v: Values): { usd: number; period: string } | undefined {
  if (v['budget-usd'] === undefined) return undefined;
  const usd = Number(v['budget-usd']);
  if (!(usd > 0)) throw new UsageError('--budget-usd: a positive number of dollars');
  return { usd, period: v['budget-period'] ?? 'month' };
}

/** Keeps the fields that were given. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined));
}

function need(args: readonly string[], i: number, what: string): string {
  const a = args[i];
  if (a === undefined) throw new UsageError(`missing ${what}`);
  return encodeURIComponent(a);
}

const BASE = '/admin/v1';
const id = (pos: readonly string[], what: string) => need(pos, 2, what);

/** Each `RESOURCE VERB` → its API call. */
const COMMANDS: Record<string, (pos: readonly string[], v: Values) => ApiCall> = {
  'tenants list': () => ({ method: 'GET', path: `${BASE}/tenants` }),
  'tenants create': (pos, v) => ({
    method: 'POST',
    path: `${BASE}/tenants`,
    body: defined({ id: pos[2], limits: jsonOption(v, 'limits'), budget: budget(v), models: list(v.models) }),
  }),
  'tenants get': (pos) => ({ method: 'GET', path: `${BASE}/tenants/${id(pos, 'tenant id')}` }),
  'tenants update': (pos, v) => ({
    method: 'PATCH',
    path: `${BASE}/tenants/${id(pos, 'tenant id')}`,
    body: jsonOption(v, 'json') ?? {},
  }),
  'tenants delete': (pos) => ({ method: 'DELETE', path: `${BASE}/tenants/${id(pos, 'tenant id')}` }),
  'projects list': (pos) => ({ method: 'GET', path: `${BASE}/tenants/${id(pos, 'tenant id')}/projects` }),
  'projects create': (pos, v) => ({
    method: 'POST',
    path: `${BASE}/tenants/${id(pos, 'tenant id')}/projects`,
    body: defined({ id: pos[3], limits: jsonOption(v, 'limits'), budget: budget(v) }),
  }),
  'keys list': (_pos, v) => ({
    method: 'GET',
    path: `${BASE}/keys${v.tenant ? `?tenant=${encodeURIComponent(v.tenant)}` : ''}`,
  }),
  'keys create': (_pos, v) => ({
    method: 'POST',
    path: `${BASE}/keys`,
    body: defined({
      tenant: v.tenant,
      project: v.project,
      name: v.name,
      roles: list(v.roles),
      models: list(v.models),
      limits: jsonOption(v, 'limits'),
      budget: budget(v),
      ttlSeconds: v.ttl === undefined ? undefined : Number(v.ttl),
    }),
  }),
  'keys get': (pos) => ({ method: 'GET', path: `${BASE}/keys/${id(pos, 'key id')}` }),
  'keys update': (pos, v) => ({
    method: 'PATCH',
    path: `${BASE}/keys/${id(pos, 'key id')}`,
    body: jsonOption(v, 'json') ?? {},
  }),
  'keys revoke': (pos) => ({ method: 'POST', path: `${BASE}/keys/${id(pos, 'key id')}/revoke` }),
  'keys suspend': (pos) => ({
    method: 'PATCH',
    path: `${BASE}/keys/${id(pos, 'key id')}`,
    body: { suspended: true },
  }),
  'keys resume': (pos) => ({
    method: 'PATCH',
    path: `${BASE}/keys/${id(pos, 'key id')}`,
    body: { suspended: false },
  }),
  usage: (_pos, v) => report('usage', v),
  audit: (_pos, v) => report('audit', v),
};

/** `usage` and `audit`: a GET with the filters as query parameters. */
function report(resource: 'usage' | 'audit', v: Values): ApiCall {
  const q = new URLSearchParams(
    defined({
      tenant: v.tenant,
      key: resource === 'usage' ? v['key-id'] : undefined,
      model: v.models,
      from: v.from,
      to: v.to,
      bucket: v.bucket,
      group_by: v['group-by'],
      limit: v.limit,
    }) as Record<string, string>,
  ).toString();
  return { method: 'GET', path: `${BASE}/${resource}${q ? `?${q}` : ''}` };
}

/** The API call of a command line. */
export function adminCall(pos: readonly string[], v: Values): ApiCall {
  const [resource, verb] = pos;
  const key =
    resource === 'usage' || resource === 'audit' ? resource : `${resource ?? ''} ${verb ?? ''}`.trim();
  const command = COMMANDS[key];
  if (command === undefined) throw new UsageError(`unknown admin command "${key}"`);
  return command(pos, v);
}

export async function admin(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true });
  if (values.help || positionals.length === 0) {
    process.stdout.write(ADMIN_HELP);
    return values.help ? 0 : 2;
  }
  const token = values.key ?? process.env.SWITCHYARD_ADMIN_KEY;
  if (token === undefined || token === '')
    throw new UsageError('give the admin key: --key or SWITCHYARD_ADMIN_KEY');
  const call = adminCall(positionals, values);
  const url = (values.url ?? process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const res = await fetch(url + call.path, {
    method: call.method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message;
    } catch {}
    process.stderr.write(`switchyard admin: ${res.status} ${message}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
  return 0;
}
