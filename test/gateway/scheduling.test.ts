/**
 * The admission queue through real HTTP and the official openai client: bounded floods, priority
 * order, wait timeouts, no usable endpoint, clients that leave while waiting, bad priority headers,
 * tier chains and reloads. A fake upstream holds every answer until the test releases it, so which
 * request runs when is decided by the test, never by timing.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, describe, it } from 'node:test';
import OpenAI from 'openai';
import { validateConfig } from '../../src/config/load.js';
import type { GatewayDriver } from '../../src/gateway/admission.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { type TestGateway, eventually, startGateway } from '../helpers/gateway.js';

const ANSWER = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
};

interface Held {
  fake: FakeUpstream;
  t: TestGateway;
  /** The pool's admission queue in the current runtime. */
  queue(pool?: string): GatewayDriver;
  /** Endpoint in-flight count as the gateway sees it. */
  inFlight(pool?: string): number;
  close(): Promise<void>;
}

/** A gateway whose pools each have one endpoint on a fake upstream that holds its answers. */
async function heldGateway(
  pools: Record<string, Record<string, unknown>>,
  extra: Record<string, unknown> = {},
): Promise<Held> {
  const fake = new FakeUpstream();
  fake.mode = { kind: 'held', body: ANSWER };
  const url = await fake.listen();
  const t = await startGateway({
    ...extra,
    pools: Object.fromEntries(
      Object.entries(pools).map(([name, p]) => {
        const { maxConcurrency = 1, ...rest } = p;
        return [name, { ...rest, endpoints: [{ name: `${name}-0`, kind: 'http', url, maxConcurrency }] }];
      }),
    ),
  });
  const pool = (name: string) => t.gw.current.byModel.get(name)!;
  return {
    fake,
    t,
    queue: (name = 'm') => pool(name).driver,
    inFlight: (name = 'm') => pool(name).engines[0]!.state.inFlight,
    close: async () => {
      fake.release();
      await t.close();
      await fake.close();
    },
  };
}

/** A chat request whose only message is `text` (the upstream's record of it tells requests apart). */
function ask(t: TestGateway, text: string, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return t.client.chat.completions.create(
    { model: 'm', messages: [{ role: 'user', content: text }], max_tokens: 2 },
    { headers, ...(signal ? { signal } : {}) },
  );
}

/** The user message of each request the upstream received, in arrival order. */
function seen(fake: FakeUpstream): string[] {
  return fake.received.map((b) => (b.messages as { content: string }[])[0]!.content);
}

