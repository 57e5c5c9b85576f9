/** Small pure pieces: circuit breaker, SSE relay, Prometheus parsing, the approximate tokenizer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  METRICS_MAPPINGS,
  parsePrometheusText,
  toEndpointMetrics,
} from '../../src/adapters/engines/metrics-mapping.js';
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { CircuitBreaker } from '../../src/datalayer/circuit-breaker.js';
import { blockHashChain, tokenize } from '../../src/emulator/tokens.js';
import { SseRelay, usageOfJsonBody } from '../../src/gateway/sse.js';

/** A clock that only moves when told (no timers needed here). */
class StillClock implements Clock {
  t = 0;
  now(): number {
    return this.t;
  }
  setTimer(): TimerHandle {
    throw new Error('not used');
  }
  clearTimer(): void {}
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures, lets one half-open probe through after openMs, closes on success', () => {
    const clock = new StillClock();
    const b = new CircuitBreaker(clock, { failureThreshold: 3, openMs: 1000 });
    b.onFailure();
    b.onFailure();
    b.onSuccess(); // resets the run
    b.onFailure();
    b.onFailure();
    assert.equal(b.state(), 'closed');
    b.onFailure();
    assert.equal(b.state(), 'open');
    clock.t = 999;
    assert.equal(b.state(), 'open');
    clock.t = 1000;
    assert.equal(b.state(), 'half-open');
    b.onSend(); // this request is the probe
    assert.equal(b.state(), 'open', 'only one probe at a time');
    b.onSuccess();
    assert.equal(b.state(), 'closed');
  });

  it('a failed probe re-opens for another openMs', () => {
    const clock = new StillClock();
    const b = new CircuitBreaker(clock, { failureThreshold: 1, openMs: 100 });
    b.onFailure();
    clock.t = 150;
    b.onSend();
    b.onFailure();
    assert.equal(b.state(), 'open');
    clock.t = 249;
    assert.equal(b.state(), 'open');
    clock.t = 250;
    assert.equal(b.state(), 'half-open');
  });
});

describe('usageOfJsonBody', () => {
  const usage = (o: unknown) => usageOfJsonBody(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)));

  it('reads the top-level usage of a response without parsing the rest', () => {
    const body = {
      id: 'x',
      choices: [{ message: { content: 'he said "usage": {"prompt_tokens": 99} here' } }],
      usage: {
        prompt_tokens: 12,
        completion_tokens: 3,
        prompt_tokens_details: { cached_tokens: 8 },
        completion_tokens_details: { reasoning_tokens: 2 },
      },
    };
    assert.deepEqual(usage(body), {
      promptTokens: 12,
      completionTokens: 3,
      cachedTokens: 8,
      reasoningTokens: 2,
    });
    assert.deepEqual(usage('{"usage" : { "prompt_tokens": 5, "completion_tokens": 0 }\n}'), {
      promptTokens: 5,
      completionTokens: 0,
      cachedTokens: null,
      reasoningTokens: null,
    });
  });

  it('returns null when there is no usage object, or it is cut off', () => {
    assert.equal(usage({ choices: [] }), null);
    assert.equal(usage({ usage: null }), null);
    assert.equal(usage('{"usage":{"prompt_tokens":5,'), null);
    assert.equal(usage({ choices: [{ text: 'the word "usage" quoted' }] }), null);
  });
});

