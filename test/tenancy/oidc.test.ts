/**
 * OIDC sign-on through real HTTP: a local issuer serving a discovery document and a JWKS, tokens
 * signed with jose, a gateway with a SQLite store and the official openai client. A valid token is
 * served and booked to its tenant as `oidc:<sub>`; expired, mis-addressed, forged, unsigned and
 * tenant-less tokens are 401 saying why (never echoing the token); roles come from the groups
 * claim; the tenant's and project's limits apply; keys keep working beside tokens.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import OpenAI from 'openai';
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
const AUDIENCE = 'switchyard';

// biome-ignore lint/suspicious/noExplicitAny: test code reading arbitrary JSON answers
type Json = any;

/** A local OIDC issuer: discovery at `{issuer}/.well-known/openid-configuration`, keys at `{issuer}/certs`. */
class Issuer {
  issuer = '';
  /** Requests per path. */
  readonly hits = new Map<string, number>();
  private key!: CryptoKey;
  private jwk!: JWK;
  private readonly server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    const body =
      path === '/realms/acme/.well-known/openid-configuration'
        ? { issuer: this.issuer, jwks_uri: `${this.issuer}/certs` }
        : path === '/realms/acme/certs'
          ? { keys: [this.jwk] }
          : null;
    res.writeHead(body === null ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? {}));
  });

  async start(): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    this.key = privateKey;
    this.jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/realms/acme`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A token with `claims`, valid for 5 minutes from the issuer's key unless `o` says otherwise. */
  async token(
    claims: Record<string, unknown>,
    o: {
      iss?: string;
      aud?: string;
      expS?: number;
      key?: CryptoKey | Uint8Array;
      kid?: string;
      alg?: string;
    } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sub: 'alice', ...claims })
      .setProtectedHeader({ alg: o.alg ?? 'RS256', kid: o.kid ?? 'k1', typ: 'JWT' })
      .setIssuer(o.iss ?? this.issuer)
      .setAudience(o.aud ?? AUDIENCE)
      .setIssuedAt(now - 10)
      .setExpirationTime(now + (o.expS ?? 300))
      .sign(o.key ?? this.key);
  }
}

function b64(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

async function chat(client: OpenAI) {
  return client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] });
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

describe('tenancy: OIDC tokens through the gateway', () => {
  const fake = new FakeUpstream();
  const idp = new Issuer();
  let gw: Gateway;
  let origin = '';
  const client = (token: string) =>
    new OpenAI({ baseURL: `${origin}/v1`, apiKey: token, maxRetries: 0, timeout: 10_000 });
  async function admin(method: string, path: string, body?: unknown, token = ADMIN_KEY) {
    const res = await fetch(origin + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  }

  before(async () => {
    fake.mode = { kind: 'json', body: ANSWER };
    await idp.start();
    const config = validateConfig({
      server: { port: 0, host: '127.0.0.1' },
      health: { intervalMs: 0, scrapeIntervalMs: 0 },
      auth: {
        keys: [{ name: 'root', key: ADMIN_KEY, roles: ['admin'] }],
        oidc: {
          issuer: idp.issuer,
          audience: AUDIENCE,
          claims: { tenant: 'org.id', project: 'project', roles: 'groups' },
          roleMap: { 'switchyard-admins': 'admin', 'team-leads': 'tenant-admin' },
        },
      },
      database: { url: 'sqlite::memory:', ledgerFlushMs: 60_000 },
      pools: { m: { endpoints: [{ name: 'm-0', kind: 'http', url: await fake.listen() }] } },
    });
    gw = await Gateway.start({ config, logger: createLogger('silent'), processMetrics: false });
    origin = `http://127.0.0.1:${gw.port}`;
    for (const [id, limits] of [
      ['acme', {}],
      ['beta', {}],
      ['limited', { requestsPerMinute: 2 }],
      ['frozen', {}],
    ] as const) {
      const r = await admin('POST', '/admin/v1/tenants', { id, limits });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const p = await admin('POST', '/admin/v1/tenants/acme/projects', {
      id: 'tight',
      limits: { requestsPerMinute: 1 },
    });
    assert.equal(p.status, 201, JSON.stringify(p.body));
  });
  after(async () => {
    await gw?.shutdown(1_000);
    await fake.close();
    await idp.close();
  });

  it('serves a valid token and books it to the claimed tenant as oidc:<sub>', async () => {
    const token = await idp.token({ org: { id: 'acme' } });
    const r = await chat(client(token));
    assert.equal(r.choices[0]!.message.content, 'ok');
    await chat(client(token));
    await gw.tenancy.ledger!.flush();
    const usage = await admin('GET', '/admin/v1/usage?group_by=key&tenant=acme');
    assert.equal(usage.status, 200, JSON.stringify(usage.body));
    assert.deepEqual(
      usage.body.data.map((b: Json) => [b.tenant, b.keyId, b.requests, b.inputTokens]),
      [['acme', 'oidc:alice', 2, 20]],
    );
  });

  it('refuses expired, mis-addressed, forged, unsigned and tenant-less tokens with 401 saying why', async () => {
    const other = await generateKeyPair('RS256');
    const claims = { org: { id: 'acme' } };
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, RegExp][] = [
      ['expired', await idp.token(claims, { expS: -120 }), /expired/],
      ['wrong audience', await idp.token(claims, { aud: 'someone-else' }), /audience/],
      ['wrong issuer', await idp.token(claims, { iss: 'https://evil.example.com' }), /issuer/],
      ['another key, same kid', await idp.token(claims, { key: other.privateKey }), /signature/],
      [
        'an unpublished kid',
        await idp.token(claims, { key: other.privateKey, kid: 'k9' }),
        /does not publish/,
      ],
      [
        'HMAC',
        await idp.token(claims, { alg: 'HS256', key: new TextEncoder().encode('x'.repeat(32)) }),
        /algorithm/,
      ],
      [
        'alg none',
        `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, sub: 'alice', iss: idp.issuer, aud: AUDIENCE, exp: now + 300 })}.`,
        /algorithm/,
      ],
      ['no tenant claim', await idp.token({ tenant: 'acme' }), /org\.id/],
      ['an invalid tenant id', await idp.token({ org: { id: 'no spaces' } }), /not a valid tenant/],
      ['an unknown tenant', await idp.token({ org: { id: 'nobody' } }), /not known/],
      ['an invalid project id', await idp.token({ ...claims, project: 'a/b' }), /project/],
      ['no subject', await idp.token({ ...claims, sub: undefined }), /sub/],
    ];
    for (const [what, token, why] of cases) {
      const e = await refusal(chat(client(token)));
      assert.equal(e.status, 401, what);
      assert.equal((e.error as { code: string }).code, 'SWY_ERR_UNAUTHORIZED', what);
      assert.match(e.message, why, what);
      assert.ok(!e.message.includes(token) && !e.message.includes(token.split('.')[1]!), what);
    }
  });

  it('maps groups to roles: admin and tenant-admin reach the admin API, members get 403', async () => {
    const adminToken = await idp.token({ org: { id: 'acme' }, groups: ['staff', 'switchyard-admins'] });
    const lead = await idp.token({ org: { id: 'acme' }, groups: 'team-leads', sub: 'bob' });
    const member = await idp.token({ org: { id: 'acme' }, groups: ['staff'], sub: 'carol' });
    const all = await admin('GET', '/admin/v1/tenants', undefined, adminToken);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.ok(all.body.data.length >= 4);
    assert.equal((await admin('GET', '/admin/v1/tenants/acme', undefined, lead)).status, 200);
    assert.equal((await admin('GET', '/admin/v1/tenants/beta', undefined, lead)).status, 403);
    const denied = await admin('GET', '/admin/v1/tenants', undefined, member);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'SWY_ERR_FORBIDDEN');
    // The audit log names the token's subject as the actor.
    const created = await admin('POST', '/admin/v1/tenants', { id: 'gamma' }, adminToken);
    assert.equal(created.status, 201);
    const audit = await admin('GET', '/admin/v1/audit?limit=1');
    assert.equal(audit.body.data[0].actor, 'oidc:alice');
  });

  it("applies the tenant's and the project's limits", async () => {
    const limited = client(await idp.token({ org: { id: 'limited' } }));
    let served = 0;
    let err: InstanceType<typeof OpenAI.APIError> | null = null;
    for (let i = 0; i < 6 && err === null; i++) {
      try {
        await chat(limited);
        served++;
      } catch (e) {
        err = e as InstanceType<typeof OpenAI.APIError>;
      }
    }
    assert.ok(err !== null, 'a third request in the minute was refused');
    assert.equal(err.status, 429);
    assert.equal((err.error as { code: string }).code, 'SWY_ERR_RATE_LIMIT_REQUESTS');
    // Two a minute; a run crossing a UTC minute boundary may serve two more first.
    assert.ok(served >= 2 && served <= 4, String(served));

    const tight = client(await idp.token({ org: { id: 'acme' }, project: 'tight', sub: 'dave' }));
    await chat(tight);
    let e2: InstanceType<typeof OpenAI.APIError> | null = null;
    for (let i = 0; i < 3 && e2 === null; i++)
      e2 = await chat(tight).then(
        () => null,
        (e) => e,
      );
    assert.ok(e2 !== null);
    assert.equal(e2.status, 429);
    assert.match(e2.message, /project:acme\/tight/);
  });

  it('refuses a token of a tenant suspended through the admin API', async () => {
    const c = client(await idp.token({ org: { id: 'frozen' } }));
    await chat(c);
    assert.equal((await admin('PATCH', '/admin/v1/tenants/frozen', { suspended: true })).status, 200);
    const e = await refusal(chat(c));
    assert.equal(e.status, 401);
    assert.match(e.message, /suspended/);
  });

  it('keeps keys working beside tokens, and fetches discovery once', async () => {
    const k = await admin('POST', '/admin/v1/keys', { tenant: 'beta', name: 'app' });
    assert.equal(k.status, 201);
    const r = await chat(client(k.body.key));
    assert.equal(r.choices[0]!.message.content, 'ok');
    await gw.tenancy.ledger!.flush();
    const usage = await admin('GET', '/admin/v1/usage?group_by=key&tenant=beta');
    assert.deepEqual(
      usage.body.data.map((b: Json) => b.keyId),
      [k.body.id],
    );
    // A key-shaped token that is not a key is still a key refusal, not a token one.
    const e = await refusal(chat(client('sk-swy-not-a-real-key')));
    assert.equal(e.status, 401);
    assert.match(e.message, /API key/);
    assert.equal(idp.hits.get('/realms/acme/.well-known/openid-configuration'), 1);
  });
});