/** The value of one series in the gateway's /metrics page (0 when absent). */
async function metric(t: TestGateway, series: string): Promise<number> {
  const text = await (await fetch(`${t.origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** The gateway is idle again: nothing waiting, in flight, or left in the router's ledger. */
function assertIdle(h: Held, pool = 'm'): void {
  const p = h.t.gw.current.byModel.get(pool)!;
  assert.equal(p.driver.waiting, 0);
  assert.equal(p.engines[0]!.state.inFlight, 0);
  assert.equal(p.router.outstanding, 0);
  assert.equal(h.t.gw.inFlight, 0);
}

/** Waits until `cond` holds; fails the test after 20 s (a loaded machine is slow, never wrong). */
async function until(cond: () => boolean): Promise<void> {
  assert.ok(await eventually(cond, 20_000), `still not so after 20 s: ${cond}`);
}

function isRateLimited(code: string) {
  return (e: unknown): boolean =>
    e instanceof OpenAI.RateLimitError && (e.error as { code?: string }).code === code;
}

describe('scheduling: a flood beyond the queue bound', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let h: Held;
  after(() => h?.close());

  /**
   * `n` requests at once with 32 KiB prompts on 2 slots and 8 queue places: the first 10 are
   * accepted, every other one is refused with 429 + Retry-After; then the upstream answers and
   * every accepted request completes.
   */
  async function flood(n: number): Promise<{ ok: number; refused: number; maxWaiting: number }> {
    const pad = 'x'.repeat(32 * 1024);
    let refused = 0;
    const all = Array.from({ length: n }, (_, i) =>
      ask(h.t, `${i} ${pad}`).then(
        (r) => r.usage?.completion_tokens,
        (e: unknown) => {
          assert.ok(isRateLimited('SWY_ERR_QUEUE_FULL')(e), String(e));
          const headers = (e as InstanceType<typeof OpenAI.RateLimitError>).headers;
          assert.equal(headers?.get('retry-after'), '30');
          assert.equal(headers?.get('x-switchyard-drop-reason'), 'queue_full');
          refused++;
          return 'refused' as const;
        },
      ),
    );
    await until(() => refused === n - 10);
    const maxWaiting = h.queue().waiting;
    assert.equal(await metric(h.t, 'switchyard_queue_length{model="m",class="normal"}'), 8);
    assert.equal(h.inFlight(), 2);
    h.fake.mode = { kind: 'json', body: ANSWER }; // the rest are answered as they arrive
    h.fake.release();
    const results = await Promise.all(all);
    // The fake keeps what it received; only the gateway's memory is under test.
    for (const log of [h.fake.received, h.fake.paths, h.fake.headers]) log.length = 0;
    return { ok: results.filter((r) => r === 2).length, refused, maxWaiting };
  }

  it('refuses the excess with 429 and Retry-After, loses nothing accepted, and keeps memory bounded', async () => {
    h = await heldGateway({ m: { maxConcurrency: 2 } }, { scheduling: { maxQueueLength: 8 } });
    assert.deepEqual(await flood(200), { ok: 10, refused: 190, maxWaiting: 8 });
    assertIdle(h);
    gc();
    const baseline = process.memoryUsage().heapUsed;
    for (let round = 0; round < 3; round++) {
      h.fake.mode = { kind: 'held', body: ANSWER };
      assert.deepEqual(await flood(200), { ok: 10, refused: 190, maxWaiting: 8 });
    }
    assertIdle(h);
    gc();
    // 570 refused requests carried 18 MiB of prompts; a queue or map that kept them would show here.
    const grownMiB = (process.memoryUsage().heapUsed - baseline) / 2 ** 20;
    assert.ok(grownMiB < 6, `heap grew ${grownMiB.toFixed(1)} MiB over three floods`);
    assert.equal(await metric(h.t, 'switchyard_queue_drops_total{model="m",reason="queue_full"}'), 760);
    assert.equal(await metric(h.t, 'switchyard_queue_length{model="m",class="normal"}'), 0);
  });
});

describe('scheduling: order, bounds and departures', () => {
  it('starts the most urgent waiting request when a slot frees: high, then low, then batch', async () => {
    const h = await heldGateway({ m: {} }, { scheduling: { queue: 'priority' } });
    try {
      const first = ask(h.t, 'first');
      await until(() => h.fake.held === 1);
      const batch = ask(h.t, 'batch', { 'x-switchyard-priority': 'batch' });
      await until(() => h.queue().waiting === 1);
      const low = ask(h.t, 'low', { 'x-switchyard-priority': 'low' });
      await until(() => h.queue().waiting === 2);
      const high = ask(h.t, 'high', { 'x-switchyard-priority': 'high' });
      await until(() => h.queue().waiting === 3);
      assert.deepEqual(h.queue().waitingByClass(), { high: 1, normal: 0, low: 1, batch: 1 });
      for (const expected of [
        ['first', 'high'],
        ['first', 'high', 'low'],
        ['first', 'high', 'low', 'batch'],
      ]) {
        h.fake.release(1);
        await until(() => h.fake.received.length === expected.length && h.fake.held === 1);
        assert.deepEqual(seen(h.fake), expected);
      }
      h.fake.release(1);
      for (const r of await Promise.all([first, batch, low, high]))
        assert.equal(r.usage?.completion_tokens, 2);
      assertIdle(h);
      // The one that started at once waited less than the batch request, which waited through three
      // releases (a wall-clock bound would fail on a loaded machine); each class was observed once.
      const waited = async (c: string) => ({
        count: await metric(h.t, `switchyard_queue_wait_seconds_count{model="m",class="${c}"}`),
        sum: await metric(h.t, `switchyard_queue_wait_seconds_sum{model="m",class="${c}"}`),
      });
      const [normal, urgent, batchWait] = [
        await waited('normal'),
        await waited('high'),
        await waited('batch'),
      ];
      assert.deepEqual([normal.count, urgent.count, batchWait.count], [1, 1, 1]);
      assert.ok(normal.sum < batchWait.sum, `first waited ${normal.sum} s, batch ${batchWait.sum} s`);
      assert.ok(urgent.sum < batchWait.sum, `high waited ${urgent.sum} s, batch ${batchWait.sum} s`);
    } finally {
      await h.close();
    }
  });

  it('a request that waits past maxWaitMs gets 429 SWY_ERR_QUEUE_TIMEOUT with Retry-After', async () => {
    const h = await heldGateway({ m: {} }, { scheduling: { maxWaitMs: 50 } });
    try {
      const first = ask(h.t, 'first');
      await until(() => h.fake.held === 1);
      const r = await fetch(`${h.t.origin}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'late' }] }),
      });
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal(r.headers.get('x-switchyard-drop-reason'), 'wait_timeout');
      const body = (await r.json()) as { error: { code: string; type: string; message: string } };
      assert.equal(body.error.code, 'SWY_ERR_QUEUE_TIMEOUT');
      assert.equal(body.error.type, 'rate_limit_error');
      assert.match(body.error.message, /pool "m" is saturated and it waited in the queue past its limit/);
      h.fake.release();
      assert.equal((await first).usage?.completion_tokens, 2);
      assert.deepEqual(seen(h.fake), ['first'], 'the timed-out request never reached the upstream');
      assertIdle(h);
      assert.equal(await metric(h.t, 'switchyard_queue_drops_total{model="m",reason="wait_timeout"}'), 1);
    } finally {
      await h.close();
    }
  });

  it('503 when the pool has no usable endpoint: for the request waiting, and for a new one', async () => {
    const h = await heldGateway({ m: {} });
    try {
      const first = ask(h.t, 'first');
      await until(() => h.fake.held === 1);
      const waiting = ask(h.t, 'waiting').catch((e: unknown) => e);
      await until(() => h.queue().waiting === 1);
      // What a failed health round does: the endpoint is marked down and the queues are pumped.
      h.t.gw.current.byModel.get('m')!.engines[0]!.state.healthy = false;
      h.t.gw.current.pumpQueues();
      const e = await waiting;
      assert.ok(e instanceof OpenAI.APIError && e.status === 503, String(e));
      assert.equal((e.error as { code: string }).code, 'SWY_ERR_NO_HEALTHY_ENDPOINT');
      assert.equal(e.headers?.get('retry-after'), '5');
      await assert.rejects(ask(h.t, 'new'), (x: unknown) => x instanceof OpenAI.APIError && x.status === 503);
      h.fake.release();
      assert.equal((await first).usage?.completion_tokens, 2);
      assertIdle(h);
    } finally {
      await h.close();
    }
  });

  it('a client that leaves while waiting is removed and counted once; no slot is released twice', async () => {
    const h = await heldGateway({ m: {} });
    try {
      const first = ask(h.t, 'first');
      await until(() => h.fake.held === 1);
      const abort = new AbortController();
      const gone = ask(h.t, 'gone', {}, abort.signal).catch((e: unknown) => e);
      await until(() => h.queue().waiting === 1);
      abort.abort();
      assert.ok((await gone) instanceof OpenAI.APIUserAbortError);
      await until(() => h.queue().waiting === 0 && h.t.gw.inFlight === 1);
      assert.equal(h.inFlight(), 1);
      h.fake.release();
      assert.equal((await first).usage?.completion_tokens, 2);
      const next = ask(h.t, 'next');
      await until(() => h.fake.held === 1);
      h.fake.release();
      assert.equal((await next).usage?.completion_tokens, 2);
      assertIdle(h);
      assert.deepEqual(seen(h.fake), ['first', 'next']);
      assert.equal(await metric(h.t, 'switchyard_requests_total{model="m",endpoint="none",status="499"}'), 1);
      assert.equal(await metric(h.t, 'switchyard_queue_drops_total{model="m",reason="cancelled"}'), 1);
      assert.equal(await metric(h.t, 'switchyard_requests_total{model="m",endpoint="m-0",status="200"}'), 2);
    } finally {
      await h.close();
    }
  });

  it('400 naming the header and its values for an unknown priority; nothing reaches the upstream', async () => {
    const h = await heldGateway({ m: {} });
    try {
      await assert.rejects(ask(h.t, 'x', { 'x-switchyard-priority': 'urgent' }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        const err = e.error as { code: string; param: string; message: string };
        assert.equal(err.code, 'SWY_ERR_INVALID_REQUEST');
        assert.equal(err.param, 'x-switchyard-priority');
        assert.equal(
          err.message,
          'header x-switchyard-priority must be one of high, normal, low, batch; got "urgent"',
        );
        return true;
      });
      assert.equal(h.fake.received.length, 0);
    } finally {
      await h.close();
    }
  });

  it('requests that share a client x-request-id wait and start independently', async () => {
    const h = await heldGateway({ m: {} });
    try {
      const same = { 'x-request-id': 'dup-1' };
      const rs = [ask(h.t, 'a', same)];
      await until(() => h.fake.held === 1);
      rs.push(ask(h.t, 'b', same));
      await until(() => h.queue().waiting === 1);
      rs.push(ask(h.t, 'c', same));
      await until(() => h.queue().waiting === 2);
      for (let n = 1; n <= 3; n++) {
        await until(() => h.fake.held === 1);
        h.fake.release();
      }
      for (const r of await Promise.all(rs)) assert.equal(r.usage?.completion_tokens, 2);
      assert.deepEqual(seen(h.fake), ['a', 'b', 'c']);
      assertIdle(h);
    } finally {
      await h.close();
    }
  });

  it('a full queue sheds a waiting batch request for a more urgent newcomer', async () => {
    const h = await heldGateway({ m: {} }, { scheduling: { maxQueueLength: 1 } });
    try {
      const first = ask(h.t, 'first');
      await until(() => h.fake.held === 1);
      const batch = ask(h.t, 'batch', { 'x-switchyard-priority': 'batch' }).catch((e: unknown) => e);
      await until(() => h.queue().waiting === 1);
      const normal = ask(h.t, 'normal');
      assert.ok(isRateLimited('SWY_ERR_QUEUE_SHED')(await batch));
      h.fake.release(1);
      await until(() => h.fake.held === 1);
      h.fake.release(1);
      assert.equal((await first).usage?.completion_tokens, 2);
      assert.equal((await normal).usage?.completion_tokens, 2);
      assert.deepEqual(seen(h.fake), ['first', 'normal']);
      assertIdle(h);
    } finally {
      await h.close();
    }
  });
});

