/**
 * @module config/schema
 * The configuration schema: the single source of defaults, validation and the config types.
 * Unknown keys are errors (strict objects), so a typo never silently does nothing.
 */
import { z } from 'zod';
import {
  authSchema,
  databaseSchema,
  pricesSchema,
  redisSchema,
  tenancyId,
  tenantConfigSchema,
} from './tenancy-schema.js';
import { LIVE_POLICIES, POLICY_OPTIONS } from '../autoscaler/policies/index.js';
import { knownProfileNames } from '../engine-model/profile-file.js';
import { builtinRoutingRegistry } from '../plugins/routing/register.js';

const positiveInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

const timeoutsSchema = z
  .strictObject({
    /** TCP connect timeout. */
    connectMs: positiveInt.default(2_000),
    /** Time from sending the request to the response headers (first byte). */
    firstByteMs: positiveInt.default(60_000),
    /** Longest silence between two body chunks of the response. */
    idleMs: positiveInt.default(60_000),
  })
  .prefault({});

const endpointBase = {
  /** Unique name of the endpoint (metrics label, logs). */
  name: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"'),
  /** Model name sent upstream; defaults to the pool's name. */
  model: z.string().min(1).optional(),
  /**
   * Requests in flight to this endpoint at most; more wait in the pool's queue. Default 256, or 1 for
   * `engine: ollama` (a serial backend); set 1 for a single-slot llama.cpp too.
   */
  maxConcurrency: positiveInt.optional(),
  /** The engine's own waiting queue (scraped) at or above which the endpoint takes nothing new. */
  maxEngineWaiting: positiveInt.optional(),
  /** KV-cache usage (scraped, 0..1) at or above which the endpoint takes nothing new. */
  maxKvUsage: z.number().gt(0).max(1).optional(),
  /**
   * Requests this gateway sent the endpoint that are still prefilling (no first token yet) at or
   * above which it takes nothing new; read from the router's ledger, so it needs no metrics. A
   * request that is not streamed counts as prefilling until it finishes.
   */
  maxPrefilling: positiveInt.optional(),
  timeouts: timeoutsSchema,
  /** Relative share of traffic under the `weighted` policy (provider endpoints). */
  weight: z.number().positive().default(1),
  /** Free-form labels (`tier`, `locality`, `zone`, …) that label filters match. */
  labels: z.record(z.string().min(1), z.string()).default({}),
};

/** A shipped profile or one loaded from `profileFiles` (registered before the schema runs). */
const profileName = z.string().refine((name) => knownProfileNames().includes(name), {
  error: (issue) =>
    `unknown engine profile '${String(issue.input)}'; known: ${knownProfileNames().join(', ')}`,
});

const httpEndpointSchema = z.strictObject({
  kind: z.literal('http'),
  ...endpointBase,
  /** Base URL including the API prefix, e.g. `http://10.0.0.5:8000/v1`. */
  url: z.url({ protocol: /^https?$/ }),
  /** Bearer token for the upstream; use `${ENV_VAR}`. */
  apiKey: z.string().optional(),
  /** Engine type, which decides the metrics mapping (`openai` = no engine metrics). */
  engine: z.enum(['vllm', 'sglang', 'llamacpp', 'ollama', 'openai']).default('openai'),
  /** Path of the active health check, relative to the URL's origin; null disables it. */
  healthPath: z.string().startsWith('/').nullable().optional(),
  /** Upstream connections kept in the pool at most; default: `maxConcurrency`, so no admitted request waits for a socket. */
  connections: positiveInt.optional(),
  /**
   * The engine profile that describes this replica (model × GPU), if one fits: cost-model routing
   * predicts its step times from it and sizes its prefix index to its KV cache.
   */
  profile: profileName.optional(),
});

const emulatedEndpointSchema = z.strictObject({
  kind: z.literal('emulated'),
  ...endpointBase,
  /** Engine profile, e.g. `llama3.1-8b-h100` (`switchyard engine --list-profiles`). */
  profile: profileName,
  /** Port of the emulated engine's HTTP server; 0 picks a free one. */
  port: nonNegInt.max(65535).default(0),
});

