/**
 * Model tiers through real HTTP with the official `openai` client: a local pool of emulated engines,
 * a "cloud" pool played by a fake upstream (it records every request it gets, so a leak would show),
 * and a local pool whose only endpoint is a closed port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { type TestGateway, emulatedPool, startGateway } from '../helpers/gateway.js';

const CLOUD_ANSWER = {
  id: 'chatcmpl-cloud',
  object: 'chat.completion',
  created: 0,
  model: 'cloud',
  choices: [{ index: 0, message: { role: 'assistant', content: '{"city":"Paris"}' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
};

const PII_PROMPT = 'Please update the billing email to jane.doe@example.com.';
const LONG_PROMPT = `Summarise this report. ${'The quarterly numbers were steady across regions. '.repeat(12)}`;

/** The sum of a Prometheus metric's series that carry all of `labels` (0 when none). */
async function metric(origin: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const have = line.slice(name.length + 1, line.indexOf('}')).split(',');
    if (want.every((w) => have.includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('model tiers, live', () => {
  let t: TestGateway;
  let cloud: FakeUpstream;

  before(async () => {
    cloud = new FakeUpstream();
    cloud.mode = { kind: 'json', body: CLOUD_ANSWER };
    const cloudUrl = await cloud.listen();
    t = await startGateway({
      router: { maxAttempts: 1 },
      pools: {
        edge: { local: true, aliases: ['small'], ...emulatedPool('edge', ['edge-0']) },
        cloud: { aliases: ['large'], endpoints: [{ name: 'cloud-0', kind: 'http', url: cloudUrl }] },
        // Port 9 (discard) on loopback: nothing listens, so every connection is refused.
        down: { local: true, endpoints: [{ name: 'down-0', kind: 'http', url: 'http://127.0.0.1:9/v1' }] },
      },
      tiers: {
        auto: {
          rules: [
            { name: 'private', when: { pii: true }, pool: 'small', localOnly: true },
            { name: 'short', when: { promptTokensBelow: 64 }, pool: 'small' },
          ],
          default: 'large',
          fallback: { small: ['large'] },
        },
        guarded: {
          rules: [{ name: 'private', when: { pii: true }, pool: 'down', localOnly: true }],
          default: 'down',
          fallback: { down: ['cloud'] },
        },
        json: {
          default: 'small',
          cascade: { from: 'small', to: 'large', checks: ['empty', 'refusal', 'invalid-json'] },
        },
        fragile: { default: 'small', cascade: { from: 'small', to: 'down' } },
      },
    });
  });
  after(async () => {
    await t.close();
    await cloud.close();
  });

  const ask = (model: string, content: string, headers: Record<string, string> = {}) =>
    t.client.chat.completions
      .create({ model, messages: [{ role: 'user', content }], max_tokens: 8 }, { headers })
      .withResponse();

  it('a short prompt goes to the small tier and a long one to the large tier', async () => {
    const short = await ask('auto', 'What is 2 + 2?');
    assert.equal(short.response.headers.get('x-switchyard-pool'), 'edge');
    assert.equal(short.response.headers.get('x-switchyard-endpoint'), 'edge-0');
    assert.equal(short.response.headers.get('x-switchyard-tier-rule'), 'short');
    assert.equal(short.data.usage?.completion_tokens, 8, 'the emulated engine answered');

    const long = await ask('auto', LONG_PROMPT);
    assert.equal(long.response.headers.get('x-switchyard-pool'), 'cloud');
    assert.equal(long.response.headers.get('x-switchyard-endpoint'), 'cloud-0');
    assert.equal(long.response.headers.get('x-switchyard-tier-rule'), 'default');
    assert.equal(long.data.id, 'chatcmpl-cloud');

    const hinted = await ask('auto', 'What is 2 + 2?', { 'x-switchyard-tier': 'large' });
    assert.equal(hinted.response.headers.get('x-switchyard-pool'), 'cloud');
    assert.equal(hinted.response.headers.get('x-switchyard-tier-rule'), 'header');
    assert.equal(
      await metric(t.origin, 'switchyard_tier_decisions_total', { alias: 'auto', rule: 'short' }),
      1,
    );
  });

  it('a PII-bearing prompt reaches the local pool only, even when asked for the large tier', async () => {
    const before = cloud.received.length;
    const servedBefore = await metric(t.origin, 'switchyard_requests_total', {
      endpoint: 'edge-0',
      status: '200',
    });
    const hints: Record<string, string>[] = [{}, { 'x-switchyard-tier': 'large' }];
    for (const headers of hints) {
      const r = await ask('auto', `${PII_PROMPT} ${LONG_PROMPT}`, headers);
      assert.equal(r.response.headers.get('x-switchyard-pool'), 'edge');
      assert.equal(r.response.headers.get('x-switchyard-endpoint'), 'edge-0');
      assert.equal(r.response.headers.get('x-switchyard-tier-rule'), 'private');
    }
    assert.equal(cloud.received.length, before, 'the cloud upstream never saw the prompt');
    const served = await metric(t.origin, 'switchyard_requests_total', { endpoint: 'edge-0', status: '200' });
    assert.equal(served - servedBefore, 2);
  });

  it('when the local pool fails, a PII-bearing prompt errors instead of leaking', async () => {
    const before = cloud.received.length;
    const err = await t.client.chat.completions
      .create({ model: 'guarded', messages: [{ role: 'user', content: PII_PROMPT }] })
      .then(
        () => null,
        (e: unknown) => e,
      );
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, 503);
    assert.equal((err.error as { code: string }).code, 'SWY_ERR_LOCAL_POOLS_UNAVAILABLE');
    assert.match(err.message, /rule "private" keeps this request on local pools \(down\)/);
    assert.equal(err.headers?.get('x-switchyard-pool'), 'down');
    assert.equal(cloud.received.length, before, 'the cloud upstream never saw the prompt');
  });

  it('a fallback chain recovers from a failed pool', async () => {
    const before = cloud.received.length;
    const failuresBefore = await metric(t.origin, 'switchyard_tier_pool_failures_total', {
      alias: 'guarded',
      pool: 'down',
    });
    const r = await ask('guarded', 'Nothing private here.');
    assert.equal(r.response.status, 200);
    assert.equal(r.response.headers.get('x-switchyard-pool'), 'cloud');
    assert.equal(r.response.headers.get('x-switchyard-endpoint'), 'cloud-0');
    assert.equal(r.response.headers.get('x-switchyard-tier-rule'), 'default');
    assert.equal(r.data.id, 'chatcmpl-cloud');
    assert.equal(cloud.received.length, before + 1);
    assert.equal(
      (cloud.received.at(-1) as { model: string }).model,
      'cloud',
      'the upstream model is the pool’s',
    );
    const failures = await metric(t.origin, 'switchyard_tier_pool_failures_total', {
      alias: 'guarded',
      pool: 'down',
    });
    assert.equal(failures - failuresBefore, 1);
  });

  it('a cascade escalates an invalid-JSON answer and returns the large tier’s answer', async () => {
    const requestsBefore = await metric(t.origin, 'switchyard_requests_total', {
      model: 'cloud',
      status: '200',
    });
    const edgeRequestsBefore = await metric(t.origin, 'switchyard_requests_total', { endpoint: 'edge-0' });
    const edgeTokensBefore = await metric(t.origin, 'switchyard_tokens_total', {
      endpoint: 'edge-0',
      direction: 'completion',
    });
    const r = await t.client.chat.completions
      .create({
        model: 'json',
        messages: [{ role: 'user', content: 'Which city is the capital of France? Answer in JSON.' }],
        response_format: { type: 'json_object' },
        max_tokens: 6,
      })
      .withResponse();
    assert.equal(r.response.headers.get('x-switchyard-cascade'), 'escalated:invalid-json');
    assert.equal(r.response.headers.get('x-switchyard-pool'), 'cloud');
    assert.equal(r.response.headers.get('x-switchyard-endpoint'), 'cloud-0');
    assert.deepEqual(JSON.parse(r.data.choices[0]!.message.content!), { city: 'Paris' });
    assert.equal(r.data.usage?.completion_tokens, 7, 'the client sees the large tier’s usage');

    // One client request, counted once; the small tier's discarded tokens are counted on its endpoint.
    const requests = await metric(t.origin, 'switchyard_requests_total', { model: 'cloud', status: '200' });
    assert.equal(requests - requestsBefore, 1);
    assert.equal(
      await metric(t.origin, 'switchyard_requests_total', { endpoint: 'edge-0' }),
      edgeRequestsBefore,
    );
    const edgeTokens = await metric(t.origin, 'switchyard_tokens_total', {
      endpoint: 'edge-0',
      direction: 'completion',
    });
    assert.equal(edgeTokens - edgeTokensBefore, 6);
    assert.equal(
      await metric(t.origin, 'switchyard_cascade_escalations_total', {
        alias: 'json',
        check: 'invalid-json',
      }),
      1,
    );
  });

  it('when the larger pool fails, a cascade sends the small answer after all, counted once', async () => {
    const requestsBefore = await metric(t.origin, 'switchyard_requests_total', { endpoint: 'edge-0' });
    const tokensBefore = await metric(t.origin, 'switchyard_tokens_total', {
      endpoint: 'edge-0',
      direction: 'completion',
    });
    const r = await t.client.chat.completions
      .create({
        model: 'fragile',
        messages: [{ role: 'user', content: 'Answer in JSON.' }],
        response_format: { type: 'json_object' },
        max_tokens: 5,
      })
      .withResponse();
    assert.equal(r.response.headers.get('x-switchyard-cascade'), 'escalation-failed:invalid-json');
    assert.equal(r.response.headers.get('x-switchyard-pool'), 'edge');
    assert.equal(r.response.headers.get('x-switchyard-endpoint'), 'edge-0');
    assert.equal(r.data.usage?.completion_tokens, 5);
    const requests = await metric(t.origin, 'switchyard_requests_total', { endpoint: 'edge-0' });
    assert.equal(requests - requestsBefore, 1);
    const tokens = await metric(t.origin, 'switchyard_tokens_total', {
      endpoint: 'edge-0',
      direction: 'completion',
    });
    assert.equal(tokens - tokensBefore, 5);
  });

  it('a cascade keeps a small answer that passes its checks, and never holds a stream', async () => {
    const plain = await ask('json', 'Say something.');
    assert.equal(plain.response.headers.get('x-switchyard-pool'), 'edge');
    assert.equal(plain.response.headers.get('x-switchyard-cascade'), null);
    assert.equal(plain.data.usage?.completion_tokens, 8);

    const { data: stream, response } = await t.client.chat.completions
      .create({
        model: 'json',
        messages: [{ role: 'user', content: 'JSON please.' }],
        response_format: { type: 'json_object' },
        max_tokens: 4,
        stream: true,
      })
      .withResponse();
    let chunks = 0;
    for await (const _ of stream) chunks++;
    assert.ok(chunks >= 4);
    assert.equal(response.headers.get('x-switchyard-pool'), 'edge');
    assert.equal(response.headers.get('x-switchyard-cascade'), null);
  });

  it('plain pool requests carry the pool and endpoint headers too, and /v1/models lists the aliases', async () => {
    const r = await ask('small', 'Hello');
    assert.equal(r.response.headers.get('x-switchyard-pool'), 'edge');
    assert.equal(r.response.headers.get('x-switchyard-endpoint'), 'edge-0');
    assert.equal(r.response.headers.get('x-switchyard-tier-rule'), null);
    const ids = (await t.client.models.list()).data.map((m) => m.id);
    for (const alias of ['auto', 'guarded', 'json', 'fragile']) assert.ok(ids.includes(alias), alias);
  });
});

describe('model tiers, saturation', () => {
  it('a saturated pool falls back to the next one', async () => {
    const hang = new FakeUpstream();
    hang.mode = { kind: 'hang' };
    const url = await hang.listen();
    const t = await startGateway({
      pools: {
        busy: { endpoints: [{ name: 'busy-0', kind: 'http', url, maxConcurrency: 1 }] },
        edge: emulatedPool('edge', ['edge-0']),
      },
      tiers: { auto: { default: 'busy', fallback: { busy: ['edge'] } } },
    });
    try {
      const stuck = fetch(`${t.origin}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'busy', messages: [{ role: 'user', content: 'x' }] }),
      }).catch(() => null);
      while (t.gw.current.byModel.get('busy')!.engines[0]!.state.inFlight === 0)
        await new Promise((r) => setTimeout(r, 5));
      const r = await t.client.chat.completions
        .create({ model: 'auto', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })
        .withResponse();
      assert.equal(r.response.headers.get('x-switchyard-pool'), 'edge');
      assert.equal(r.data.usage?.completion_tokens, 2);
      assert.equal(hang.received.length, 1, 'the saturated endpoint got no second request');
      await hang.close(); // releases the stuck request
      await stuck;
    } finally {
      await t.close();
      await hang.close();
    }
  });
});
