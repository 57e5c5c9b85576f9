/**
 * @module config/tenancy-schema
 * The config's tenancy keys: authentication, config tenants, the database of keys and the usage
 * ledger, the Redis that shares limits, and pools' prices (docs/tenancy.md).
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** USD per million tokens of a pool's model. */
export const pricesSchema = z.strictObject({
  inputPerMTok: z.number().nonnegative().default(0),
  /** Prompt tokens served from the engine's prefix cache (default: the input price). */
  cachedInputPerMTok: z.number().nonnegative().optional(),
  /** Prompt tokens written to a provider's prompt cache (default: the input price). */
  cacheWritePerMTok: z.number().nonnegative().optional(),
  outputPerMTok: z.number().nonnegative().default(0),
  /** Reasoning tokens, counted inside completion tokens by OpenAI (default: the output price). */
  reasoningPerMTok: z.number().nonnegative().optional(),
});

/** Letters, digits, `.`, `_`, `-`: tenant and project ids appear in keys, metrics and URLs. */
export const tenancyId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"');

/** Per-minute, concurrency and `max_tokens` limits of a tenant, project, key or model (docs/tenancy.md). */
export const limitSpecSchema = z.strictObject({
  requestsPerMinute: positiveInt.optional(),
  inputTokensPerMinute: positiveInt.optional(),
  outputTokensPerMinute: positiveInt.optional(),
  concurrentRequests: positiveInt.optional(),
  /** `max_tokens` given to a request that names none. */
  maxTokensDefault: positiveInt.optional(),
  /** The largest `max_tokens` a request may ask for; more is refused with 400. */
  maxTokensCeiling: positiveInt.optional(),
  /** A stream that carries more output tokens is ended cleanly (`finish_reason: "length"`). */
  maxOutputTokensPerRequest: positiveInt.optional(),
});

/** A USD budget over a UTC day or month: a soft alert at `alertAt`, a hard stop at `usd`. */
export const budgetSchema = z.strictObject({
  usd: z.number().positive(),
  period: z.enum(['day', 'month']).default('month'),
  alertAt: z.number().gt(0).max(1).default(0.8),
});

/** A key named in the config (small setups; the admin API's keys live in the database). */
const configKeySchema = z
  .strictObject({
    name: z.string().min(1),
    /** The token; use `\${ENV_VAR}` so that the config file holds no secret. */
    key: z.string().min(16).optional(),
    /** A file whose first line is the token (e.g. a mounted Kubernetes secret). */
    keyFile: z.string().min(1).optional(),
    tenant: tenancyId.default('default'),
    project: tenancyId.optional(),
    roles: z
      .array(z.enum(['admin', 'tenant-admin', 'member']))
      .min(1)
      .default(['member']),
    /** Models or aliases the key may use; default: its tenant's. */
    models: z.array(z.string().min(1)).min(1).optional(),
  })
  .refine(
    (k) => (k.key === undefined) !== (k.keyFile === undefined),
    'give exactly one of `key` and `keyFile`',
  );

/** Asymmetric JWS algorithms only: `none` and HMAC (a secret shared with the issuer) are never accepted. */
const jwsAlgorithm = z.enum([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

/** A claim name, or a dot path into nested claims (`org.id`). */
const claimPath = z.string().regex(/^[^.]+(\.[^.]+)*$/, 'a claim name or a dot path such as org.id');

/** JWTs from an OIDC issuer, accepted beside keys: one identity per person or service (docs/tenancy.md). */
const oidcSchema = z.strictObject({
  /** Must equal the token's `iss`; discovery reads `{issuer}/.well-known/openid-configuration`. */
  issuer: z.url(),
  /** Must be one of the token's `aud`. */
  audience: z.string().min(1),
  /** The issuer's JWKS; default: the discovery document's `jwks_uri`. */
  jwksUrl: z.url().optional(),
  claims: z.strictObject({
    /** Claim holding the tenant id; a token without it, or naming no known tenant, is refused. */
    tenant: claimPath,
    /** Claim holding the project id; absent: no project. */
    project: claimPath.optional(),
    /** Claim holding role names (a string or an array), mapped through `roleMap`. */
    roles: claimPath.optional(),
    /** The identity the ledger shows: the key id is `oidc:<subject>`. */
    subject: claimPath.default('sub'),
  }),
  /** Claim value → role; values not listed are ignored, and a token with none is a `member`. */
  roleMap: z.record(z.string(), z.enum(['admin', 'tenant-admin', 'member'])).default({}),
  algorithms: z.array(jwsAlgorithm).min(1).default(['RS256', 'ES256']),
});

export const authSchema = z
  .strictObject({
    /**
     * `keys`: every /v1 and /admin request needs a key, and the tenant comes from it
     * (`x-switchyard-tenant` is ignored). `none`: no authentication; the tenant header is trusted.
     * Default: `keys` when a key or a database is configured, else `none` (then the gateway binds to
     * a loopback address only, unless `mode: none` is written out).
     */
    mode: z.enum(['keys', 'none']).optional(),
    /** Plain accepted keys, of tenant `default` with role `member` (the first form; kept for small setups). */
    apiKeys: z.array(z.string().min(1)).default([]),
    keys: z.array(configKeySchema).default([]),
    /**
     * How stale a gateway's view of a key may get: a revoked or suspended key stops working on
     * every replica within this (each replica re-reads a key it uses at most this often).
     */
    cacheMs: positiveInt.max(60_000).default(1_000),
    /** Accept JWTs of this issuer too (turns authentication on). */
    oidc: oidcSchema.optional(),
  })
  .prefault({});

export const tenantConfigSchema = z.strictObject({
  limits: limitSpecSchema.default({}),
  budget: budgetSchema.optional(),
  /** Models or aliases the tenant may use; default all. */
  models: z.array(z.string().min(1)).min(1).optional(),
  /** Keep prompts and completions in the usage ledger (off by default). */
  storeContent: z.boolean().default(false),
});

export const databaseSchema = z
  .strictObject({
    /**
     * `sqlite:PATH` (embedded, one gateway process) or `postgres://…` (a fleet of gateways). Unset:
     * no usage ledger and no admin-managed tenants or keys (config keys and tenants still work).
     */
    url: z.string().min(1).optional(),
    /** PostgreSQL schema of Switchyard's tables (one per deployment sharing a database). */
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and "_"')
      .default('switchyard'),
    /** The ledger's batch interval: at most this much usage is lost if the gateway is killed. */
    ledgerFlushMs: positiveInt.max(60_000).default(1_000),
    /** Rows buffered before a batch is written early, and the bound past which the oldest are dropped (and counted). */
    ledgerMaxBatch: positiveInt.default(1_000),
    ledgerMaxBuffered: positiveInt.default(100_000),
    /** Raw rows older than this are rolled into hourly sums; hourly sums older than `hourlyRetentionDays` into daily ones. */
    rawRetentionDays: z.number().positive().default(7),
    hourlyRetentionDays: z.number().positive().default(90),
  })
  .prefault({});

export const redisSchema = z
  .strictObject({
    /** `redis://…`: limits, budgets and revocations shared by every gateway replica. Unset: per process. */
    url: z.string().min(1).optional(),
    /** Prefix of every key Switchyard writes. */
    prefix: z.string().min(1).default('swy:'),
  })
  .prefault({});