/** `maxConcurrency` when the config leaves it out: serial backends take one request at a time. */
const DEFAULT_MAX_CONCURRENCY = 256;
const SERIAL_ENGINES: ReadonlySet<string> = new Set(['ollama']);

export const endpointSchema = z
  .discriminatedUnion('kind', [httpEndpointSchema, emulatedEndpointSchema])
  .transform((ep) => ({
    ...ep,
    maxConcurrency:
      ep.maxConcurrency ??
      (ep.kind === 'http' && SERIAL_ENGINES.has(ep.engine) ? 1 : DEFAULT_MAX_CONCURRENCY),
  }));

/** Queue orders by name (docs/scheduling.md). */
export const QUEUE_ORDERS = ['fcfs', 'priority', 'vtc', 'sjf', 'edf'] as const;
const priorityClassSchema = z.enum(['high', 'normal', 'low', 'batch']);

/** Bounds of one priority class; each applies besides the pool-wide one. */
const classBoundsSchema = z.strictObject({
  maxQueueLength: nonNegInt.optional(),
  maxWaitMs: positiveInt.optional(),
});

type ClassBounds = Partial<Record<z.infer<typeof priorityClassSchema>, z.infer<typeof classBoundsSchema>>>;

/** Batch may wait ten times as long as interactive requests unless the config says otherwise. */
const DEFAULT_PER_CLASS: ClassBounds = { batch: { maxWaitMs: 300_000 } };

/** `over` on top of `base`, class by class and key by key. */
export function mergeClassBounds(base: ClassBounds, over: ClassBounds): ClassBounds {
  const out: ClassBounds = { ...base };
  for (const [c, b] of Object.entries(over) as [keyof ClassBounds, ClassBounds[keyof ClassBounds]][]) {
    out[c] = { ...base[c], ...b };
  }
  return out;
}

/** The scheduling keys, without defaults: a pool's `scheduling` overrides the top-level one key by key. */
const schedulingKeys = {
  /** Queue order: `fcfs`, `priority` (classes with aging), `vtc` (tenant fairness), `sjf`, `edf`. */
  queue: z.enum(QUEUE_ORDERS),
  /** Requests waiting in the pool's queue at most; 0 = no queue (a saturated pool answers 429 at once). */
  maxQueueLength: nonNegInt,
  /** Longest wait in the queue before 429 `SWY_ERR_QUEUE_TIMEOUT`. */
  maxWaitMs: positiveInt,
  /**
   * Per priority class: `maxWaitMs` replaces the pool-wide one for that class, `maxQueueLength` caps
   * the class's waiting requests besides `maxQueueLength`. Merged class by class and key by key over
   * the default `{ batch: { maxWaitMs: 300000 } }` (top level) or the top level's (a pool's).
   */
  perClass: z.partialRecord(priorityClassSchema, classBoundsSchema),
  /** Share of the pool's concurrency kept free of batch work. */
  batchHeadroom: z.number().min(0).max(1),
  /**
   * Batch work starts only while no prompt is being prefilled in the pool (its prefill would share
   * engine steps with interactive prefills and delay their first tokens). A non-streamed request
   * counts as prefilling until it finishes: the gateway sees no first token for it.
   */
  batchOnlyWithoutPrefill: z.boolean(),
  /** `priority`: a waiting request gains one class of urgency per this many ms. */
  agingMs: positiveInt,
  /** `edf`: a request's deadline is its arrival plus this. */
  ttftDeadlineMs: positiveInt,
  /** `edf`: drop requests past their deadline (429 `SWY_ERR_DEADLINE_EXCEEDED`) instead of running them late. */
  dropLate: z.boolean(),
  /** `vtc`: tenant → weight (default 1); a tenant of weight 2 gets twice the tokens under contention. */
  tenantWeights: z.record(z.string().min(1), z.number().positive()),
  /** Class of requests without an `x-switchyard-priority` header. */
  defaultPriority: priorityClassSchema,
};