describe('SseRelay', () => {
  const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
  const usageChunk = ev({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 9 } });

  it('forwards whole events only, across arbitrary chunk splits, and reads usage', () => {
    const text = ev({ choices: [{ delta: { content: 'hé' } }] }) + usageChunk + 'data: [DONE]\n\n';
    const bytes = Buffer.from(text);
    for (const cut of [1, 7, 20, bytes.length - 3]) {
      const r = new SseRelay(false);
      const out = Buffer.concat([r.push(bytes.subarray(0, cut)), r.push(bytes.subarray(cut)), r.flush()]);
      assert.equal(out.toString(), text, `split at ${cut}`);
      assert.deepEqual(r.usage, {
        promptTokens: 5,
        completionTokens: 9,
        cachedTokens: null,
        reasoningTokens: null,
      });
      assert.ok(r.sawDone && r.sawContent);
    }
  });

  it('counts content events (tokens) but not a role-only or finish-only chunk, a usage chunk or [DONE]', () => {
    const r = new SseRelay(false);
    r.push(Buffer.from(ev({ choices: [{ delta: { role: 'assistant', content: '' } }] })));
    assert.equal(r.contentEvents, 0);
    assert.equal(r.sawContent, false, 'a role chunk before the first token is not a token');
    r.push(
      Buffer.from(
        ev({ choices: [{ delta: { content: ' a' } }] }) + ev({ choices: [{ delta: { content: ' b' } }] }),
      ),
    );
    r.push(Buffer.from(ev({ choices: [{ delta: { tool_calls: [{ index: 0 }], content: '' } }] })));
    // The finish reason alone, after the last token (chat: an empty delta; completions: an empty text).
    r.push(Buffer.from(ev({ choices: [{ delta: {}, finish_reason: 'length' }] })));
    r.push(Buffer.from(ev({ choices: [{ text: '', finish_reason: 'length' }] })));
    r.push(Buffer.from(`${usageChunk}data: [DONE]\n\n`));
    assert.equal(r.contentEvents, 3);
    assert.ok(r.sawContent);
  });

  it('strips the usage-only chunk when asked, keeping everything else', () => {
    const content = ev({ choices: [{ delta: { content: 'x' } }] });
    const r = new SseRelay(true);
    const out = r.push(Buffer.from(content + usageChunk + 'data: [DONE]\n\n'));
    assert.equal(out.toString(), `${content}data: [DONE]\n\n`);
    // The usage chunk in the middle of one read, and split across reads: both dropped.
    const r2 = new SseRelay(true);
    const all = Buffer.from(content + usageChunk + content);
    const cut = content.length + 10;
    const twice = Buffer.concat([r2.push(all.subarray(0, cut)), r2.push(all.subarray(cut))]);
    assert.equal(twice.toString(), content + content);
    assert.equal(r.usage?.completionTokens, 9);
  });

  it('holds an incomplete event until its blank line arrives', () => {
    const r = new SseRelay(false);
    assert.equal(r.push(Buffer.from('data: {"choices":[]')).length, 0);
    assert.equal(r.push(Buffer.from('}\n\n')).toString(), 'data: {"choices":[]}\n\n');
    const crlf = new SseRelay(false);
    assert.equal(crlf.push(Buffer.from('data: a\r\n\r\ndata: b')).toString(), 'data: a\r\n\r\n');
    assert.equal(crlf.flush().toString(), 'data: b');
  });
});

describe('engine metrics mapping', () => {
  const page = [
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    'vllm:num_requests_running{engine="0",model_name="m"} 3.0',
    'vllm:num_requests_running{engine="1",model_name="m"} 2.0',
    'vllm:num_requests_waiting{model_name="m"} 7',
    'vllm:kv_cache_usage_perc{model_name="m"} 0.25',
    'vllm:num_requests_waiting_other 100',
  ].join('\n');

  it('sums label sets of the asked names only', () => {
    const m = parsePrometheusText(page, new Set(['vllm:num_requests_running', 'vllm:num_requests_waiting']));
    assert.deepEqual(
      [...m.entries()],
      [
        ['vllm:num_requests_running', 5],
        ['vllm:num_requests_waiting', 7],
      ],
    );
  });

  it('normalises a vLLM page, and refuses a page without the metrics', () => {
    assert.deepEqual(toEndpointMetrics(page, METRICS_MAPPINGS.vllm!, 42), {
      running: 5,
      waiting: 7,
      kvUsage: 0.25,
      scrapedAtMs: 42,
    });
    assert.equal(toEndpointMetrics('up 1\n', METRICS_MAPPINGS.vllm!, 0), null);
  });
});

describe('approximate tokenizer', () => {
  it('is deterministic and gives shared prefixes shared block hashes', () => {
    const a = tokenize('You are a helpful assistant. '.repeat(8) + 'Question one?');
    const b = tokenize('You are a helpful assistant. '.repeat(8) + 'Another, different question!');
    assert.deepEqual(tokenize('same text'), tokenize('same text'));
    const ha = blockHashChain(a, 16);
    const hb = blockHashChain(b, 16);
    assert.ok(ha.length >= 2);
    assert.equal(ha[0], hb[0]);
    const shared = Math.floor(tokenize('You are a helpful assistant. '.repeat(8)).length / 16);
    assert.deepEqual(ha.slice(0, shared), hb.slice(0, shared));
    assert.equal(blockHashChain(a.slice(0, 15), 16).length, 0, 'a partial block has no hash');
  });
});
