/**
 * @module gateway/proxy
 * The request path for inference calls: read → parse → validate → resolve pool → admit → route →
 * send upstream (bounded retries on other endpoints before any byte is sent) → relay (JSON, or SSE
 * chunk by chunk) → account exactly once.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { assert } from '../core/assert.js';
import { SwitchyardError } from '../core/errors.js';
import type { HttpEngine } from '../adapters/engines/http-engine.js';
import type { CascadeCheck } from '../config/schema.js';
import type { RoutingRequest } from '../framework/routing.js';
import { PROMPT_BLOCK_TOKENS, promptBlockHashes, renderPrompt } from '../router/prompt-blocks.js';
import type { DecisionRecord } from '../router/router.js';
import type { PoolRequest } from '../pool/driver.js';
import { failedCheck, wantsJson } from '../tiers/cascade.js';
import type { CascadePlan, TierAlias, TierPlan } from '../tiers/plan.js';
import type { PredictorFeatures } from '../scheduler/predictor.js';
import { PRIORITY_CLASSES, type PriorityClass } from '../scheduler/types.js';
import { TierSignals } from '../tiers/signals.js';
import { type Attempt, DROP_REASON_HEADER, admit, dropReasonOf, retry } from './admission.js';
import type { RequestContext } from './context.js';
import { parseJson, readBody } from './body.js';
import { asSwitchyardError, writeError } from './errors.js';
import type { PoolRuntime } from './runtime.js';
import { SseRelay, type Usage, usageOfJsonBody } from './sse.js';
import { type InferenceBody, type Operation, estimatePromptTokens, validateBody } from './validate.js';

const UPSTREAM_PATH: Readonly<Record<Operation, string>> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
};

/** Response headers naming where a request went (on errors: the last pool and endpoint tried). */
const POOL_HEADER = 'x-switchyard-pool';
const ENDPOINT_HEADER = 'x-switchyard-endpoint';
const TIER_RULE_HEADER = 'x-switchyard-tier-rule';
const CASCADE_HEADER = 'x-switchyard-cascade';
/** Request header with the priority class: high, normal, low or batch. */
const PRIORITY_HEADER = 'x-switchyard-priority';
/** The fairness key of requests that name no tenant. */
const DEFAULT_TENANT = 'default';

/**
 * Errors after which a tier plan moves on to its next pool: nothing usable, nothing answered, or
 * (last pool only, so no further pool, but a cascade escalation then sends its first answer) dropped
 * from the queue.
 */
const POOL_FAILURES: ReadonlySet<string> = new Set([
  'SWY_ERR_OVERLOADED',
  'SWY_ERR_NO_HEALTHY_ENDPOINT',
  'SWY_ERR_UPSTREAM_ERROR',
  'SWY_ERR_UPSTREAM_TIMEOUT',
  'SWY_ERR_QUEUE_FULL',
  'SWY_ERR_QUEUE_SHED',
  'SWY_ERR_QUEUE_TIMEOUT',
  'SWY_ERR_DEADLINE_EXCEEDED',
]);

/** A successful JSON answer, possibly held back from the client while a cascade checks it. */
interface JsonAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** A validated request and what routing, tiers and the queue read from it, each computed once. */
interface Inference {
  readonly op: Operation;
  readonly body: InferenceBody;
  readonly raw: Buffer;
  /** Prompt size, last user text, PII, headers (for tier rules and the length predictor). */
  readonly signals: TierSignals;
  /** Chained hashes of the prompt's blocks (the prefix signal); empty for embeddings. */
  readonly prefixHashes: readonly number[];
  readonly sessionId: string | null;
  /** The tenant the request names (`x-switchyard-tenant` until API keys carry it), or null. */
  readonly tenant: string | null;
  /** The client's `x-switchyard-priority`; null: the pool's `defaultPriority` applies. */
  readonly priority: PriorityClass | null;
}

/** Where {@link relayJson} leaves a successful answer instead of sending it. */
interface AnswerHold {
  answer: JsonAnswer | null;
}