export const schedulingSchema = z
  .strictObject({
    queue: schedulingKeys.queue.default('fcfs'),
    maxQueueLength: schedulingKeys.maxQueueLength.default(1024),
    maxWaitMs: schedulingKeys.maxWaitMs.default(30_000),
    perClass: schedulingKeys.perClass.default({}).transform((pc) => mergeClassBounds(DEFAULT_PER_CLASS, pc)),
    batchHeadroom: schedulingKeys.batchHeadroom.default(0.25),
    batchOnlyWithoutPrefill: schedulingKeys.batchOnlyWithoutPrefill.default(true),
    agingMs: schedulingKeys.agingMs.default(30_000),
    ttftDeadlineMs: schedulingKeys.ttftDeadlineMs.default(10_000),
    dropLate: schedulingKeys.dropLate.default(true),
    tenantWeights: schedulingKeys.tenantWeights.default({}),
    defaultPriority: schedulingKeys.defaultPriority.default('normal'),
  })
  .prefault({});

const poolSchedulingSchema = z.strictObject({
  queue: schedulingKeys.queue.optional(),
  maxQueueLength: schedulingKeys.maxQueueLength.optional(),
  maxWaitMs: schedulingKeys.maxWaitMs.optional(),
  perClass: schedulingKeys.perClass.optional(),
  batchHeadroom: schedulingKeys.batchHeadroom.optional(),
  batchOnlyWithoutPrefill: schedulingKeys.batchOnlyWithoutPrefill.optional(),
  agingMs: schedulingKeys.agingMs.optional(),
  ttftDeadlineMs: schedulingKeys.ttftDeadlineMs.optional(),
  dropLate: schedulingKeys.dropLate.optional(),
  tenantWeights: schedulingKeys.tenantWeights.optional(),
  defaultPriority: schedulingKeys.defaultPriority.optional(),
});

/** The built-in routing plugins, whose schemas check each reference's type and params. */
const ROUTING_PLUGINS = builtinRoutingRegistry();

/** Adds the issues of `result` to `ctx`, their paths below `base`. */
function addIssues(
  ctx: z.RefinementCtx,
  base: readonly PropertyKey[],
  result: z.ZodSafeParseResult<unknown>,
): void {
  if (result.success) return;
  for (const issue of result.error.issues)
    ctx.addIssue({ ...issue, path: [...base, ...issue.path] } as z.core.$ZodRawIssue);
}

/** Registered plugin types → their params schemas (a registry's factories carry them). */
type PluginSchemas = ReadonlyMap<string, { readonly params: z.ZodType<object> }>;

/** A plugin reference's type must be registered and its params must pass the plugin's strict schema. */
function checkPlugin(kind: string, factories: PluginSchemas) {
  return (ref: { type: string; params: Record<string, unknown> }, ctx: z.RefinementCtx): void => {
    const factory = factories.get(ref.type);
    if (factory === undefined) {
      const known = [...factories.keys()].join(', ');
      ctx.addIssue({ code: 'custom', message: `unknown ${kind} type "${ref.type}" (known: ${known})` });
      return;
    }
    addIssues(ctx, ['params'], factory.params.safeParse(ref.params));
  };
}

const pluginParams = z.record(z.string(), z.unknown()).default({});

const scorerRefSchema = z
  .strictObject({
    type: z.string().min(1),
    weight: z.number().positive().default(1),
    params: pluginParams,
  })
  .superRefine(checkPlugin('scorer', ROUTING_PLUGINS.scorers));

const pluginRefSchema = (kind: string, factories: PluginSchemas) =>
  z
    .union([
      z
        .string()
        .min(1)
        .transform((type) => ({ type, params: {} as Record<string, unknown> })),
      z.strictObject({ type: z.string().min(1), params: pluginParams }),
    ])
    .superRefine(checkPlugin(kind, factories));

const routerProfileSchema = z.strictObject({
  filters: z.array(pluginRefSchema('filter', ROUTING_PLUGINS.filters)).default([]),
  scorers: z.array(scorerRefSchema).default([]),
  picker: pluginRefSchema('picker', ROUTING_PLUGINS.pickers),
});