describe('scheduling: capacity gates from engine metrics', () => {
  it('an endpoint whose engine queue is at maxEngineWaiting takes nothing until a scrape says otherwise', async () => {
    const fake = new FakeUpstream();
    fake.mode = { kind: 'held', body: ANSWER };
    const url = await fake.listen();
    const t = await startGateway({
      pools: { m: { endpoints: [{ name: 'm-0', kind: 'http', url, engine: 'vllm', maxEngineWaiting: 4 }] } },
    });
    const pool = t.gw.current.byModel.get('m')!;
    const state = pool.engines[0]!.state;
    try {
      // What a scrape leaves behind: the engine has 4 requests of other clients waiting.
      state.metrics = { running: 8, waiting: 4, kvUsage: 0.5, scrapedAtMs: 0 };
      const r = ask(t, 'gated');
      await until(() => pool.driver.waiting === 1);
      assert.equal(state.inFlight, 0, 'below maxConcurrency, yet gated');
      state.metrics = { running: 8, waiting: 3, kvUsage: 0.5, scrapedAtMs: 1 };
      t.gw.current.pumpQueues(); // the collector pumps after each scrape round
      await until(() => fake.held === 1);
      fake.release();
      assert.equal((await r).usage?.completion_tokens, 2);
    } finally {
      fake.release();
      await t.close();
      await fake.close();
    }
  });
});

