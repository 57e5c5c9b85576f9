/**
 * Tenancy through real HTTP: keys created through the admin API and used with the official openai
 * client, roles on every admin route, the tenant taken from the key (the header ignored), limits
 * answered with 429 and the limit's code, max_tokens caps, model allow-lists, the usage ledger,
 * revocation across two gateway replicas sharing PostgreSQL, and no key in any log line.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import pg from 'pg';
import { validateConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/obs/logger.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';

const ANSWER = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
};
const ADMIN_KEY = `sk-admin-${randomBytes(12).toString('hex')}`;
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** Everything every gateway logged, one JSON line each. */
const logLines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    logLines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );
    done();
  },
});

/** A JSON answer of the admin API, read loosely (each test checks the fields it needs). */
// biome-ignore lint/suspicious/noExplicitAny: test code reading arbitrary JSON answers
type Json = any;

interface Running {
  gw: Gateway;
  origin: string;
  client(key: string): OpenAI;
  admin(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: Json }>;
}

async function start(upstream: string, extra: Record<string, unknown>): Promise<Running> {
  const config = validateConfig({
    server: { port: 0, host: '127.0.0.1' },
    health: { intervalMs: 0, scrapeIntervalMs: 0 },
    auth: { keys: [{ name: 'root', key: ADMIN_KEY, roles: ['admin'] }] },
    pools: {
      m: {
        endpoints: [{ name: 'm-0', kind: 'http', url: upstream }],
        prices: { inputPerMTok: 1, outputPerMTok: 4 },
      },
      other: { endpoints: [{ name: 'o-0', kind: 'http', url: upstream }] },
    },
    ...extra,
  });
  const gw = await Gateway.start({ config, logger: createLogger('debug', sink), processMetrics: false });
  const origin = `http://127.0.0.1:${gw.port}`;
  return {
    gw,
    origin,
    client: (key) => new OpenAI({ baseURL: `${origin}/v1`, apiKey: key, maxRetries: 0, timeout: 10_000 }),
    admin: async (method, path, body, key = ADMIN_KEY) => {
      const res = await fetch(origin + path, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    },
  };
}

async function chat(client: OpenAI, model = 'm', extra: Record<string, unknown> = {}, headers = {}) {
  return client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'hello there' }], ...extra },
    { headers },
  );
}

/** The error a call ends with (fails the test if it succeeds). */
async function refusal(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    return err;
  }
  assert.fail('expected the call to be refused');
}

