/**
 * The OpenAI surface through real HTTP with the official `openai` client, in front of emulated
 * engines (the engine model behind real HTTP servers).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestGateway, emulatedPool, eventually, startGateway } from '../helpers/gateway.js';

describe('OpenAI surface over emulated engines', () => {
  let t: TestGateway;

  before(async () => {
    t = await startGateway({
      pools: {
        'qwen2.5-1.5b-instruct': {
          aliases: ['small'],
          ...emulatedPool('qwen2.5-1.5b-instruct', ['small-0', 'small-1']),
        },
      },
    });
  });
  after(() => t.close());

  it('answers a non-streamed chat completion with usage', async () => {
    const r = await t.client.chat.completions.create({
      model: 'small',
      messages: [{ role: 'user', content: 'Say hello in five words.' }],
      max_tokens: 5,
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'qwen2.5-1.5b-instruct');
    assert.equal(r.choices[0]?.message.role, 'assistant');
    assert.equal(r.choices[0]?.finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, 5);
    assert.ok((r.usage?.prompt_tokens ?? 0) > 5);
    assert.equal(r.choices[0]?.message.content?.trim().split(/\s+/).length, 5);
  });

  it('streams a chat completion chunk by chunk and honours include_usage', async () => {
    const stream = await t.client.chat.completions.create({
      model: 'qwen2.5-1.5b-instruct',
      messages: [{ role: 'user', content: 'Count to ten.' }],
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let chunks = 0;
    let usage: { completion_tokens: number } | null | undefined;
    for await (const c of stream) {
      chunks++;
      content += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.ok(chunks >= 3, `expected several chunks, got ${chunks}`);
    assert.equal(content.trim().split(/\s+/).length, 12);
    assert.equal(usage?.completion_tokens, 12);
  });

  it('hides the usage chunk it injected when the client did not ask, but still meters the tokens', async () => {
    const before = await tokenCounter(t.origin, 'completion');
    const stream = await t.client.chat.completions.create({
      model: 'small',
      messages: [{ role: 'user', content: 'Stream without usage.' }],
      max_tokens: 7,
      stream: true,
    });
    let sawUsage = false;
    for await (const c of stream) if (c.usage) sawUsage = true;
    assert.equal(sawUsage, false);
    assert.equal((await tokenCounter(t.origin, 'completion')) - before, 7);
  });

  it('answers completions, streamed and not', async () => {
    const r = await t.client.completions.create({
      model: 'small',
      prompt: 'Once upon a time',
      max_tokens: 4,
    });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.usage?.completion_tokens, 4);
    const s = await t.client.completions.create({
      model: 'small',
      prompt: 'Once',
      max_tokens: 3,
      stream: true,
    });
    let text = '';
    for await (const c of s) text += c.choices[0]?.text ?? '';
    assert.equal(text.trim().split(/\s+/).length, 3);
  });

  it('passes embeddings through, deterministic per input', async () => {
    const r = await t.client.embeddings.create({ model: 'small', input: ['alpha', 'beta', 'alpha'] });
    assert.equal(r.data.length, 3);
    assert.equal(r.data[0]?.embedding.length, 384);
    assert.deepEqual(r.data[0]?.embedding, r.data[2]?.embedding);
    assert.notDeepEqual(r.data[0]?.embedding, r.data[1]?.embedding);
    const norm = Math.hypot(...(r.data[1]?.embedding ?? []));
    assert.ok(Math.abs(norm - 1) < 1e-6, `unit length (float32 over the wire): ${norm}`);
  });

  it('lists pool names and aliases as models', async () => {
    const ids: string[] = [];
    for await (const m of t.client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['qwen2.5-1.5b-instruct', 'small']);
  });

  it('returns the request id it was given, or a generated one', async () => {
    const given = await fetch(`${t.origin}/v1/models`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(given.headers.get('x-request-id'), 'abc-123');
    const res = await t.client.chat.completions
      .create({ model: 'small', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 })
      .withResponse();
    assert.match(res.response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('spreads load over both endpoints (least outstanding requests)', async () => {
    const base = await Promise.all(['small-0', 'small-1'].map((e) => endpointRequests(t.origin, e)));
    await Promise.all(
      Array.from({ length: 8 }, () =>
        t.client.chat.completions.create({
          model: 'small',
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 200,
        }),
      ),
    );
    const now = await Promise.all(['small-0', 'small-1'].map((e) => endpointRequests(t.origin, e)));
    assert.equal(now[0]! - base[0]!, 4);
    assert.equal(now[1]! - base[1]!, 4);
  });

  it('cancels the upstream request when the client disconnects mid-stream', async () => {
    const engines = ['small-0', 'small-1'].map((n) => t.gw.fleet.get(n)!.model);
    const ac = new AbortController();
    const stream = await t.client.chat.completions.create(
      { model: 'small', messages: [{ role: 'user', content: 'long' }], max_tokens: 5000, stream: true },
      { signal: ac.signal },
    );
    let seen = 0;
    // The official client ends the iteration quietly when its signal aborts.
    for await (const _ of stream) {
      if (++seen === 3) {
        assert.equal(
          engines.reduce((n, e) => n + e.stats().running, 0),
          1,
        );
        ac.abort();
      }
    }
    assert.ok(seen < 100, `the stream stopped after the abort (${seen} chunks)`);
    assert.ok(
      await eventually(() => engines.every((e) => e.stats().running === 0 && e.stats().waiting === 0)),
    );
    assert.ok(await eventually(() => t.gw.inFlight === 0));
  });
});

describe('the engine model correction in the metrics', () => {
  it('exports a factor per pool, endpoint and phase, learnt from streamed requests', async () => {
    const t = await startGateway({
      pools: { m: emulatedPool('m', ['e-0', 'e-1']) },
    });
    try {
      for (let i = 0; i < 6; i++) {
        const stream = await t.client.chat.completions.create({
          model: 'm',
          messages: [{ role: 'user', content: `Request ${i}: ${'words '.repeat(200)}` }],
          max_tokens: 8,
          stream: true,
        });
        for await (const _ of stream);
      }
      const text = await metricsText(t.origin);
      for (const endpoint of ['e-0', 'e-1']) {
        for (const phase of ['prefill', 'decode']) {
          const series = `switchyard_model_correction{model="m",endpoint="${endpoint}",phase="${phase}"}`;
          const m = new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
          assert.ok(m !== null, `${series} missing`);
          const f = Number(m[1]);
          assert.ok(f >= 0.5 && f <= 2, `${series} = ${f}`);
        }
      }
    } finally {
      await t.close();
    }
  });
});

async function metricsText(origin: string): Promise<string> {
  return (await fetch(`${origin}/metrics`)).text();
}

async function tokenCounter(origin: string, direction: string): Promise<number> {
  const re = new RegExp(`^switchyard_tokens_total\\{[^}]*direction="${direction}"[^}]*\\} (\\d+)`, 'gm');
  let sum = 0;
  for (const m of (await metricsText(origin)).matchAll(re)) sum += Number(m[1]);
  return sum;
}

async function endpointRequests(origin: string, endpoint: string): Promise<number> {
  const re = new RegExp(`^switchyard_requests_total\\{[^}]*endpoint="${endpoint}"[^}]*\\} (\\d+)`, 'gm');
  let sum = 0;
  for (const m of (await metricsText(origin)).matchAll(re)) sum += Number(m[1]);
  return sum;
}