export const instanceTypeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"'),
  /** The engine profile a replica of this type runs. */
  profile: profileName,
  /** Capacity of one replica relative to the pool's reference replica (the first type). */
  capacity: z.number().positive().default(1),
  onDemandUsdPerHour: z.number().nonnegative(),
  spotUsdPerHour: z.number().nonnegative().optional(),
  spotPreemptionsPerHour: z.number().nonnegative().optional(),
  spotNoticeMs: nonNegInt.optional(),
  maxReplicas: positiveInt.optional(),
});

/** The command a `process` actuator runs per replica; `{port}`, `{name}`, `{profile}`, `{model}` are filled in. */
const processActuatorSchema = z.strictObject({
  kind: z.literal('process'),
  /** argv; default: an emulated engine of the type's profile (`switchyard engine`). */
  command: z.array(z.string().min(1)).min(1).optional(),
  /** Health path polled until the replica answers 200. */
  healthPath: z.string().startsWith('/').default('/health'),
  /** Engine type of the replicas (decides the metrics mapping). */
  engine: z.enum(['vllm', 'sglang', 'llamacpp', 'ollama', 'openai']).default('vllm'),
  readyTimeoutMs: positiveInt.default(600_000),
  drainTimeoutMs: positiveInt.default(120_000),
});

const kubernetesActuatorSchema = z.strictObject({
  kind: z.literal('kubernetes'),
  /** One Deployment per instance type and price tier; its Service's EndpointSlices list the replicas. */
  deployments: z
    .array(
      z.strictObject({
        type: z.string().min(1),
        tier: z.enum(['on-demand', 'spot']).default('on-demand'),
        namespace: z.string().min(1).default('default'),
        name: z.string().min(1),
        service: z.string().min(1).optional(),
      }),
    )
    .min(1),
  engine: z.enum(['vllm', 'sglang', 'llamacpp', 'ollama', 'openai']).default('vllm'),
  pollMs: positiveInt.default(5_000),
});

const emulatedActuatorSchema = z.strictObject({
  kind: z.literal('emulated'),
});

const scalingSchema = z
  .strictObject({
    /**
     * A policy by name, any a gateway can run (docs/autoscaling.md; `oracle` is the simulator's),
     * with its options (each policy's defaults are its peer's published ones), checked against the
     * policy's strict schema.
     */
    policy: z.enum(LIVE_POLICIES).default('kpa'),
    options: z.record(z.string(), z.unknown()).default({}),
    minReplicas: nonNegInt.default(0),
    maxReplicas: positiveInt.default(4),
    /** Requests per second one reference replica sustains within the SLO (rate-sizing policies). */
    replicaRps: z.number().positive().default(1),
    slo: z
      .strictObject({
        ttftMs: positiveInt.default(2_000),
        tpotMs: positiveInt.default(100),
        quantile: z.number().gt(0).lt(1).default(0.9),
      })
      .prefault({}),
    /** Instance types; the first is the reference replica. */
    catalog: z.array(instanceTypeSchema).min(1),
    maxSpotShare: z.number().min(0).max(1).default(0),
    maxSpotSharePerType: z.number().min(0).max(1).default(1),
    /** Per-replica gateway concurrency limit. */
    maxConcurrency: positiveInt.default(256),
    /**
     * Time from asking for a replica to its serving, ms, as the policies plan with it. Default: the
     * reference type's profile's, or 3 000 with the `process` actuator's default command (an emulated
     * engine, which is then started with this cold start).
     */
    coldStartMs: positiveInt.optional(),
    actuator: z.discriminatedUnion('kind', [
      processActuatorSchema,
      kubernetesActuatorSchema,
      emulatedActuatorSchema,
    ]),
  })
  .refine((s) => s.maxReplicas >= s.minReplicas, 'maxReplicas must be ≥ minReplicas')
  .superRefine((s, ctx) => addIssues(ctx, ['options'], POLICY_OPTIONS[s.policy].safeParse(s.options)));