describe('tenancy through the gateway (SQLite)', () => {
  const fake = new FakeUpstream();
  let g: Running;
  const tokens: string[] = [];
  let memberKey = '';
  let memberId = '';
  let tenantAdminKey = '';

  before(async () => {
    fake.mode = { kind: 'json', body: ANSWER };
    g = await start(await fake.listen(), { database: { url: 'sqlite::memory:', ledgerFlushMs: 60_000 } });
    for (const t of ['acme', 'beta']) {
      const r = await g.admin('POST', '/admin/v1/tenants', {
        id: t,
        limits: { requestsPerMinute: 3, maxTokensDefault: 7, maxTokensCeiling: 100 },
        models: ['m'],
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const member = await g.admin('POST', '/admin/v1/keys', { tenant: 'acme', name: 'app' });
    assert.equal(member.status, 201, JSON.stringify(member.body));
    memberKey = member.body.key;
    memberId = member.body.id;
    assert.match(memberKey, /^sk-swy-[A-Za-z0-9_-]{43}$/);
    assert.equal(member.body.hash, undefined, 'the hash is never shown');
    assert.equal(member.body.prefix, memberKey.slice(0, 13));
    const ta = await g.admin('POST', '/admin/v1/keys', {
      tenant: 'acme',
      name: 'ops',
      roles: ['tenant-admin'],
    });
    tenantAdminKey = ta.body.key;
    tokens.push(ADMIN_KEY, memberKey, tenantAdminKey);
  });
  after(async () => {
    await g?.gw.shutdown(1_000);
    await fake.close();
  });

  it('serves a member key, takes the tenant from the key and ignores the tenant header', async () => {
    const r = await chat(g.client(memberKey), 'm', {}, { 'x-switchyard-tenant': 'beta' });
    assert.equal(r.choices[0]!.message.content, 'ok');
    // The tenant's default max_tokens was added to the request the upstream got.
    assert.equal(fake.received.at(-1)!.max_tokens, 7);
    await g.gw.tenancy.ledger!.flush();
    const usage = await g.admin('GET', '/admin/v1/usage?group_by=key,model');
    assert.equal(usage.status, 200);
    assert.deepEqual(
      usage.body.data.map((b: Json) => [
        b.tenant,
        b.keyId,
        b.model,
        b.requests,
        b.inputTokens,
        b.outputTokens,
      ]),
      [['acme', memberId, 'm', 1, 10, 4]],
    );
    // 10 input tokens at $1/M and 4 output tokens at $4/M.
    assert.ok(Math.abs(usage.body.data[0].costUsd - 26e-6) < 1e-12, String(usage.body.data[0].costUsd));
  });

  it('refuses a missing, unknown or malformed key with 401 in the API error shape', async () => {
    for (const key of ['sk-swy-nope', 'x'.repeat(200)]) {
      const e = await refusal(chat(g.client(key)));
      assert.equal(e.status, 401);
      assert.equal((e.error as { code: string }).code, 'SWY_ERR_UNAUTHORIZED');
    }
    const res = await fetch(`${g.origin}/v1/models`);
    assert.equal(res.status, 401);
  });

  it('lists only the models a key may use and refuses the others with 403', async () => {
    const models = await g.client(memberKey).models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['m'],
    );
    const e = await refusal(chat(g.client(memberKey), 'other'));
    assert.equal(e.status, 403);
    assert.equal((e.error as { code: string }).code, 'SWY_ERR_MODEL_NOT_ALLOWED');
  });

  it('refuses max_tokens above the ceiling with 400 naming it', async () => {
    const e = await refusal(chat(g.client(memberKey), 'm', { max_tokens: 101 }));
    assert.equal(e.status, 400);
    assert.equal((e.error as { param: string }).param, 'max_tokens');
  });

  it('answers the request past requestsPerMinute with 429, its code and Retry-After', async () => {
    // Three a minute: the first test used one; the refusals above reserved nothing (refused before).
    const client = g.client(tenantAdminKey);
    let served = 1;
    let err: InstanceType<typeof OpenAI.APIError> | null = null;
    for (let i = 0; i < 8 && err === null; i++) {
      try {
        await chat(client);
        served++;
      } catch (e) {
        err = e as InstanceType<typeof OpenAI.APIError>;
      }
    }
    // The window is the UTC minute: a run that crosses a minute boundary serves up to 3 more first.
    assert.ok(err !== null, 'a fourth request in the minute was refused');
    assert.equal(err.status, 429);
    assert.equal((err.error as { code: string }).code, 'SWY_ERR_RATE_LIMIT_REQUESTS');
    const retryAfter = Number(err.headers?.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
    assert.ok(served >= 3);
    // The refusal is in the ledger with its reason.
    await g.gw.tenancy.ledger!.flush();
    const usage = await g.admin('GET', '/admin/v1/usage?tenant=acme');
    assert.ok(usage.body.data[0].errors >= 1);
  });

  it('gives a member key 403 on every admin route', async () => {
    const routes: [string, string][] = [
      ['GET', '/admin/v1/tenants'],
      ['POST', '/admin/v1/tenants'],
      ['GET', '/admin/v1/tenants/acme'],
      ['PATCH', '/admin/v1/tenants/acme'],
      ['DELETE', '/admin/v1/tenants/acme'],
      ['GET', '/admin/v1/tenants/acme/projects'],
      ['POST', '/admin/v1/tenants/acme/projects'],
      ['PATCH', '/admin/v1/tenants/acme/projects/p'],
      ['DELETE', '/admin/v1/tenants/acme/projects/p'],
      ['GET', '/admin/v1/keys'],
      ['POST', '/admin/v1/keys'],
      ['GET', `/admin/v1/keys/${memberId}`],
      ['PATCH', `/admin/v1/keys/${memberId}`],
      ['POST', `/admin/v1/keys/${memberId}/revoke`],
      ['GET', '/admin/v1/usage'],
      ['GET', '/admin/v1/audit'],
    ];
    for (const [method, path] of routes) {
      const r = await g.admin(method, path, method === 'GET' ? undefined : {}, memberKey);
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'SWY_ERR_FORBIDDEN');
    }
  });

  it("keeps a tenant admin to its own tenant: no other tenant's usage, keys or admin keys", async () => {
    const own = await g.admin('GET', '/admin/v1/keys', undefined, tenantAdminKey);
    assert.equal(own.status, 200);
    assert.ok(own.body.data.every((k: { tenant: string }) => k.tenant === 'acme'));
    for (const path of [
      '/admin/v1/usage?tenant=beta',
      '/admin/v1/keys?tenant=beta',
      '/admin/v1/tenants/beta',
    ]) {
      const r = await g.admin('GET', path, undefined, tenantAdminKey);
      assert.equal(r.status, 403, path);
    }
    const betaKey = await g.admin('POST', '/admin/v1/keys', { tenant: 'beta', name: 'b' });
    tokens.push(betaKey.body.key);
    const peek = await g.admin('GET', `/admin/v1/keys/${betaKey.body.id}`, undefined, tenantAdminKey);
    assert.equal(peek.status, 404);
    const escalate = await g.admin(
      'POST',
      '/admin/v1/keys',
      { tenant: 'acme', name: 'x', roles: ['admin'] },
      tenantAdminKey,
    );
    assert.equal(escalate.status, 403);
    const list = await g.admin('GET', '/admin/v1/tenants', undefined, tenantAdminKey);
    assert.deepEqual(
      list.body.data.map((t: { id: string }) => t.id),
      ['acme'],
    );
  });

  it('validates admin bodies and answers in the API error shape', async () => {
    const bad = await g.admin('POST', '/admin/v1/tenants', { id: 'no spaces allowed' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'id');
    const dup = await g.admin('POST', '/admin/v1/tenants', { id: 'acme' });
    assert.equal(dup.status, 409);
    const limits = await g.admin('POST', '/admin/v1/tenants', { id: 'z', limits: { requestsPerMinute: -1 } });
    assert.equal(limits.status, 400);
    assert.equal(limits.body.error.param, 'limits.requestsPerMinute');
  });

  it('revokes a key at once on this replica, and audits every change without secrets', async () => {
    const k = await g.admin('POST', '/admin/v1/keys', { tenant: 'beta', name: 'short-lived' });
    tokens.push(k.body.key);
    await chat(g.client(k.body.key));
    const revoked = await g.admin('POST', `/admin/v1/keys/${k.body.id}/revoke`);
    assert.equal(revoked.status, 200);
    assert.equal(typeof revoked.body.revokedMs, 'number');
    const e = await refusal(chat(g.client(k.body.key)));
    assert.equal(e.status, 401);
    assert.match(e.message, /revoked/);
    const audit = await g.admin('GET', '/admin/v1/audit?limit=3');
    assert.deepEqual(
      audit.body.data.map((a: { action: string }) => a.action),
      ['key.revoke', 'key.create', 'key.create'],
    );
    assert.equal(audit.body.data[0].actor, 'config:root');
    const text = JSON.stringify(audit.body);
    for (const t of tokens) assert.ok(!text.includes(t));
  });

  it('writes no key or key hash into any log line', async () => {
    // A request with a bad key, an admin error and a served request all log; none may carry a secret.
    await refusal(chat(g.client('sk-swy-wrong-key-for-the-log-test')));
    assert.ok(logLines.length > 0);
    const all = logLines.join('\n');
    for (const t of [...tokens, 'sk-swy-wrong-key-for-the-log-test'])
      assert.ok(!all.includes(t), 'a key was logged');
  });
});

describe('tenancy: the runaway-output guard', () => {
  const fake = new FakeUpstream();
  let g: Running;
  after(async () => {
    await g?.gw.shutdown(1_000);
    await fake.close();
  });

  it('ends a stream past maxOutputTokensPerRequest with finish_reason length, and meters what was sent', async () => {
    const chunk = (content: string) =>
      JSON.stringify({
        id: 'c',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta: { content }, finish_reason: null }],
      });
    // 40 content events; the upstream ignores any max_tokens and would send them all.
    fake.mode = {
      kind: 'stream',
      delayMs: 1,
      events: [...Array.from({ length: 40 }, (_, i) => chunk(`t${i} `)), '[DONE]'],
    };
    g = await start(await fake.listen(), { database: { url: 'sqlite::memory:', ledgerFlushMs: 60_000 } });
    await g.admin('POST', '/admin/v1/tenants', { id: 'acme', limits: { maxOutputTokensPerRequest: 5 } });
    const k = await g.admin('POST', '/admin/v1/keys', { tenant: 'acme', name: 'agent' });
    const stream = await g.client(k.body.key).chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'write forever' }],
      stream: true,
    });
    const contents: string[] = [];
    let finish: string | null = null;
    let stopped: unknown;
    for await (const c of stream) {
      const choice = c.choices[0];
      if (choice?.delta?.content) contents.push(choice.delta.content);
      if (choice?.finish_reason) {
        finish = choice.finish_reason;
        stopped = (c as unknown as { switchyard?: unknown }).switchyard;
      }
    }
    // The guard acts on the first event past the limit: 6 of the 40 reached the client.
    assert.equal(contents.length, 6);
    assert.equal(finish, 'length');
    assert.deepEqual(stopped, { stopped: 'output_token_limit', limit: 5 });
    await g.gw.tenancy.ledger!.flush();
    const usage = await g.admin('GET', '/admin/v1/usage?tenant=acme');
    assert.equal(usage.body.data[0].outputTokens, 6);
    assert.equal(usage.body.data[0].errors, 0);
  });
});

