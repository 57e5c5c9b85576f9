/**
 * The emulated engine alone, over real HTTP with the official client: what a vLLM server would
 * answer, prefix-cache hits visible in usage and in vLLM-compatible /metrics, cold start on /health.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import {
  METRICS_MAPPINGS,
  parsePrometheusText,
  toEndpointMetrics,
} from '../../src/adapters/engines/metrics-mapping.js';
import { getProfile } from '../../src/engine-model/profiles.js';
import { EmulatedEngineServer } from '../../src/emulator/server.js';

describe('emulated engine', () => {
  let server: EmulatedEngineServer;
  let base: string;
  let client: OpenAI;

  before(async () => {
    server = new EmulatedEngineServer({ profile: getProfile('qwen2.5-1.5b-h100'), servedModelName: 'm' });
    base = await server.listen(0);
    client = new OpenAI({ baseURL: base, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => server.close());

  const metrics = async () => {
    const text = await (await fetch(`${base.replace('/v1', '')}/metrics`)).text();
    return { text, values: parsePrometheusText(text, new Set(text.match(/^vllm:[a-z_]+/gm))) };
  };

  it('a repeated long prompt is served from the prefix cache, in usage and in /metrics', async () => {
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(40);
    const before = (await metrics()).values;
    const first = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: long }],
      max_tokens: 2,
    });
    const second = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: `${long} And one more question?` }],
      max_tokens: 2,
    });
    assert.equal(first.usage?.prompt_tokens_details?.cached_tokens, 0);
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    const prompt = first.usage?.prompt_tokens ?? 0;
    // The prompts diverge only in the first one's last few tokens (its partial last block), so every
    // full 16-token block of the first prompt is shared.
    assert.equal(cached, Math.floor(prompt / 16) * 16);
    const after = (await metrics()).values;
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    assert.equal(delta('vllm:prefix_cache_hits_total'), cached);
    assert.equal(delta('vllm:prefix_cache_queries_total'), prompt + (second.usage?.prompt_tokens ?? 0));
    assert.equal(delta('vllm:generation_tokens_total'), 4);
    assert.equal(delta('vllm:request_success_total'), 2);
  });

  it('exposes the gauges the gateway maps for vLLM', async () => {
    const { text } = await metrics();
    const m = toEndpointMetrics(text, METRICS_MAPPINGS.vllm!, 0);
    assert.ok(m !== null);
    assert.equal(m.running, 0);
    assert.equal(m.waiting, 0);
    assert.equal(m.kvUsage, 0);
  });

  it('streams exactly max_tokens content chunks, no faster than the engine steps', async () => {
    const started = performance.now();
    const stream = await client.completions.create({
      model: 'm',
      prompt: 'count',
      max_tokens: 20,
      stream: true,
    });
    let chunks = 0;
    let last = started;
    for await (const c of stream) {
      if (!c.choices[0]?.text) continue;
      chunks++;
      last = performance.now();
    }
    assert.equal(chunks, 20);
    // 20 steps (the prefill that samples token 1, then 19 decodes) of ≈ 2.3 ms each on this profile.
    // The engine keeps to its intended schedule (a late timer is caught up, never run ahead of), so
    // the whole stream takes at least that long; only its spacing may vary with timer jitter.
    assert.ok(last - started >= 20 * 2.2, `20 tokens in ${(last - started).toFixed(1)} ms`);
  });

  it('answers an unknown model with 404 and an over-long request with 400, as vLLM does', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'x' }] }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404,
    );
    await assert.rejects(
      client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 40_000,
      }),
      (e: InstanceType<typeof OpenAI.APIError>) =>
        e.status === 400 && /maximum context length/.test(e.message),
    );
  });

  it('is not healthy during its cold start', async () => {
    const cold = new EmulatedEngineServer({
      profile: { ...getProfile('qwen2.5-1.5b-h100'), coldStartMs: 150 },
      coldStart: true,
    });
    const url = (await cold.listen(0)).replace('/v1', '');
    try {
      assert.equal((await fetch(`${url}/health`)).status, 503);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await fetch(`${url}/health`)).status, 200);
    } finally {
      await cold.close();
    }
  });
});
