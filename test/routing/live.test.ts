/**
 * Routing policies through real HTTP: a gateway over emulated engines, driven by the official
 * `openai` client, read back from the `x-switchyard-endpoint` response header and from /metrics.
 * Requests are sent one after another, so the fleet is idle at every decision and the seeded
 * tie-breaks make each run the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { type TestGateway, emulatedPool, eventually, startGateway } from '../helpers/gateway.js';

type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;
const ENDPOINTS = ['e0', 'e1', 'e2'];

/** Sends one chat request; returns the endpoint that served it and the answer's text. */
async function send(
  t: TestGateway,
  messages: Message[],
  headers: Record<string, string> = {},
): Promise<{ endpoint: string; content: string }> {
  const { data, response } = await t.client.chat.completions
    .create({ model: 'm', messages, max_tokens: 4 }, { headers })
    .withResponse();
  const endpoint = response.headers.get('x-switchyard-endpoint');
  assert.ok(endpoint !== null && ENDPOINTS.includes(endpoint), `endpoint header: ${endpoint}`);
  return { endpoint, content: data.choices[0]?.message.content ?? '' };
}

/** switchyard_routing_decisions_total by reason, for pool `m`. */
async function decisions(t: TestGateway): Promise<Record<string, number>> {
  const text = await (await fetch(`${t.origin}/metrics`)).text();
  const out: Record<string, number> = {};
  const re = /^switchyard_routing_decisions_total\{model="m",reason="([^"]+)"\} (\d+)$/gm;
  for (const m of text.matchAll(re)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Waits until the pool's router has seen every request finish, and checks its ledger is empty. */
async function assertLedgerEmpty(t: TestGateway): Promise<void> {
  const router = t.gw.current.byModel.get('m')!.router;
  assert.ok(await eventually(() => router.outstanding === 0), 'every request finished in the router');
  for (let i = 0; i < ENDPOINTS.length; i++) {
    assert.deepEqual(
      router.load(i),
      { requests: 0, prefilling: 0, prefillTokens: 0, prefillPairs: 0, kvTokens: 0, decodeTokens: 0 },
      `ledger of ${ENDPOINTS[i]}`,
    );
  }
}

describe('session policy over HTTP', () => {
  let t: TestGateway;
  before(async () => {
    t = await startGateway({
      router: { profile: 'session', seed: 7 },
      pools: { m: emulatedPool('m', ENDPOINTS) },
    });
  });
  after(() => t.close());

  it('keeps each session on one endpoint, spreads sessions, and counts new-session / sticky', async () => {
    const sessions = ['A', 'B', 'C', 'D', 'E', 'F'];
    const homes = new Map<string, Set<string>>(sessions.map((s) => [s, new Set()]));
    for (let turn = 0; turn < 3; turn++) {
      for (const s of sessions) {
        // Session F uses the generic header that some agent frameworks send.
        const header: Record<string, string> = { [s === 'F' ? 'x-session-id' : 'x-switchyard-session']: s };
        const { endpoint } = await send(t, [{ role: 'user', content: `session ${s}, turn ${turn}` }], header);
        homes.get(s)!.add(endpoint);
      }
    }
    for (const [s, endpoints] of homes) assert.equal(endpoints.size, 1, `session ${s}: ${[...endpoints]}`);
    const used = new Set([...homes.values()].map((e) => [...e][0]));
    assert.ok(used.size > 1, `six sessions on ${[...used]} (seed 7)`);
    assert.deepEqual(await decisions(t), { 'new-session': 6, sticky: 12 });
    // Without a session header: no affinity, and its own reason.
    await send(t, [{ role: 'user', content: 'no session' }]);
    assert.deepEqual(await decisions(t), { 'new-session': 6, sticky: 12, 'no-session': 1 });
    await assertLedgerEmpty(t);
  });
});

describe('default policy over HTTP', () => {
  let t: TestGateway;
  before(async () => {
    t = await startGateway({
      router: { profile: 'default', seed: 3 },
      pools: { m: emulatedPool('m', ENDPOINTS) },
    });
  });
  after(() => t.close());

  it('a growing conversation sticks to the endpoint holding its prefix while the fleet is idle', async () => {
    // A system prompt of 2320 characters: two full prefix blocks from the first turn on.
    const messages: Message[] = [{ role: 'system', content: 'You are a careful assistant. '.repeat(80) }];
    const served: string[] = [];
    for (let turn = 0; turn < 5; turn++) {
      messages.push({ role: 'user', content: `Question ${turn}: ${'tell me more. '.repeat(20)}` });
      const { endpoint, content } = await send(t, messages);
      served.push(endpoint);
      messages.push({ role: 'assistant', content });
    }
    assert.deepEqual(served, new Array<string>(5).fill(served[0]!), `turns served by ${served}`);
    // The first turn found no cached prefix anywhere; every later one chose the holder for it.
    assert.deepEqual(await decisions(t), { 'least-ttft': 1, 'cache-affinity': 4 });
    await assertLedgerEmpty(t);
  });

  it('a prompt with no full block carries no prefix signal', async () => {
    const before = await decisions(t);
    await send(t, [{ role: 'user', content: 'short' }]);
    const now = await decisions(t);
    assert.equal((now['least-ttft'] ?? 0) - (before['least-ttft'] ?? 0), 1);
    assert.equal(now['cache-affinity'], before['cache-affinity']);
  });
});