describe('tenancy: revocation across two gateway replicas on PostgreSQL', () => {
  const fake = new FakeUpstream();
  const schema = `swy_gw_${process.pid}_${randomBytes(4).toString('hex')}`;
  let a: Running;
  let b: Running;

  before(async () => {
    fake.mode = { kind: 'json', body: ANSWER };
    const upstream = await fake.listen();
    const database = { url: PG_URL, schema };
    a = await start(upstream, { database });
    b = await start(upstream, { database });
  });
  after(async () => {
    await a?.gw.shutdown(1_000);
    await b?.gw.shutdown(1_000);
    await fake.close();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('a key revoked through one replica stops working on the other within 1 s', async () => {
    assert.equal((await a.admin('POST', '/admin/v1/tenants', { id: 'acme' })).status, 201);
    const k = await a.admin('POST', '/admin/v1/keys', { tenant: 'acme', name: 'app' });
    const onB = b.client(k.body.key);
    await chat(onB); // B has the key cached now
    const revokedAt = performance.now();
    assert.equal((await a.admin('POST', `/admin/v1/keys/${k.body.id}/revoke`)).status, 200);
    let refusedAfterMs = Number.NaN;
    while (performance.now() - revokedAt < 3_000) {
      try {
        await chat(onB);
      } catch (err) {
        assert.equal((err as InstanceType<typeof OpenAI.APIError>).status, 401);
        refusedAfterMs = performance.now() - revokedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(
      refusedAfterMs <= 1_100,
      `replica B still served the key ${refusedAfterMs.toFixed(0)} ms after`,
    );
  });
});

describe('tenancy: safe defaults', () => {
  it('refuses to serve a non-loopback address without authentication unless mode none is written out', async () => {
    const pools = { m: { endpoints: [{ name: 'e', kind: 'http', url: 'http://127.0.0.1:9/v1' }] } };
    const open = validateConfig({ server: { port: 0, host: '0.0.0.0' }, health: { intervalMs: 0 }, pools });
    await assert.rejects(
      Gateway.start({ config: open, logger: createLogger('silent'), processMetrics: false }),
      /not a loopback address/,
    );
    const explicit = validateConfig({
      server: { port: 0, host: '0.0.0.0' },
      health: { intervalMs: 0 },
      auth: { mode: 'none' },
      pools,
    });
    const lines: string[] = [];
    const capture = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const gw = await Gateway.start({
      config: explicit,
      logger: createLogger('info', capture),
      processMetrics: false,
    });
    await gw.shutdown(100);
    assert.ok(lines.some((l) => l.includes('without authentication')));
    assert.equal(validateConfig({ pools }).server.host, '127.0.0.1');
  });
});
