/**
 * Fields the gateway does not understand reach the upstream unchanged; the upstream's answer
 * (tool calls included) reaches the client unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

describe('pass-through', () => {
  let t: TestGateway;
  let fake: FakeUpstream;

  before(async () => {
    fake = new FakeUpstream();
    const url = await fake.listen();
    t = await startGateway({
      pools: {
        'gpt-4o-mini': {
          endpoints: [
            { name: 'cloud', kind: 'http', url, model: 'provider-model-v2', apiKey: 'sk-upstream' },
          ],
        },
      },
    });
  });
  after(async () => {
    await t.close();
    await fake.close();
  });

  it('forwards tools, tool_choice, response_format, logprobs, seed and vendor fields unchanged', async () => {
    const toolCall = {
      id: 'call_1',
      type: 'function' as const,
      function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
    };
    fake.mode = {
      kind: 'json',
      body: {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: 'provider-model-v2',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: null, tool_calls: [toolCall] },
            finish_reason: 'tool_calls',
            logprobs: null,
          },
        ],
        usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
      },
    };
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    const r = await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools,
      tool_choice: 'required',
      response_format: { type: 'json_object' },
      logprobs: true,
      top_logprobs: 2,
      seed: 42,
      // @ts-expect-error: a vendor extension the gateway has never heard of
      repetition_penalty: 1.1,
    });
    assert.deepEqual(r.choices[0]?.message.tool_calls, [toolCall]);
    assert.equal(r.choices[0]?.finish_reason, 'tool_calls');
    const sent = fake.received.at(-1)!;
    assert.equal(sent.model, 'provider-model-v2', 'the upstream model name replaces the client one');
    assert.deepEqual(sent.tools, tools);
    assert.equal(sent.tool_choice, 'required');
    assert.deepEqual(sent.response_format, { type: 'json_object' });
    assert.equal(sent.logprobs, true);
    assert.equal(sent.top_logprobs, 2);
    assert.equal(sent.seed, 42);
    assert.equal(sent.repetition_penalty, 1.1);
    assert.equal(fake.paths.at(-1), '/v1/chat/completions');
  });

  it('relays streamed tool-call deltas and the upstream usage chunk when the client asked for it', async () => {
    const chunk = (delta: unknown, finish: string | null = null) =>
      JSON.stringify({
        id: 'c',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    fake.mode = {
      kind: 'stream',
      delayMs: 2,
      events: [
        chunk({
          role: 'assistant',
          tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'f', arguments: '' } }],
        }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
        chunk({}, 'tool_calls'),
        JSON.stringify({
          id: 'c',
          object: 'chat.completion.chunk',
          created: 1,
          model: 'm',
          choices: [],
          usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
        }),
        '[DONE]',
      ],
    };
    const stream = await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let args = '';
    let usage: unknown = null;
    for await (const c of stream) {
      args += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(args, '{"a":1}');
    assert.deepEqual(usage, { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
    assert.deepEqual(fake.received.at(-1)!.stream_options, { include_usage: true });
  });

  it('sends the endpoint key upstream, never the client key', async () => {
    fake.mode = { kind: 'json', body: { id: 'x', object: 'chat.completion', choices: [] } };
    await fetch(`${t.origin}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer client-secret', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    });
    const h = fake.headers.at(-1)!;
    assert.equal(h.authorization, 'Bearer sk-upstream');
    assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/);
  });
});
