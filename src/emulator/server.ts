/**
 * @module emulator/server
 * The emulated engine: the engine model on the live clock behind a real HTTP server that speaks the
 * OpenAI API (chat, completions, embeddings, models) and exposes vLLM-compatible /metrics and
 * /health. It is a fake of a GPU engine, for demos, development and tests: it generates filler text
 * with realistic token counts and timing, not language.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, LiveClock, epochSeconds } from '../core/clock.js';
import { fnv1a } from '../core/hash.js';
import { EngineModel } from '../engine-model/engine-model.js';
import type { EngineProfile, EngineRequestResult } from '../engine-model/types.js';
import { blockHashChain, fillerText, tokenize } from './tokens.js';

/** Options of one emulated engine. */
export interface EmulatedEngineOptions {
  readonly profile: EngineProfile;
  /** Model name served (requests naming another model get 404, as vLLM does). */
  readonly servedModelName?: string;
  /** Output length of a request without `max_tokens` (one with it generates exactly that many). */
  readonly defaultOutputTokens?: number;
  /** Start with a cold start of `profile.coldStartMs` before serving. */
  readonly coldStart?: boolean;
  /** Requests waiting in the engine at most; more get 503. */
  readonly maxWaiting?: number;
  readonly clock?: Clock;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;
const EMBEDDING_DIMS = 384;

/** A running emulated engine. */
export class EmulatedEngineServer {
  readonly model: EngineModel;
  readonly servedModelName: string;
  private readonly server: Server;
  private readonly defaultOutputTokens: number;

