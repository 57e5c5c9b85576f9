/**
 * @module adapters/engines/http-engine
 * An OpenAI-compatible upstream (vLLM, SGLang, llama.cpp, Ollama, a cloud API) reached over pooled
 * keep-alive HTTP/1.1 connections (undici). Connect, first-byte and idle timeouts map to 504;
 * aborting the signal (client gone) closes the upstream request.
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { SwitchyardError } from '../../core/errors.js';
import type { EndpointState } from '../../datalayer/endpoint-state.js';
import { METRICS_MAPPINGS, type MetricsMapping } from './metrics-mapping.js';

/** What an HTTP engine needs to know (the http endpoint config, or a started emulated engine). */
export interface HttpEngineOptions {
  readonly name: string;
  /** Base URL including the API prefix, e.g. `http://127.0.0.1:8000/v1`. */
  readonly url: string;
  /** Model name sent upstream. */
  readonly upstreamModel: string;
  readonly apiKey?: string | undefined;
  readonly engine: string;
  readonly healthPath?: string | null | undefined;
  readonly connections: number;
  readonly timeouts: { readonly connectMs: number; readonly firstByteMs: number; readonly idleMs: number };
}

const DEFAULT_HEALTH_PATH: Readonly<Record<string, string | null>> = {
  vllm: '/health',
  sglang: '/health',
  llamacpp: '/health',
  ollama: '/',
  openai: null,
};

/** One upstream endpoint: its connection pool, its data-layer state and its metrics mapping. */
export class HttpEngine {
  readonly name: string;
  readonly upstreamModel: string;
  readonly mapping: MetricsMapping | null;
  readonly healthPath: string | null;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly baseHeaders: Record<string, string>;
  /** `baseHeaders` as name/value pairs, the form undici takes without `Object.keys` per request. */
  private readonly postHeaders: readonly string[];

  constructor(
    readonly options: HttpEngineOptions,
    readonly state: EndpointState,
  ) {
    const url = new URL(options.url);
    this.name = options.name;
    this.upstreamModel = options.upstreamModel;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.mapping = METRICS_MAPPINGS[options.engine] ?? null;
    this.healthPath =
      options.healthPath === undefined ? (DEFAULT_HEALTH_PATH[options.engine] ?? null) : options.healthPath;
    this.baseHeaders = { 'content-type': 'application/json' };
    if (options.apiKey) this.baseHeaders.authorization = `Bearer ${options.apiKey}`;
    this.postHeaders = Object.entries(this.baseHeaders).flat();
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      connect: { timeout: options.timeouts.connectMs },
      headersTimeout: options.timeouts.firstByteMs,
      bodyTimeout: options.timeouts.idleMs,
      keepAliveTimeout: 30_000,
      pipelining: 1,
    });
  }

  /**
   * POSTs a JSON body to `apiPath` (e.g. `/chat/completions`). Rejects with a SwitchyardError for
   * transport failures (502) and timeouts (504); an HTTP error status is returned, not thrown.
   */
  async post(
    apiPath: string,
    body: string | Buffer,
    requestId: string,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await this.pool.request({
        path: this.basePath + apiPath,
        method: 'POST',
        // Pairs, not an object: undici's Object.keys on a fresh object per request showed up among
        // what survives young-generation GCs (a heap profile of survivors).
        headers: [...this.postHeaders, 'x-request-id', requestId],
        body,
        signal,
      });
    } catch (err) {
      throw toUpstreamError(err, this.name);
    }
  }

  /** GETs a path relative to the origin (health checks, /metrics); null on any failure. */
  async get(path: string, timeoutMs: number): Promise<{ status: number; text: string } | null> {
    try {
      const res = await this.pool.request({
        path,
        method: 'GET',
        headers: this.baseHeaders.authorization ? { authorization: this.baseHeaders.authorization } : {},
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch {
      return null;
    }
  }

  /** Closes the connection pool once in-flight requests have finished. */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** Destroys the pool and its in-flight requests at once (end of a drain deadline). */
  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

/** Maps undici failures to catalogue errors: timeouts → 504, anything else → 502. */
export function toUpstreamError(err: unknown, endpoint: string): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const e = err as { code?: string; message?: string };
  if (
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new SwitchyardError('SWY_ERR_UPSTREAM_TIMEOUT', `upstream ${endpoint} timed out (${e.code})`);
  }
  return new SwitchyardError(
    'SWY_ERR_UPSTREAM_ERROR',
    `upstream ${endpoint} failed: ${e.code ?? ''} ${e.message ?? String(err)}`.trim(),
  );
}