describe('scheduling: the prefill gate (maxPrefilling)', () => {
  it('a non-streamed request counts as prefilling until it ends: the next one waits, scrape or not', async () => {
    const fake = new FakeUpstream();
    fake.mode = { kind: 'held', body: ANSWER };
    const url = await fake.listen();
    const t = await startGateway({
      pools: { m: { endpoints: [{ name: 'm-0', kind: 'http', url, maxPrefilling: 1 }] } },
    });
    const pool = t.gw.current.byModel.get('m')!;
    const state = pool.engines[0]!.state;
    try {
      assert.equal(state.metrics, null, 'never scraped');
      const first = ask(t, 'first');
      await until(() => fake.held === 1);
      const second = ask(t, 'second');
      await until(() => pool.driver.waiting === 1);
      assert.equal(state.inFlight, 1, 'below maxConcurrency, yet gated by the prefilling request');
      fake.release(); // the first answer is its first token and its end: the second is sent
      await until(() => fake.held === 1);
      fake.release();
      assert.equal((await first).usage?.completion_tokens, 2);
      assert.equal((await second).usage?.completion_tokens, 2);
      assert.deepEqual(seen(fake), ['first', 'second']);
      assert.equal(pool.router.outstanding, 0);
    } finally {
      fake.release();
      await t.close();
      await fake.close();
    }
  });

  it("a streamed request's first token pumps the queue: the next one is sent before it ends", async () => {
    const fake = new FakeUpstream();
    const chunk = JSON.stringify({
      id: 'c',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }],
    });
    // A chunk with no content (usage only): the relay does not count it as a first token.
    const empty = JSON.stringify({
      id: 'c',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [],
      usage: { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 },
    });
    // Each stream: no content for 1 s (prefilling), then its first token, then 2 s until it ends.
    fake.mode = { kind: 'stream', events: [empty, chunk, '[DONE]'], delayMs: 1000 };
    const url = await fake.listen();
    const t = await startGateway({
      pools: { m: { endpoints: [{ name: 'm-0', kind: 'http', url, maxPrefilling: 1 }] } },
    });
    const pool = t.gw.current.byModel.get('m')!;
    const stream = async (text: string): Promise<number> => {
      const s = await t.client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: text }],
        stream: true,
      });
      for await (const _ of s) {
        // drain
      }
      return Date.now();
    };
    try {
      let firstEnded = false;
      const first = stream('first').then((at) => {
        firstEnded = true;
        return at;
      });
      await until(() => fake.received.length === 1);
      assert.equal(pool.router.prefilling, 1);
      const second = stream('second');
      await until(() => pool.driver.waiting === 1); // gated while `first` prefills
      // `first`'s first token sends `second`, while `first` still streams (not at its end).
      await until(() => fake.received.length === 2);
      assert.equal(firstEnded, false, 'the second was sent before the first ended');
      await Promise.all([first, second]);
      assert.deepEqual(seen(fake), ['first', 'second']);
      assert.equal(pool.router.outstanding, 0);
    } finally {
      await t.close();
      await fake.close();
    }
  });
});

