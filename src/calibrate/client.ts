/**
 * @module calibrate/client
 * The calibration probe's view of an OpenAI-compatible engine: streamed completions timed event by
 * event, the model card, and vLLM's cache info from /metrics. undici, one keep-alive pool.
 */
import { Pool } from 'undici';
import type { RequestTimeline } from './samples.js';

/** What the engine says about itself, where it says it. */
export interface EngineFacts {
  /** `max_model_len` of the model card (vLLM and the emulator report it). */
  readonly maxModelLen?: number;
  /** vLLM's `vllm:cache_config_info` labels: KV blocks on the GPU and their size in tokens. */
  readonly numGpuBlocks?: number;
  readonly blockSize?: number;
}

/** A request the engine refused or a stream that broke. */
export class ProbeError extends Error {
  override name = 'ProbeError';
}

export class EngineClient {
  private readonly pool: Pool;
  private readonly apiPath: string;
  private readonly headers: Record<string, string>;

  /** `baseUrl` includes the API prefix, e.g. `http://10.0.0.5:8000/v1`. */
  constructor(
    baseUrl: string,
    private readonly model: string,
    apiKey: string | undefined,
    connections: number,
  ) {
    const url = new URL(baseUrl);
    this.pool = new Pool(url.origin, { connections, pipelining: 1 });
    this.apiPath = url.pathname.replace(/\/$/, '');
    this.headers = {
      'content-type': 'application/json',
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** GET a path under the origin; the body as text, or undefined on a non-200 or a network error. */
  async getText(path: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const res = await this.pool.request({ method: 'GET', path, headers: this.headers, signal });
      const text = await res.body.text();
      return res.statusCode === 200 ? text : undefined;
    } catch {
      return undefined;
    }
  }

  /** Round trip of GET …/models (no engine work), ms; throws when the engine does not answer. */
  async modelsRoundTrip(): Promise<{ ms: number; maxModelLen?: number }> {
    const t0 = performance.now();
    const text = await this.getText(`${this.apiPath}/models`);
    const ms = performance.now() - t0;
    if (text === undefined) throw new ProbeError(`GET ${this.apiPath}/models failed: is the URL right?`);
    const cards = (JSON.parse(text) as { data?: { id?: string; max_model_len?: unknown }[] }).data ?? [];
    const card = cards.find((c) => c.id === this.model);
    if (card === undefined)
      throw new ProbeError(
        `model "${this.model}" is not served; served: ${cards.map((c) => c.id).join(', ')}`,
      );
    const len = card.max_model_len;
    return { ms, ...(typeof len === 'number' && len > 0 ? { maxModelLen: len } : {}) };
  }

  /** vLLM's KV cache geometry from `vllm:cache_config_info`, when /metrics has it. */
  async cacheInfo(): Promise<Pick<EngineFacts, 'numGpuBlocks' | 'blockSize'>> {
    const text = await this.getText('/metrics');
    const line = text?.split('\n').find((l) => l.startsWith('vllm:cache_config_info{'));
    if (line === undefined) return {};
    const label = (name: string): number | undefined => {
      const m = new RegExp(`[{,]${name}="(\\d+)"`).exec(line);
      return m ? Number(m[1]) : undefined;
    };
    const blocks = label('num_gpu_blocks');
    const size = label('block_size');
    return { ...(blocks ? { numGpuBlocks: blocks } : {}), ...(size ? { blockSize: size } : {}) };
  }

  /**
   * One streamed completion of exactly `maxTokens` tokens (`ignore_eos`, which vLLM and SGLang
   * honour), timed event by event. Usage comes from the final chunk (`stream_options.include_usage`).
   */
  async complete(prompt: string, maxTokens: number, signal: AbortSignal): Promise<RequestTimeline> {
    const body = JSON.stringify({
      model: this.model,
      prompt,
      max_tokens: maxTokens,
      ignore_eos: true,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const sentMs = performance.now();
    const stream = new EventStream();
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: `${this.apiPath}/completions`,
        headers: this.headers,
        body,
        signal,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '');
        throw new ProbeError(`POST /completions answered ${res.statusCode}: ${text.slice(0, 300)}`);
      }
      for await (const chunk of res.body) stream.push(chunk as Buffer, performance.now());
    } catch (err) {
      // The deadline's abort is the caller's to handle; anything else is the engine's failure.
      if (signal.aborted || err instanceof ProbeError) throw err;
      throw new ProbeError(`POST /completions failed: ${(err as Error).message}`);
    }
    return stream.timeline(sentMs);
  }
}

interface CompletionChunk {
  choices?: { text?: string; finish_reason?: string | null }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number } | null;
  } | null;
}

/** Parses an SSE completion stream as it arrives, keeping when each token event came. */
class EventStream {
  private buffer = '';
  private readonly eventMs: number[] = [];
  private usage: CompletionChunk['usage'] = null;

  push(chunk: Buffer, nowMs: number): void {
    this.buffer += chunk.toString('utf8');
    for (let end = this.buffer.indexOf('\n\n'); end !== -1; end = this.buffer.indexOf('\n\n')) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        let chunk: CompletionChunk;
        try {
          chunk = JSON.parse(data) as CompletionChunk;
        } catch {
          throw new ProbeError(`the stream carried an event that is not JSON: ${data.slice(0, 200)}`);
        }
        this.onData(chunk, nowMs);
      }
    }
  }

  private onData(chunk: CompletionChunk, nowMs: number): void {
    if (chunk.usage) this.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (choice === undefined) return;
    // A token event has text, or is not the closing chunk (an engine may stream a token whose text
    // is still an incomplete character); a closing chunk with no text carries no token.
    if ((choice.text ?? '') !== '' || choice.finish_reason == null) this.eventMs.push(nowMs);
  }

  timeline(sentMs: number): RequestTimeline {
    const u = this.usage;
    if (!u || typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number')
      throw new ProbeError(
        'the stream carried no usage: the engine must honour stream_options.include_usage',
      );
    return {
      sentMs,
      eventMs: this.eventMs,
      promptTokens: u.prompt_tokens,
      cachedTokens: u.prompt_tokens_details?.cached_tokens ?? 0,
      completionTokens: u.completion_tokens,
    };
  }
}