  constructor(readonly options: EmulatedEngineOptions) {
    this.model = new EngineModel(options.profile, options.clock ?? new LiveClock(), {
      coldStart: options.coldStart ?? false,
      maxWaiting: options.maxWaiting ?? 4096,
    });
    this.servedModelName = options.servedModelName ?? options.profile.model;
    this.defaultOutputTokens = options.defaultOutputTokens ?? 64;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) =>
        sendJson(res, 500, errorJson(err.message, 'internal_error')),
      );
    });
    this.server.keepAliveTimeout = 65_000;
  }

  /** Listens on `port` (0 = any free port) and resolves with the base URL (`…/v1`). */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    return `http://${host}:${addr.port}/v1`;
  }

  /** Stops accepting and closes idle connections; in-flight requests are cancelled. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (req.method === 'GET') {
      if (url === '/health') return sendJson(res, this.model.stats().ready ? 200 : 503, {});
      if (url === '/metrics') return this.sendMetrics(res);
      if (url === '/v1/models') return this.sendModels(res);
    }
    if (req.method === 'POST' && (url === '/v1/chat/completions' || url === '/v1/completions')) {
      const body = await readJson(req, res);
      if (body !== undefined) this.generate(res, body, url === '/v1/chat/completions', requestIdOf(req));
      return;
    }
    if (req.method === 'POST' && url === '/v1/embeddings') {
      const body = await readJson(req, res);
      if (body !== undefined) this.embed(res, body);
      return;
    }
    sendJson(res, 404, errorJson(`no route ${req.method} ${url}`, 'not_found_error'));
  }

  private generate(
    res: ServerResponse,
    body: Record<string, unknown>,
    chat: boolean,
    requestId: string | undefined,
  ): void {
    if (!this.checkModel(res, body)) return;
    const prompt = chat ? chatPromptText(body.messages) : completionPromptText(body.prompt);
    const ids = tokenize(prompt);
    const promptTokens = Math.max(1, ids.length);
    const p = this.model.profile;
    const maxTokens = positiveInt(body.max_completion_tokens) ?? positiveInt(body.max_tokens);
    const room = p.maxModelLen - promptTokens;
    if (room < 1 || (maxTokens !== undefined && maxTokens > room)) {
      const msg = `This model's maximum context length is ${p.maxModelLen} tokens. However, you requested ${promptTokens + (maxTokens ?? 0)} tokens (${promptTokens} in the messages, ${maxTokens ?? 0} in the completion).`;
      sendJson(res, 400, errorJson(msg, 'BadRequestError', 'max_tokens'));
      return;
    }
    // A request with max_tokens generates exactly that many (as with ignore_eos), so load tests
    // control output lengths; one without stops after the default length, as at an end-of-sequence.
    const outputTokens = maxTokens ?? Math.min(this.defaultOutputTokens, room);
    const finishReason = maxTokens !== undefined ? 'length' : 'stop';
    const stream = body.stream === true;
    const includeUsage = (body.stream_options as { include_usage?: unknown } | null)?.include_usage === true;
    const id = `${chat ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
    const reply = new ReplyWriter(res, {
      id,
      chat,
      model: this.servedModelName,
      stream,
      includeUsage,
      finishReason,
    });

    const accepted = this.model.submit(
      {
        id,
        promptTokens,
        outputTokens,
        blockHashes: blockHashChain(ids, p.blockSize),
        // The client's request id orders requests that arrive together, as a simulation orders them.
        ...(requestId !== undefined ? { arrivalKey: requestId } : {}),
      },
      {
        onTokens: (count) => reply.tokens(count),
        onFinish: (result) => reply.finish(result),
      },
    );
    if (!accepted) {
      sendJson(res, 503, errorJson('engine queue is full', 'ServiceUnavailableError'));
      return;
    }
    // A client that goes away cancels the request inside the engine (frees its batch slot and KV).
    res.on('close', () => {
      if (!res.writableFinished) this.model.cancel(id);
    });
    if (stream) reply.start();
  }

  private embed(res: ServerResponse, body: Record<string, unknown>): void {
    if (!this.checkModel(res, body)) return;
    const inputs = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input];
    const dims = positiveInt(body.dimensions) ?? EMBEDDING_DIMS;
    let promptTokens = 0;
    const data = inputs.map((input, index) => {
      const text = typeof input === 'string' ? input : JSON.stringify(input);
      promptTokens += Array.isArray(input) ? input.length : tokenize(text).length;
      const vector = deterministicVector(text, dims);
      // The official clients ask for base64 (little-endian float32) unless told otherwise.
      const embedding = body.encoding_format === 'base64' ? float32Base64(vector) : vector;
      return { object: 'embedding', index, embedding };
    });
    sendJson(res, 200, {
      object: 'list',
      data,
      model: this.servedModelName,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  private checkModel(res: ServerResponse, body: Record<string, unknown>): boolean {
    if (body.model === this.servedModelName) return true;
    sendJson(
      res,
      404,
      errorJson(`The model \`${String(body.model)}\` does not exist.`, 'NotFoundError', 'model'),
    );
    return false;
  }

  private sendModels(res: ServerResponse): void {
    sendJson(res, 200, {
      object: 'list',
      data: [
        {
          id: this.servedModelName,
          object: 'model',
          created: epochSeconds(),
          owned_by: 'switchyard-emulator',
          root: this.model.profile.model,
          max_model_len: this.model.profile.maxModelLen,
        },
      ],
    });
  }

  private sendMetrics(res: ServerResponse): void {
    const s = this.model.stats();
    const l = `{model_name="${this.servedModelName}"}`;
    const lines = [
      ['gauge', 'vllm:num_requests_running', s.running],
      ['gauge', 'vllm:num_requests_waiting', s.waiting],
      ['gauge', 'vllm:kv_cache_usage_perc', s.kvUsage],
      ['counter', 'vllm:prefix_cache_queries_total', s.prefixQueryTokens],
      ['counter', 'vllm:prefix_cache_hits_total', s.prefixHitTokens],
      ['counter', 'vllm:prompt_tokens_total', s.promptTokensComputed],
      ['counter', 'vllm:generation_tokens_total', s.generationTokens],
      ['counter', 'vllm:num_preemptions_total', s.preemptions],
      ['counter', 'vllm:request_success_total', s.finishedRequests],
    ] as const;
    let text = '';
    for (const [type, name, value] of lines) text += `# TYPE ${name} ${type}\n${name}${l} ${value}\n`;
    // vLLM's cache geometry, as labels of an info gauge (what `switchyard calibrate` reads).
    const p = this.model.profile;
    text += `# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{block_size="${p.blockSize}",enable_prefix_caching="True",num_gpu_blocks="${p.numKvBlocks}"} 1\n`;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(text);
  }
}

/** Writes one generation as JSON or as an SSE stream, chunk by chunk as the engine emits tokens. */
class ReplyWriter {
  private sent = 0;
  private started = false;
  private readonly created = epochSeconds();