describe('scheduling with tiers and reloads', () => {
  it('a tier chain passes a saturated pool on to the next and queues only in its last pool', async () => {
    const h = await heldGateway(
      { a: {}, b: {} },
      { tiers: { auto: { default: 'a', fallback: { a: ['b'] } } } },
    );
    const tier = (text: string) =>
      h.t.client.chat.completions
        .create({ model: 'auto', messages: [{ role: 'user', content: text }] })
        .withResponse();
    try {
      const one = tier('one'); // a
      await until(() => h.fake.held === 1);
      const two = tier('two'); // a is saturated: b
      await until(() => h.fake.held === 2);
      const three = tier('three'); // both saturated: waits in b, the last pool
      await until(() => h.queue('b').waiting === 1);
      assert.equal(h.queue('a').waiting, 0);
      h.fake.release(2);
      await until(() => h.fake.held === 1);
      h.fake.release(1);
      const pools = (await Promise.all([one, two, three])).map((r) =>
        r.response.headers.get('x-switchyard-pool'),
      );
      assert.deepEqual(pools, ['a', 'b', 'b']);
      assertIdle(h, 'a');
      assertIdle(h, 'b');
    } finally {
      await h.close();
    }
  });

  it('a reload keeps an unchanged queue, hands a changed one over, and answers 503 for a removed pool', async () => {
    const h = await heldGateway({ m: {}, gone: {} });
    const config = (scheduling: Record<string, unknown>, withGone: boolean) =>
      validateConfig({
        server: { port: 0, host: '127.0.0.1' },
        health: { intervalMs: 0, scrapeIntervalMs: 0 },
        scheduling,
        pools: Object.fromEntries(
          (withGone ? ['m', 'gone'] : ['m']).map((name) => [
            name,
            {
              endpoints: [
                {
                  name: `${name}-0`,
                  kind: 'http',
                  url: h.t.gw.current.pools[0]!.engines[0]!.options.url,
                  maxConcurrency: 1,
                },
              ],
            },
          ]),
        ),
      });
    try {
      const first = ask(h.t, 'first');
      await until(() => h.fake.held === 1);
      const second = ask(h.t, 'second');
      await until(() => h.queue().waiting === 1);
      const before = h.queue();
      await h.t.gw.reload(config({}, true));
      assert.equal(h.queue(), before, 'one driver per pool across versions, still holding its request');
      assert.equal(h.queue().waiting, 1);
      await h.t.gw.reload(config({ maxWaitMs: 60_000 }, true));
      assert.equal(h.queue(), before);
      assert.equal(h.queue().waiting, 1, 'the waiting request moved to the new queue');
      const goneFirst = h.t.client.chat.completions.create({
        model: 'gone',
        messages: [{ role: 'user', content: 'g1' }],
      });
      await until(() => h.fake.held === 2);
      const goneWaiting = h.t.client.chat.completions
        .create({ model: 'gone', messages: [{ role: 'user', content: 'g2' }] })
        .catch((e: unknown) => e);
      await until(() => h.queue('gone').waiting === 1);
      await h.t.gw.reload(config({ maxWaitMs: 60_000 }, false));
      const e = await goneWaiting;
      assert.ok(e instanceof OpenAI.APIError && e.status === 503, String(e));
      assert.match(e.message, /pool "gone" was removed by a configuration reload/);
      h.fake.release(2);
      await until(() => h.fake.held === 1);
      h.fake.release();
      assert.equal((await first).usage?.completion_tokens, 2);
      assert.equal((await second).usage?.completion_tokens, 2);
      assert.equal((await goneFirst).usage?.completion_tokens, 2);
      assertIdle(h);
    } finally {
      await h.close();
    }
  });
});
