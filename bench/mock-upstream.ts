/**
 * @module bench/mock-upstream
 * A fast mock OpenAI upstream for the overhead bench, run as its own process (fork with IPC) so
 * it never shares an event loop with the gateway. Plain node:http; every body is precomputed.
 *
 *   POST /v1/chat/completions                  chat.completion JSON
 *   POST /v1/chat/completions "stream":true    N SSE chunks + `data: [DONE]`; a usage-only chunk
 *                                              first when `"include_usage":true` (what the gateway
 *                                              injects for metering; it hides it from the client)
 *   GET  /v1/models, GET /health
 *
 * Per-request knobs travel in the JSON body (the gateway forwards unknown fields unchanged):
 * `"mock_chunks":N` and `"mock_chunk_delay_ms":MS` (0 = all chunks back to back, one write each);
 * `"mock_prompt_tokens":N`, the `prompt_tokens` a non-streamed answer reports (default 12), so that a
 * bench of token limits can give prompts a known upstream count. They are read with regular expressions on the raw body, not JSON.parse, to keep the mock cheap.
 * Env: MOCK_HOST (127.0.0.1), MOCK_PORT (0 = any), MOCK_STREAM_CHUNKS (100), MOCK_MODEL (mock-gpt).
 * Sends `{type:'ready', port}` to its parent once listening; exits on SIGTERM or `{type:'stop'}`.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const HOST = process.env.MOCK_HOST ?? '127.0.0.1';
const PORT = Number(process.env.MOCK_PORT ?? 0);
const DEFAULT_CHUNKS = Math.max(1, Number(process.env.MOCK_STREAM_CHUNKS ?? 100));
const MAX_CHUNKS = 10_000;
const MODEL = process.env.MOCK_MODEL ?? 'mock-gpt';
const CREATED = Math.floor(Date.now() / 1000);
const ID = 'chatcmpl-mock0000000000000000000000';

const completion = Buffer.from(
  JSON.stringify({
    id: ID,
    object: 'chat.completion',
    created: CREATED,
    model: MODEL,
    system_fingerprint: 'fp_mock',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'Hello! This is a mock completion.', refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
  }),
);
const models = Buffer.from(
  JSON.stringify({
    object: 'list',
    data: [{ id: MODEL, object: 'model', created: CREATED, owned_by: 'mock' }],
  }),
);

function sse(obj: unknown): Buffer {
  return Buffer.from(`data: ${JSON.stringify(obj)}\n\n`);
}
function chunk(delta: Record<string, unknown>, finish: string | null): Buffer {
  const choices = [{ index: 0, delta, logprobs: null, finish_reason: finish }];
  return sse({ id: ID, object: 'chat.completion.chunk', created: CREATED, model: MODEL, choices });
}
const FIRST = chunk({ role: 'assistant', content: '' }, null);
const LAST = chunk({}, 'stop');
const TOKENS = Array.from({ length: 10 }, (_, i) => chunk({ content: `tok${i} ` }, null));
const USAGE = sse({
  id: ID,
  object: 'chat.completion.chunk',
  created: CREATED,
  model: MODEL,
  choices: [],
  usage: { prompt_tokens: 12, completion_tokens: 100, total_tokens: 112 },
});
const DONE = Buffer.from('data: [DONE]\n\n');

/** Chunk i of n: the role first, the finish reason last, one token in between. */
function streamChunk(i: number, n: number): Buffer {
  if (i === n - 1) return LAST;
  if (i === 0) return FIRST;
  return TOKENS[i % 10]!;
}