/** Handles one inference request end to end; never throws (errors become responses). */
export async function handleInference(
  op: Operation,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
): Promise<void> {
  try {
    // Who is asking, before the body is read: an unauthenticated client's body is not worth reading.
    const principal = await ctx.authenticate(req.headers);
    let raw = await readBody(req, ctx.runtime.config.server.maxBodyBytes);
    let body = validateBody(op, parseJson(raw));
    const priority = priorityOf(req.headers);
    ctx.modelAsked = body.model;
    const tier = ctx.runtime.tiers.get(body.model);
    const pool = tier === undefined ? ctx.runtime.byModel.get(body.model) : undefined;
    if (tier === undefined && pool === undefined) {
      throw new SwitchyardError('SWY_ERR_MODEL_NOT_FOUND', `The model \`${body.model}\` does not exist`, {
        param: 'model',
      });
    }
    // Limits and budgets are reserved before queueing or routing; a tier reserves at its default pool's prices.
    const pricedPool = pool ?? ctx.runtime.byModel.get(ctx.runtime.config.tiers[body.model]?.default ?? '');
    const promptTokens = estimatePromptTokens(op, body);
    const admission = await ctx.admit({
      model: body.model,
      prices: pricedPool === undefined ? undefined : ctx.runtime.config.pools[pricedPool.name]?.prices,
      promptTokens,
      maxTokens: op === 'embeddings' ? 0 : maxTokensOf(body),
    });
    if (admission !== null && admission.injectMaxTokens !== null && op !== 'embeddings') {
      body = { ...body, max_tokens: admission.injectMaxTokens };
      raw = Buffer.from(JSON.stringify(body));
    }
    const keyTenant = principal.keyId === 'anonymous' ? undefined : principal.tenant;
    ctx.promptEstimate = promptTokens;
    const inf = inference(op, body, raw, req.headers, priority, promptTokens, keyTenant);
    ctx.session = inf.sessionId;
    if (tier !== undefined) {
      await serveTier(inf, tier, res, ctx);
      return;
    }
    ctx.model = pool!.name;
    res.setHeader(POOL_HEADER, pool!.name);
    await proxy(inf, pool!, res, ctx);
  } catch (err) {
    const e = asSwitchyardError(err);
    ctx.reason = e.code;
    if (e.code === 'SWY_ERR_INTERNAL') ctx.log.error({ err, requestId: ctx.id }, 'internal error');
    // A refused oversized body is not drained; closing the connection keeps the next request clean.
    const headers = e.code === 'SWY_ERR_BODY_TOO_LARGE' ? { connection: 'close' } : undefined;
    ctx.finish(writeError(res, e, headers));
  }
}

/** Reads the request's signals once: a tier's fallback pools and a cascade reuse them. */
function inference(
  op: Operation,
  body: InferenceBody,
  raw: Buffer,
  headers: IncomingHttpHeaders,
  priority: PriorityClass | null,
  promptTokens: number,
  keyTenant: string | undefined,
): Inference {
  const signals = new TierSignals(body, headers, promptTokens, keyTenant);
  const session = signals.header('x-switchyard-session') ?? signals.header('x-session-id');
  const tenant = signals.tenant;
  return {
    op,
    body,
    raw,
    signals,
    // Embeddings reuse no KV cache: no prefix signal for them.
    prefixHashes: op === 'embeddings' ? [] : promptBlockHashes(renderPrompt(body)),
    sessionId: session !== undefined && session.length > 0 ? session : null,
    tenant: tenant !== undefined && tenant.length > 0 ? tenant : null,
    priority,
  };
}

/**
 * A tier alias: decide the plan, try its pools in order, and check a cascade's answer before the
 * client sees it. Throws (like {@link proxy}) when no pool could answer.
 */
async function serveTier(
  inf: Inference,
  tier: TierAlias,
  res: ServerResponse,
  ctx: RequestContext,
): Promise<void> {
  const plan = tier.plan(inf.signals);
  ctx.onTierDecision(tier.name, plan.pools[0]!, plan.rule);
  res.setHeader(TIER_RULE_HEADER, plan.rule);
  // A streamed answer is on the wire before it could be checked, so only buffered chat answers cascade.
  const cascade = inf.op === 'chat' && inf.body.stream !== true ? plan.cascade : null;
  const hold: AnswerHold | null = cascade === null ? null : { answer: null };
  const failure = await tryPools(inf, plan.pools, tier.name, res, ctx, cascade?.from, hold);
  if (failure !== null) throw plan.localOnly ? localPoolsUnavailable(plan, failure) : failure;
  const held = hold?.answer ?? null;
  if (cascade === null || held === null) return; // answered already, by a pool the cascade does not check
  const check = failedCheck(cascade.checks, parseAnswer(held.body), wantsJson(inf.body));
  if (check === null) sendAnswer(res, ctx, held);
  else await escalate(inf, tier.name, cascade, check, held, res, ctx);
}