  constructor(
    private readonly res: ServerResponse,
    private readonly o: {
      id: string;
      chat: boolean;
      model: string;
      stream: boolean;
      includeUsage: boolean;
      finishReason: string;
    },
  ) {}

  start(): void {
    this.started = true;
    this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    this.res.flushHeaders();
  }

  tokens(count: number): void {
    if (this.o.stream && this.started && !this.res.destroyed) {
      // The role chunk goes out with the first token, as vLLM's stream generator sends it.
      if (this.o.chat && this.sent === 0) this.event(this.choice({ role: 'assistant', content: '' }, null));
      this.event(
        this.choice(
          this.o.chat ? { content: fillerText(count, this.sent) } : fillerText(count, this.sent),
          null,
        ),
      );
    }
    this.sent += count;
  }

  finish(r: EngineRequestResult): void {
    if (r.reason !== 'length' || this.res.destroyed) return;
    const usage = {
      prompt_tokens: r.promptTokens,
      completion_tokens: r.outputTokens,
      total_tokens: r.promptTokens + r.outputTokens,
      prompt_tokens_details: { cached_tokens: r.cachedTokens },
    };
    if (!this.o.stream) {
      const text = fillerText(r.outputTokens, 0);
      const choice = this.o.chat
        ? {
            index: 0,
            message: { role: 'assistant', content: text },
            logprobs: null,
            finish_reason: this.o.finishReason,
          }
        : { index: 0, text, logprobs: null, finish_reason: this.o.finishReason };
      sendJson(this.res, 200, { ...this.envelope(false), choices: [choice], usage });
      return;
    }
    this.event(this.choice(this.o.chat ? {} : '', this.o.finishReason));
    if (this.o.includeUsage) this.event({ ...this.envelope(true), choices: [], usage });
    this.res.end('data: [DONE]\n\n');
  }

  private envelope(chunk: boolean): Record<string, unknown> {
    const object = this.o.chat ? (chunk ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
    return { id: this.o.id, object, created: this.created, model: this.o.model };
  }

  private choice(delta: Record<string, unknown> | string, finish: string | null): Record<string, unknown> {
    const choice =
      typeof delta === 'string'
        ? { index: 0, text: delta, logprobs: null, finish_reason: finish }
        : { index: 0, delta, logprobs: null, finish_reason: finish };
    return { ...this.envelope(true), choices: [choice] };
  }

  private event(obj: unknown): void {
    this.res.write(`data: ${JSON.stringify(obj)}\n\n`);
  }
}

function requestIdOf(req: IncomingMessage): string | undefined {
  const v = req.headers['x-request-id'];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** The prompt text the engine tokenizes for a chat request (role markers and contents, as a chat template would). */
export function chatPromptText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  let text = '';
  for (const m of messages as { role?: unknown; content?: unknown }[]) {
    text += `<|${String(m.role)}|>\n`;
    if (typeof m.content === 'string') text += m.content;
    else if (Array.isArray(m.content)) {
      for (const part of m.content as { text?: unknown }[])
        if (typeof part.text === 'string') text += part.text;
    }
    text += '\n';
  }
  return `${text}<|assistant|>\n`;
}

function completionPromptText(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt))
    return prompt.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('\n');
  return '';
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** A unit vector derived from the text's hash: same text, same vector. */
function deterministicVector(text: string, dims: number): number[] {
  const v = new Array<number>(dims);
  let h = fnv1a(text);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    h = (h ^ (h >>> 12)) >>> 0;
    const x = h / 4294967296 - 0.5;
    v[i] = x;
    norm += x * x;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dims; i++) v[i] = v[i]! * scale;
  return v;
}

function float32Base64(v: readonly number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

function errorJson(message: string, type: string, param: string | null = null): Record<string, unknown> {
  return { error: { message, type, param, code: null } };
}

function sendJson(res: ServerResponse, status: number, obj: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(
  req: IncomingMessage,
  res: ServerResponse,
): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      sendJson(res, 413, errorJson('request body too large', 'BadRequestError'));
      return undefined;
    }
    chunks.push(chunk);
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (body !== null && typeof body === 'object' && !Array.isArray(body))
      return body as Record<string, unknown>;
  } catch {
    // fall through to the 400 below
  }
  sendJson(res, 400, errorJson('request body must be a JSON object', 'BadRequestError'));
  return undefined;
}