const JSON_HEADERS = ['content-type', 'application/json', 'content-length', String(completion.length)];
const MODELS_HEADERS = ['content-type', 'application/json', 'content-length', String(models.length)];
const SSE_HEADERS = ['content-type', 'text/event-stream', 'cache-control', 'no-cache'];
const STREAM_RE = /"stream"\s*:\s*true/;
const USAGE_RE = /"include_usage"\s*:\s*true/;
const CHUNKS_RE = /"mock_chunks"\s*:\s*(\d+)/;
const DELAY_RE = /"mock_chunk_delay_ms"\s*:\s*(\d+)/;
const PROMPT_TOKENS_RE = /"mock_prompt_tokens"\s*:\s*(\d+)/;

/** Non-streamed answers reporting `mock_prompt_tokens`, built once per count. */
const completionsByPrompt = new Map<number, { body: Buffer; headers: string[] }>();
function completionFor(promptTokens: number): { body: Buffer; headers: string[] } {
  let c = completionsByPrompt.get(promptTokens);
  if (c === undefined) {
    const parsed = JSON.parse(completion.toString('utf8')) as { usage: Record<string, number> };
    parsed.usage = {
      prompt_tokens: promptTokens,
      completion_tokens: 8,
      total_tokens: promptTokens + 8,
    };
    const body = Buffer.from(JSON.stringify(parsed));
    c = { body, headers: ['content-type', 'application/json', 'content-length', String(body.length)] };
    if (completionsByPrompt.size < 1000) completionsByPrompt.set(promptTokens, c);
  }
  return c;
}

function sendStream(res: ServerResponse, body: string): void {
  const n = Math.min(MAX_CHUNKS, Math.max(1, Number(CHUNKS_RE.exec(body)?.[1] ?? DEFAULT_CHUNKS)));
  const delayMs = Number(DELAY_RE.exec(body)?.[1] ?? 0);
  const usage = USAGE_RE.test(body);
  res.writeHead(200, SSE_HEADERS);
  if (delayMs === 0) {
    for (let i = 0; i < n; i++) res.write(streamChunk(i, n));
    if (usage) res.write(USAGE);
    res.end(DONE);
    return;
  }
  let i = 0;
  let timer: NodeJS.Timeout | null = null;
  const next = (): void => {
    if (res.destroyed) return;
    if (i < n) {
      res.write(streamChunk(i++, n));
      timer = setTimeout(next, delayMs);
      return;
    }
    if (usage) res.write(USAGE);
    res.end(DONE);
  };
  res.on('close', () => {
    if (timer !== null) clearTimeout(timer);
  });
  next();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url;
  if (req.method === 'POST' && (url === '/v1/chat/completions' || url === '/chat/completions')) {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      if (STREAM_RE.test(body)) sendStream(res, body);
      else {
        const prompt = PROMPT_TOKENS_RE.exec(body);
        const c = prompt === null ? null : completionFor(Number(prompt[1]));
        res.writeHead(200, c === null ? JSON_HEADERS : c.headers);
        res.end(c === null ? completion : c.body);
      }
    });
    return;
  }
  req.resume();
  if (req.method === 'GET' && (url === '/v1/models' || url === '/models')) {
    res.writeHead(200, MODELS_HEADERS);
    res.end(models);
    return;
  }
  if (url === '/health') {
    res.writeHead(200, ['content-length', '2']);
    res.end('ok');
    return;
  }
  const b = '{"error":{"message":"not found","type":"invalid_request_error"}}';
  res.writeHead(404, ['content-type', 'application/json', 'content-length', String(b.length)]);
  res.end(b);
}

const server = createServer({ keepAliveTimeout: 120_000, noDelay: true }, handle);
server.headersTimeout = 125_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
// A deep accept backlog: the memory run opens ~1,000 upstream connections at once.
server.listen({ port: PORT, host: HOST, backlog: 4096 }, () => {
  const port = (server.address() as AddressInfo).port;
  if (process.send) process.send({ type: 'ready', port, pid: process.pid });
  else process.stdout.write(`mock-upstream listening on http://${HOST}:${port}/v1 pid=${process.pid}\n`);
});

function stop(): void {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stop') stop();
});
process.on('disconnect', stop);