const poolSchema = z
  .strictObject({
    /** Other model names that reach this pool. */
    aliases: z.array(z.string().min(1)).default([]),
    /**
     * The pool runs on infrastructure you control (on-premises, edge, device). Requests decided by a
     * `localOnly` tier rule only ever reach local pools.
     */
    local: z.boolean().default(false),
    /** This pool's routing policy (a name, one of `router.profiles`, or a plugin list); default `router.profile`. */
    routing: z.union([z.string().min(1), routerProfileSchema]).optional(),
    /** This pool's admission queue; each key given replaces the top-level `scheduling` one. */
    scheduling: poolSchedulingSchema.optional(),
    /** Fixed endpoints; an autoscaled pool may have none (its replicas come from `scaling`). */
    endpoints: z.array(endpointSchema).default([]),
    /** Autoscale this pool (docs/autoscaling.md): the gateway starts and drains its replicas. */
    scaling: scalingSchema.optional(),
    /** USD per million tokens, for the usage ledger's cost and budgets (docs/tenancy.md); absent = free. */
    prices: pricesSchema.optional(),
  })
  .refine((p) => p.endpoints.length > 0 || p.scaling !== undefined, 'a pool needs endpoints or scaling');

const routerSchema = z
  .strictObject({
    /** A routing policy by name (docs/routing.md; `default` = `predicted-ttft`) or an explicit plugin list. */
    profile: z.union([z.string().min(1), routerProfileSchema]).default('default'),
    /** Named profiles (filters → weighted scorers → picker) that `profile` and pools' `routing` may name. */
    profiles: z.record(z.string().min(1), routerProfileSchema).default({}),
    /** Attempts per request over different endpoints when an upstream fails before any byte is sent. */
    maxAttempts: positiveInt.max(5).default(2),
    /** Seed for randomised tie-breaks, so a decision sequence can be replayed. */
    seed: nonNegInt.default(1),
  })
  .prefault({});

const serverSchema = z
  .strictObject({
    /** Loopback by default: another address with no authentication needs `auth.mode: none` written out. */
    host: z.string().default('127.0.0.1'),
    port: nonNegInt.max(65535).default(8080),
    /** Largest accepted request body. */
    maxBodyBytes: positiveInt.default(4 * 1024 * 1024),
    /** SIGTERM: time allowed for in-flight requests and streams to finish. */
    drainTimeoutMs: positiveInt.default(30_000),
    /** Keep-alive timeout for client connections. */
    keepAliveTimeoutMs: positiveInt.default(65_000),
  })
  .prefault({});

const limitsSchema = z
  .strictObject({
    /** Requests in flight through this gateway at most; past it, 429 with Retry-After. */
    maxInFlight: positiveInt.default(10_000),
  })
  .prefault({});

export const healthSchema = z
  .strictObject({
    /** Consecutive failures that open an endpoint's circuit. */
    failureThreshold: positiveInt.default(3),
    /** How long an open circuit stays open before one half-open probe is let through. */
    openMs: positiveInt.default(10_000),
    /** Active health check period; 0 disables active checks. */
    intervalMs: nonNegInt.default(5_000),
    /** Timeout of one active health check. */
    timeoutMs: positiveInt.default(2_000),
    /** Engine metrics scrape period (vLLM-compatible /metrics); 0 disables scraping. */
    scrapeIntervalMs: nonNegInt.default(1_000),
  })
  .prefault({});

const logSchema = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .prefault({});

/** A regular expression source that must compile (it is compiled once per config version). */
const regexSource = z
  .string()
  .min(1)
  .refine(
    (src) => {
      try {
        new RegExp(src, 'i');
        return true;
      } catch {
        return false;
      }
    },
    { error: (issue) => `invalid regular expression /${String(issue.input)}/` },
  );

