/**
 * The simulator runs the gateway's own decision code: for the same request sequence and the same
 * endpoint states, the live gateway (real HTTP, real upstream servers) and the simulator pick the
 * same endpoints, seeded tie-breaks included.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getProfile } from '../../src/engine-model/profiles.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { Simulation } from '../../src/sim/simulator.js';
import { FakeUpstream } from '../helpers/fake-upstream.js';
import { eventually, startGateway } from '../helpers/gateway.js';

const REQUESTS = 9;

/** Live: three upstreams that never answer, so each request stays outstanding, as in the simulation. */
async function livePicks(preset: string, seed: number): Promise<string[]> {
  const upstreams = [new FakeUpstream(), new FakeUpstream(), new FakeUpstream()];
  const urls = await Promise.all(upstreams.map((u) => u.listen()));
  for (const u of upstreams) u.mode = { kind: 'hang' };
  const t = await startGateway({
    router: { profile: preset, seed },
    pools: { m: { endpoints: urls.map((url, i) => ({ name: `e${i}`, kind: 'http', url })) } },
  });
  const picks: string[] = [];
  const pending: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < REQUESTS; i++) {
      const before = upstreams.map((u) => u.paths.length);
      pending.push(
        fetch(`${t.origin}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `request ${i}` }] }),
        }).catch(() => null),
      );
      // The next request is sent only once this one has reached its upstream (a fixed order).
      assert.ok(await eventually(() => upstreams.some((u, k) => u.paths.length > before[k]!)));
      picks.push(`e${upstreams.findIndex((u, k) => u.paths.length > before[k]!)}`);
    }
  } finally {
    await t.gw.shutdown(0);
    await Promise.all(upstreams.map((u) => u.close()));
    await Promise.allSettled(pending);
  }
  return picks;
}

/** Simulated: the same three endpoints; requests 1 ms apart that all outlast the sequence. */
async function simPicks(preset: string, seed: number): Promise<string[]> {
  const profile = getProfile('qwen2.5-1.5b-h100');
  const sim = new Simulation({
    pools: [
      { name: 'm', endpoints: [0, 1, 2].map((i) => ({ name: `e${i}`, profile, maxConcurrency: 256 })) },
    ],
    routing: ROUTING_PRESETS[preset]!,
    seed,
  });
  const picks: string[] = [];
  const records = Array.from({ length: REQUESTS }, (_, i) => ({
    arrivalMs: i,
    inputTokens: 20,
    outputTokens: 5000,
  }));
  const byId = new Map<string, string>();
  await sim.run(records, (r) => byId.set(r.id, r.endpoint));
  for (let i = 0; i < REQUESTS; i++) picks.push(byId.get(`r${i}`)!);
  return picks;
}

describe('simulator and live gateway decide alike', () => {
  for (const [preset, seed] of [
    ['least-outstanding', 1],
    ['least-outstanding', 42],
    ['round-robin', 1],
  ] as const) {
    it(`${preset}, seed ${seed}: the same endpoint for every request`, async () => {
      const live = await livePicks(preset, seed);
      const simulated = await simPicks(preset, seed);
      assert.deepEqual(simulated, live);
      // Least-outstanding spreads the 9 outstanding requests 3/3/3 whatever the tie-breaks.
      for (const e of ['e0', 'e1', 'e2']) assert.equal(live.filter((x) => x === e).length, 3);
    });
  }
});
