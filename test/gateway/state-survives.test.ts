/**
 * Routing state lives per pool and endpoint, not per config version: a reload (even one that
 * changes the routing policy) and a replica added by the autoscaler keep the prefix index and the
 * load ledger, so a conversation's next turn goes where its cache is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import type { DriverEvent } from '../../src/pool/driver.js';
import { startGateway } from '../helpers/gateway.js';
import { type LiveArrival, runLive } from '../helpers/lockstep.js';

type Msg = { role: 'system' | 'user' | 'assistant'; content: string };

/** A conversation's first turn, and its second (the first, its answer, a new question). */
function turns(c: number): [Msg[], Msg[]] {
  const first: Msg[] = [
    { role: 'system', content: `Agent ${c}. ${`Rule ${c}: answer tersely and cite nothing. `.repeat(80)}` },
    { role: 'user', content: `Task ${c}: ${'plan the next step '.repeat(30)}` },
  ];
  return [
    first,
    [...first, { role: 'assistant', content: 'done '.repeat(8) }, { role: 'user', content: 'And then?' }],
  ];
}

function config(profile: string, maxWaitMs: number): Record<string, unknown> {
  return {
    router: { profile },
    scheduling: { maxWaitMs },
    pools: {
      m: {
        endpoints: ['e-0', 'e-1', 'e-2'].map((name) => ({
          name,
          kind: 'emulated',
          profile: 'qwen2.5-1.5b-h100',
        })),
      },
    },
  };
}

describe('routing state survives change', () => {
  it('a reload, even of the routing policy, keeps prefix affinity and the load ledger', async () => {
    const t = await startGateway(config('default', 30_000));
    try {
      const events: DriverEvent[] = [];
      const driver = t.gw.current.byModel.get('m')!.driver;
      driver.onEvent = (e) => events.push(e);
      const ask = async (messages: Msg[], maxTokens = 4) => {
        const { response } = await t.client.chat.completions
          .create({ model: 'm', messages, max_tokens: maxTokens })
          .withResponse();
        return response.headers.get('x-switchyard-endpoint')!;
      };
      const home = new Map<number, string>();
      for (let c = 0; c < 6; c++) home.set(c, await ask(turns(c)[0]));
      assert.ok(new Set(home.values()).size > 1, 'the conversations spread over the endpoints');

      // A request in flight across both reloads stays in the ledger.
      const long = t.client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'a long answer' }],
        max_tokens: 1500,
        stream: true,
      });
      const stream = await long;
      const it = stream[Symbol.asyncIterator]();
      await it.next();
      assert.equal(driver.ledger.outstanding, 1);

      await t.gw.reload(validateConfig({ ...config('default', 20_000), server: { port: 0 } }));
      assert.equal(t.gw.current.byModel.get('m')!.driver, driver, 'one driver across versions');
      await t.gw.reload(validateConfig({ ...config('prefix-threshold', 20_000), server: { port: 0 } }));
      assert.equal(driver.ledger.outstanding, 1, 'the request in flight is still counted');

      for (let c = 0; c < 6; c++) {
        const before = events.length;
        assert.equal(await ask(turns(c)[1]), home.get(c), `conversation ${c} returns to its cache`);
        const start = events.slice(before).find((e) => e.kind === 'start');
        assert.ok(start?.kind === 'start' && start.cached > 0, `conversation ${c}: ${JSON.stringify(start)}`);
      }
      for (let r = await it.next(); !r.done; r = await it.next()) {}
      assert.equal(driver.ledger.outstanding, 0);
    } finally {
      await t.close();
    }
  });

  it("a replica added by the autoscaler keeps the others' prefix knowledge (live, on virtual time)", async () => {
    const [c1, c2] = turns(1);
    const load = (i: number, atMs: number, maxTokens: number): LiveArrival => ({
      atMs,
      id: `load-${i}`,
      model: 'big',
      tenant: 't',
      messages: turns(10 + i)[0],
      maxTokens,
    });
    // A wave that makes the pool scale up, a second one that the new replicas take, then the
    // conversation's second turn.
    const arrivals: LiveArrival[] = [
      { atMs: 10, id: 'c-1', model: 'big', tenant: 't', messages: c1, maxTokens: 4 },
      ...Array.from({ length: 6 }, (_, i) => load(i, 200 + i * 5, 1000)),
      ...Array.from({ length: 3 }, (_, i) => load(6 + i, 3000 + i * 5, 50)),
      { atMs: 3_500, id: 'c-2', model: 'big', tenant: 't', messages: c2, maxTokens: 4 },
    ];
    const events = await runLive(
      {
        log: { level: 'silent' },
        health: { intervalMs: 0, scrapeIntervalMs: 1000 },
        pools: {
          big: {
            endpoints: [],
            scaling: {
              policy: 'kpa',
              options: { targetConcurrency: 1 },
              minReplicas: 0,
              maxReplicas: 3,
              coldStartMs: 500,
              catalog: [{ name: 'gpu', profile: 'qwen2.5-1.5b-h100', onDemandUsdPerHour: 1 }],
              actuator: { kind: 'emulated' },
            },
          },
        },
      },
      arrivals,
    );
    const starts = events.flatMap((e) => (e.kind === 'start' ? [e] : []));
    const first = starts.find((e) => e.request === 'c-1')!;
    const second = starts.find((e) => e.request === 'c-2')!;
    const replicas = new Set(starts.filter((e) => e.atMs < second.atMs).map((e) => e.endpoint));
    assert.ok(replicas.size >= 2, `new replicas served before the second turn: ${[...replicas].join(', ')}`);
    assert.equal(second.endpoint, first.endpoint, 'the second turn goes where the first one left its cache');
    assert.ok(second.cached > 0 && second.reason === 'cache-affinity', JSON.stringify(second));
  });
});
