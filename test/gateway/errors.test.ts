/**
 * Every error status of the OpenAI surface, through real HTTP: bad input never reaches an upstream,
 * upstream failures map to 502/503/504, and every body has OpenAI's error shape with a stable code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

async function post(origin: string, path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as ErrorBody };
}

const chat = (model: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('errors', () => {
  let t: TestGateway;
  let fake: FakeUpstream;

  before(async () => {
    fake = new FakeUpstream();
    const fakeUrl = await fake.listen();
    t = await startGateway({
      server: { maxBodyBytes: 2048 },
      health: { failureThreshold: 1000 },
      router: { maxAttempts: 1 },
      pools: {
        fake: { endpoints: [{ name: 'fake-0', kind: 'http', url: fakeUrl, timeouts: { firstByteMs: 300 } }] },
        // Port 9 (discard) on loopback: nothing listens, so connections are refused.
        down: { endpoints: [{ name: 'down-0', kind: 'http', url: 'http://127.0.0.1:9/v1' }] },
      },
    });
  });
  after(async () => {
    await t.close();
    await fake.close();
  });

  it('400 for malformed JSON', async () => {
    const r = await post(t.origin, '/v1/chat/completions', '{"model": "fake", "messages": [');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'SWY_ERR_INVALID_JSON');
    assert.equal(r.body.error.type, 'invalid_request_error');
  });

  it('400 naming the field for wrong types and missing fields', async () => {
    const wrong = await post(
      t.origin,
      '/v1/chat/completions',
      JSON.stringify({ model: 'fake', messages: 'hi' }),
    );
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.param, 'messages');
    const missing = await post(t.origin, '/v1/chat/completions', JSON.stringify({ model: 'fake' }));
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.param, 'messages');
    assert.match(missing.body.error.message, /messages: is required/);
    const temp = await post(t.origin, '/v1/chat/completions', chat('fake', { temperature: 'hot' }));
    assert.equal(temp.body.error.param, 'temperature');
    const role = await post(
      t.origin,
      '/v1/chat/completions',
      JSON.stringify({ model: 'fake', messages: [{ role: 'robot', content: 'x' }] }),
    );
    assert.equal(role.body.error.param, 'messages[0].role');
    assert.equal(fake.received.length, 0, 'bad input must never reach an upstream');
  });

  it('400 through the openai client, as BadRequestError', async () => {
    await assert.rejects(
      // @ts-expect-error: deliberately missing messages
      t.client.chat.completions.create({ model: 'fake' }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.status === 400,
    );
  });

  it('404 for an unknown model, as NotFoundError', async () => {
    await assert.rejects(
      t.client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) =>
        e instanceof OpenAI.NotFoundError &&
        (e.error as ErrorBody['error']).code === 'SWY_ERR_MODEL_NOT_FOUND',
    );
    const unknownPath = await fetch(`${t.origin}/v1/nothing`);
    assert.equal(unknownPath.status, 404);
  });

  it('405 with Allow for a wrong method', async () => {
    const r = await fetch(`${t.origin}/v1/chat/completions`);
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'POST');
    assert.equal(((await r.json()) as ErrorBody).error.code, 'SWY_ERR_METHOD_NOT_ALLOWED');
  });

  it('413 for a body over the limit, and the next request still works', async () => {
    const r = await post(t.origin, '/v1/chat/completions', chat('fake', { pad: 'x'.repeat(4096) }));
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'SWY_ERR_BODY_TOO_LARGE');
    const ok = await post(t.origin, '/v1/chat/completions', '{');
    assert.equal(ok.status, 400);
  });

  it('502 when the upstream answers 500', async () => {
    fake.mode = { kind: 'status', status: 500 };
    await assert.rejects(
      t.client.chat.completions.create({ model: 'fake', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 502,
    );
  });

  it('502 when the upstream is down (connection refused)', async () => {
    const r = await post(t.origin, '/v1/chat/completions', chat('down'));
    assert.equal(r.status, 502);
    assert.equal(r.body.error.code, 'SWY_ERR_UPSTREAM_ERROR');
  });

  it('504 when the upstream does not answer in time', async () => {
    fake.mode = { kind: 'hang' };
    const r = await post(t.origin, '/v1/chat/completions', chat('fake'));
    assert.equal(r.status, 504);
    assert.equal(r.body.error.code, 'SWY_ERR_UPSTREAM_TIMEOUT');
  });

  it('passes an upstream 4xx through unchanged (the client erred, not the upstream)', async () => {
    const upstreamError = {
      error: { message: 'context too long', type: 'BadRequestError', param: null, code: null },
    };
    fake.mode = { kind: 'json', status: 400, body: upstreamError };
    const r = await post(t.origin, '/v1/chat/completions', chat('fake'));
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, upstreamError);
  });
});

describe('errors that need their own gateway', () => {
  it('401 for a missing or wrong key when keys are configured', async () => {
    const t = await startGateway(
      {
        auth: { apiKeys: ['sk-good'] },
        pools: { m: { endpoints: [{ name: 'e', kind: 'http', url: 'http://127.0.0.1:9/v1' }] } },
      },
      'sk-bad',
    );
    try {
      await assert.rejects(
        t.client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
        (e: unknown) => e instanceof OpenAI.AuthenticationError,
      );
      const none = await post(t.origin, '/v1/chat/completions', chat('m'));
      assert.equal(none.status, 401);
      assert.equal(none.body.error.code, 'SWY_ERR_UNAUTHORIZED');
      const good = await post(t.origin, '/v1/chat/completions', chat('m'), {
        authorization: 'Bearer sk-good',
      });
      assert.equal(good.status, 502); // authenticated; the upstream is down
      assert.equal((await fetch(`${t.origin}/health`)).status, 200, 'probes need no key');
    } finally {
      await t.close();
    }
  });

  it('503 when every endpoint of the pool is unhealthy, with Retry-After', async () => {
    const t = await startGateway({
      health: { failureThreshold: 1, openMs: 60_000 },
      router: { maxAttempts: 1 },
      pools: { m: { endpoints: [{ name: 'e', kind: 'http', url: 'http://127.0.0.1:9/v1' }] } },
    });
    try {
      assert.equal((await post(t.origin, '/v1/chat/completions', chat('m'))).status, 502); // opens the circuit
      const r = await post(t.origin, '/v1/chat/completions', chat('m'));
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, 'SWY_ERR_NO_HEALTHY_ENDPOINT');
      assert.ok(Number(r.headers.get('retry-after')) > 0);
      assert.equal((await fetch(`${t.origin}/ready`)).status, 503);
    } finally {
      await t.close();
    }
  });

  it('429 with Retry-After when the endpoints are at their concurrency limit and nothing may wait', async () => {
    const fake = new FakeUpstream();
    fake.mode = { kind: 'hang' };
    const url = await fake.listen();
    const t = await startGateway({
      scheduling: { maxQueueLength: 0 },
      pools: { m: { endpoints: [{ name: 'e', kind: 'http', url, maxConcurrency: 1 }] } },
    });
    try {
      const first = fetch(`${t.origin}/v1/chat/completions`, { method: 'POST', body: chat('m') }).catch(
        () => null,
      );
      while (t.gw.current.pools[0]!.engines[0]!.state.inFlight === 0)
        await new Promise((r) => setTimeout(r, 5));
      const r = await post(t.origin, '/v1/chat/completions', chat('m'));
      assert.equal(r.status, 429);
      assert.equal(r.body.error.code, 'SWY_ERR_QUEUE_FULL');
      assert.equal(r.headers.get('x-switchyard-drop-reason'), 'queue_full');
      assert.equal(r.headers.get('retry-after'), '30'); // the wait bound: a place frees within it
      await t.close();
      await first;
    } finally {
      await fake.close();
    }
  });

  it('retries a failed upstream on another endpoint before answering', async () => {
    const bad = new FakeUpstream();
    const good = new FakeUpstream();
    bad.mode = { kind: 'status', status: 503 };
    good.mode = {
      kind: 'json',
      body: {
        id: 'x',
        object: 'chat.completion',
        choices: [],
        usage: { prompt_tokens: 1, completion_tokens: 2 },
      },
    };
    const [badUrl, goodUrl] = [await bad.listen(), await good.listen()];
    const t = await startGateway({
      router: { profile: 'round-robin', maxAttempts: 2 },
      pools: {
        m: {
          endpoints: [
            { name: 'bad', kind: 'http', url: badUrl },
            { name: 'good', kind: 'http', url: goodUrl },
          ],
        },
      },
    });
    try {
      const r = await post(t.origin, '/v1/chat/completions', chat('m'));
      assert.equal(r.status, 200);
      assert.equal(bad.received.length, 1);
      assert.equal(good.received.length, 1);
    } finally {
      await t.close();
      await bad.close();
      await good.close();
    }
  });
});