/**
 * Tries `pools` in order until one answers. A pool fails when routing finds no usable endpoint in it
 * (a saturated pool counts, except the last one, where the request waits in the queue), when every
 * attempt in it failed before any byte was sent, or when the last pool's queue dropped it; then the
 * next pool is tried. Only the pool named `holdFrom` leaves its answer in `hold`. Returns null once
 * the request is answered (or the client left), else the last pool's error.
 */
async function tryPools(
  inf: Inference,
  pools: readonly string[],
  alias: string,
  res: ServerResponse,
  ctx: RequestContext,
  holdFrom: string | undefined,
  hold: AnswerHold | null,
): Promise<SwitchyardError | null> {
  let lastError: SwitchyardError | null = null;
  for (let i = 0; i < pools.length; i++) {
    const name = pools[i]!;
    const pool = ctx.runtime.byModel.get(name);
    assert(pool !== undefined, `tier ${alias} names pool ${name}, which the runtime lacks`);
    ctx.model = pool.name;
    res.setHeader(POOL_HEADER, pool.name);
    // A saturated pool with a pool after it passes the request on; only the last one queues it.
    const queue = i === pools.length - 1;
    try {
      await proxy(inf, pool, res, ctx, name === holdFrom ? hold : null, queue);
      return null;
    } catch (err) {
      const e = asSwitchyardError(err);
      if (!POOL_FAILURES.has(e.code) || ctx.abort.signal.aborted) throw e;
      ctx.onTierPoolFailure(alias, name);
      lastError = e;
    }
  }
  return lastError;
}

/**
 * Asks the cascade's larger pools after the first answer failed `check`. The request still finishes
 * once, with the answer sent; the first answer's tokens are counted apart, on its own endpoint. If
 * no larger pool answers, the first answer is sent after all: an unchecked answer beats an error.
 */
async function escalate(
  inf: Inference,
  alias: string,
  cascade: CascadePlan,
  check: CascadeCheck,
  first: JsonAnswer,
  res: ServerResponse,
  ctx: RequestContext,
): Promise<void> {
  ctx.onCascadeEscalation(alias, check);
  const { model, endpoint, usage } = ctx;
  ctx.usage = null;
  res.setHeader(CASCADE_HEADER, `escalated:${check}`);
  const failure = await tryPools(inf, cascade.pools, alias, res, ctx, undefined, null);
  if (failure === null) {
    if (usage !== null) ctx.countDiscardedUsage(model, endpoint, usage);
    return;
  }
  ctx.log.warn({ requestId: ctx.id, alias, err: failure.message }, 'cascade escalation failed');
  ctx.model = model;
  ctx.endpoint = endpoint;
  ctx.usage = usage;
  res.setHeader(POOL_HEADER, model);
  res.setHeader(ENDPOINT_HEADER, endpoint);
  res.setHeader(CASCADE_HEADER, `escalation-failed:${check}`);
  sendAnswer(res, ctx, first);
}

function localPoolsUnavailable(plan: TierPlan, cause: SwitchyardError): SwitchyardError {
  return new SwitchyardError(
    'SWY_ERR_LOCAL_POOLS_UNAVAILABLE',
    `rule "${plan.rule}" keeps this request on local pools (${plan.pools.join(', ')}) and none of them could serve it: ${cause.message}`,
  );
}