/** Conditions of one tier rule; every condition listed must hold. */
const tierConditionsSchema = z
  .strictObject({
    /** The prompt's estimated size (≈ 4 characters a token) is below this many tokens. */
    promptTokensBelow: positiveInt.optional(),
    /** The prompt's estimated size is at least this many tokens. */
    promptTokensAtLeast: nonNegInt.optional(),
    /** A regular expression found in the last user message (case-insensitive). */
    match: regexSource.optional(),
    /** Any of these words or phrases appears in the last user message (case-insensitive, whole words). */
    keywords: z.array(z.string().min(1)).min(1).optional(),
    /** The prompt carries personal data (email, phone, card, IBAN, SSN, IPv4; docs/tiers.md). */
    pii: z.literal(true).optional(),
    /** The request's tenant (for now the `x-switchyard-tenant` header) is one of these. */
    tenant: z.array(z.string().min(1)).min(1).optional(),
    /** Request headers with exactly these values (names are case-insensitive). */
    header: z.record(z.string().min(1), z.string()).optional(),
  })
  .refine((c) => Object.keys(c).length > 0, 'name at least one condition; use `default` for a catch-all');

const tierRuleSchema = z.strictObject({
  /** Shown in `x-switchyard-tier-rule` and metrics; default `rules[INDEX]`. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"')
    .optional(),
  when: tierConditionsSchema,
  /** Pool (name or alias) that serves a matching request. */
  pool: z.string().min(1),
  /** A matching request never reaches a pool without `local: true`, not even on fallback. */
  localOnly: z.boolean().default(false),
});

const cascadeCheckSchema = z.enum(['empty', 'refusal', 'invalid-json']);

const tierSchema = z.strictObject({
  /** Tried in order; the first rule whose conditions all hold decides the pool. */
  rules: z.array(tierRuleSchema).default([]),
  /** Pool for requests no rule matches. */
  default: z.string().min(1),
  /** Pool → pools to try next, in order, when it fails or is saturated. */
  fallback: z.record(z.string().min(1), z.array(z.string().min(1))).default({}),
  /** Non-streamed chat answers from `from` that fail a check are asked again of `to`. */
  cascade: z
    .strictObject({
      from: z.string().min(1),
      to: z.string().min(1),
      checks: z.array(cascadeCheckSchema).min(1).default(['empty', 'refusal', 'invalid-json']),
    })
    .optional(),
});

/** The whole configuration file. */
export const configSchema = z.strictObject({
  server: serverSchema,
  auth: authSchema,
  router: routerSchema,
  limits: limitsSchema,
  health: healthSchema,
  log: logSchema,
  /** Admission queues: defaults for every pool (docs/scheduling.md). */
  scheduling: schedulingSchema,
  /** Model name clients send → the endpoints that serve it. */
  pools: z
    .record(z.string().min(1), poolSchema)
    .refine((p) => Object.keys(p).length > 0, 'at least one pool'),
  /** Model aliases that pick a pool per request by rules, with fallbacks and a cascade (docs/tiers.md). */
  tiers: z.record(z.string().min(1), tierSchema).default({}),
  /**
   * Engine profile files (YAML, e.g. written by `switchyard calibrate`), relative to the config
   * file; endpoints and instance types may name their profiles beside the shipped ones.
   */
  profileFiles: z.array(z.string().min(1)).default([]),
  /** Tenants named in the config (the admin API's live in the database and take precedence). */
  tenants: z.record(tenancyId, tenantConfigSchema).default({}),
  database: databaseSchema,
  redis: redisSchema,
});

export type SwitchyardConfig = z.infer<typeof configSchema>;
export type PoolConfig = z.infer<typeof poolSchema>;
export type EndpointConfig = z.infer<typeof endpointSchema>;
export type HttpEndpointConfig = z.infer<typeof httpEndpointSchema>;
export type EmulatedEndpointConfig = z.infer<typeof emulatedEndpointSchema>;
export type RouterProfileConfig = z.infer<typeof routerProfileSchema>;
export type RouterConfig = z.infer<typeof routerSchema>;
export type TierConfig = z.infer<typeof tierSchema>;
export type TierRuleConfig = z.infer<typeof tierRuleSchema>;
export type CascadeCheck = z.infer<typeof cascadeCheckSchema>;
export type SchedulingConfig = z.infer<typeof schedulingSchema>;
export type PoolSchedulingConfig = z.infer<typeof poolSchedulingSchema>;
export type ScalingConfig = z.infer<typeof scalingSchema>;
export type InstanceTypeConfig = z.infer<typeof instanceTypeSchema>;
export type QueueOrderName = SchedulingConfig['queue'];