function parseAnswer(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * Serves the request from `pool`: the first attempt waits its turn in the pool's admission queue
 * (or, with `queue` false, finds the pool saturated at once), retries after an upstream failure go
 * straight to another endpoint. Throws when no attempt answered.
 */
async function proxy(
  inf: Inference,
  pool: PoolRuntime,
  res: ServerResponse,
  ctx: RequestContext,
  hold: AnswerHold | null = null,
  queue = true,
): Promise<void> {
  const stream = inf.op !== 'embeddings' && inf.body.stream === true;
  // Meter streamed usage even when the client did not ask for it; the extra chunk is hidden again.
  const injectUsage = stream && inf.body.stream_options?.include_usage !== true;
  const routing = routingRequest(inf, pool.name, ctx);
  const req = poolRequest(inf, routing, pool, ctx);
  const driver = pool.driver;
  let lastError: SwitchyardError | null = null;
  let attempt: Attempt | null = null;
  for (let n = 0; n < ctx.runtime.config.router.maxAttempts; n++) {
    try {
      attempt =
        attempt === null
          ? await admit(driver, req, queue, ctx.abort.signal)
          : retry(driver, attempt.admission);
    } catch (err) {
      // After a failed attempt, "no candidate left" means the upstream error is the real answer.
      if (lastError !== null) throw lastError;
      const reason = dropReasonOf(asSwitchyardError(err).code);
      if (reason !== undefined) res.setHeader(DROP_REASON_HEADER, reason);
      throw err;
    }
    if (attempt === null) {
      clientGone(ctx); // left while waiting in the queue
      return;
    }
    const { engine } = attempt;
    ctx.onRouted(pool.name, attempt.reason);
    if (req.record !== undefined)
      ctx.log.debug({ requestId: ctx.id, pool: pool.name, decision: req.record }, 'routed');
    if (n > 0) ctx.onRetry();
    ctx.onTokens = attempt.onTokens;
    let outcome: SwitchyardError | null | undefined;
    try {
      outcome = await attemptUpstream(inf, engine, injectUsage, stream, res, ctx, hold);
    } finally {
      attempt.end({
        ok: outcome === null,
        cachedTokens: ctx.usage?.cachedTokens ?? null,
        outputTokens: ctx.usage?.completionTokens ?? null,
        tpotMs: ctx.tpotMs(),
      });
    }
    if (outcome === null) return;
    lastError = outcome;
    routing.excluded ??= new Set();
    routing.excluded.add(engine.name);
  }
  throw lastError!;
}

/** What the pool's queue and router need to know about the request. */
function poolRequest(
  inf: Inference,
  routing: RoutingRequest & { excluded: Set<string> | null },
  pool: PoolRuntime,
  ctx: RequestContext,
): PoolRequest {
  const tenant = inf.tenant ?? DEFAULT_TENANT;
  let features: PredictorFeatures | undefined;
  return {
    routing,
    ...(ctx.log.isLevelEnabled('debug') ? { record: {} as DecisionRecord } : {}),
    priority: inf.priority ?? pool.driver.defaultPriority,
    tenant,
    // Built only when the pool's order predicts output lengths (sjf), once per request.
    features: () => {
      features ??= {
        promptTokens: routing.promptTokensEstimate,
        maxTokens: maxTokensOf(inf.body),
        tenant,
        model: pool.name,
        lastUserText: inf.signals.lastUserText || null,
        sessionId: routing.sessionId,
        prefixHashes: routing.prefixHashes,
      };
      return features;
    },
  };
}

function maxTokensOf(body: InferenceBody): number | null {
  const v = body.max_completion_tokens ?? body.max_tokens;
  return typeof v === 'number' ? v : null;
}

/** The routing signals of a request for `pool`: size, prefix block hashes, session and tenant. */
function routingRequest(
  inf: Inference,
  pool: string,
  ctx: RequestContext,
): RoutingRequest & { excluded: Set<string> | null } {
  return {
    id: ctx.id,
    pool,
    promptTokensEstimate: inf.signals.promptTokens,
    excluded: null,
    prefixHashes: inf.prefixHashes,
    prefixBlockTokens: PROMPT_BLOCK_TOKENS,
    sessionId: inf.sessionId,
    tenant: inf.tenant,
  };
}

/**
 * One upstream attempt on an endpoint whose slot the caller holds. Returns null when the request was
 * answered (successfully or with the upstream's own client error) or the client left, else the error
 * to retry elsewhere / report. Never throws.
 */
async function attemptUpstream(
  { op, body, raw }: Inference,
  engine: HttpEngine,
  injectUsage: boolean,
  stream: boolean,
  res: ServerResponse,
  ctx: RequestContext,
  hold: AnswerHold | null,
): Promise<SwitchyardError | null> {
  const state = engine.state;
  ctx.endpoint = engine.name;
  res.setHeader(ENDPOINT_HEADER, engine.name);
  state.breaker.onSend();
  try {
    // The client's bytes go upstream as they are unless the model name or stream_options must change.
    const upstreamBody =
      body.model === engine.upstreamModel && !injectUsage
        ? raw
        : JSON.stringify({
            ...body,
            model: engine.upstreamModel,
            ...(injectUsage ? { stream_options: { ...body.stream_options, include_usage: true } } : {}),
          });
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await engine.post(UPSTREAM_PATH[op], upstreamBody, ctx.id, ctx.abort.signal);
    } catch (err) {
      if (ctx.abort.signal.aborted) return clientGone(ctx);
      state.breaker.onFailure();
      return asSwitchyardError(err);
    }
    const status = upstream.statusCode;
    if (status >= 500 || status === 429) {
      const text = await upstream.body.text().catch(() => '');
      if (status >= 500) state.breaker.onFailure();
      return upstreamStatusError(engine.name, status, text);
    }
    state.breaker.onSuccess();
    if (status >= 400 || !stream) await relayJson(upstream, res, ctx, hold);
    else await relayStream(upstream, res, ctx, injectUsage, op);
    return null;
  } catch (err) {
    if (ctx.abort.signal.aborted) return clientGone(ctx);
    // Failure after the response started: the client sees a truncated stream, the breaker a failure.
    state.breaker.onFailure();
    const e = asSwitchyardError(err);
    if (res.headersSent) {
      ctx.log.warn(
        { requestId: ctx.id, endpoint: engine.name, err: e.message },
        'upstream failed mid-response',
      );
      res.destroy();
      ctx.reason = e.code;
      ctx.finish(e.status);
      return null;
    }
    return e;
  }
}

/** The client's priority class; null when it sent none (the pool's default applies). */
function priorityOf(headers: IncomingHttpHeaders): PriorityClass | null {
  const v = headers[PRIORITY_HEADER];
  if (v === undefined) return null;
  if (typeof v === 'string' && (PRIORITY_CLASSES as readonly string[]).includes(v)) return v as PriorityClass;
  throw new SwitchyardError(
    'SWY_ERR_INVALID_REQUEST',
    `header ${PRIORITY_HEADER} must be one of ${PRIORITY_CLASSES.join(', ')}; got ${JSON.stringify(String(v))}`,
    { param: PRIORITY_HEADER },
  );
}

function clientGone(ctx: RequestContext): null {
  ctx.finish(499);
  return null;
}

function upstreamStatusError(endpoint: string, status: number, text: string): SwitchyardError {
  const detail = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  if (status === 429) {
    return new SwitchyardError('SWY_ERR_OVERLOADED', `upstream ${endpoint} is rate limited (429): ${detail}`);
  }
  return new SwitchyardError('SWY_ERR_UPSTREAM_ERROR', `upstream ${endpoint} answered ${status}: ${detail}`);
}

/**
 * Buffers a JSON answer (needed for usage) and sends it with the upstream's status, unless `hold`
 * is given and the answer is a success: then it is left there, unsent, for a cascade to check.
 */
async function relayJson(
  upstream: Dispatcher.ResponseData,
  res: ServerResponse,
  ctx: RequestContext,
  hold: AnswerHold | null,
): Promise<void> {
  const answer: JsonAnswer = {
    status: upstream.statusCode,
    contentType: String(upstream.headers['content-type'] ?? 'application/json'),
    body: Buffer.from(await upstream.body.arrayBuffer()),
  };
  if (answer.status < 300) {
    ctx.usage = usageOfJsonBody(answer.body);
    if (hold !== null) {
      hold.answer = answer;
      return;
    }
  }
  sendAnswer(res, ctx, answer);
}

function sendAnswer(res: ServerResponse, ctx: RequestContext, answer: JsonAnswer): void {
  res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': answer.body.length });
  res.end(answer.body);
  ctx.finish(answer.status);
}

/** Relays SSE event by event with backpressure; notes first-token time and usage. */
async function relayStream(
  upstream: Dispatcher.ResponseData,
  res: ServerResponse,
  ctx: RequestContext,
  stripUsage: boolean,
  op: Operation,
): Promise<void> {
  const guard = ctx.admission?.outputGuard ?? Number.POSITIVE_INFINITY;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  const relay = new SseRelay(stripUsage);
  let told = 0;
  for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
    const out = relay.push(chunk);
    if (out.length === 0) continue;
    if (relay.contentEvents > told) {
      ctx.markTokens(relay.contentEvents - told);
      told = relay.contentEvents;
    }
    if (told > guard) {
      // Leaving the loop destroys the upstream body, which cancels the upstream request.
      res.end(Buffer.concat([out, outputLimitEvent(ctx, op, guard)]));
      ctx.reason = 'output_token_limit';
      ctx.finish(200);
      return;
    }
    if (!res.write(out)) await drained(res, ctx.abort.signal);
  }
  const tail = relay.flush();
  ctx.usage = relay.usage;
  res.end(tail);
  ctx.finish(200);
}

/**
 * The last events of a stream the runaway-output guard ends: a chunk with `finish_reason: "length"`
 * (what every OpenAI client handles) that also names the guard, then `[DONE]`.
 */
function outputLimitEvent(ctx: RequestContext, op: Operation, limit: number): Buffer {
  const chat = op === 'chat';
  const chunk = {
    id: `swy-${ctx.id}`,
    object: chat ? 'chat.completion.chunk' : 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: ctx.modelAsked,
    choices: [{ index: 0, ...(chat ? { delta: {} } : { text: '' }), finish_reason: 'length' }],
    switchyard: { stopped: 'output_token_limit', limit },
  };
  return Buffer.from(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`);
}

function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

export type { Usage };
