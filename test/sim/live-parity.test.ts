/**
 * The simulator's promise: it runs the gateway's own decisions. The same arrivals go through a live
 * gateway (real HTTP, emulated engines, an autoscaled pool whose replicas start in-process) on
 * virtual time, and through `Simulation` built from the same config; every routing decision, queue
 * start and drop, and scale event must come out the same, at the same virtual time, for every
 * routing policy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { SeededRng } from '../../src/core/rng.js';
import type { DriverEvent, PoolDriver } from '../../src/pool/driver.js';
import { ROUTING_PRESETS, withModelCorrection } from '../../src/router/presets.js';
import { simFleetFromConfig } from '../../src/sim/from-config.js';
import { Simulation } from '../../src/sim/simulator.js';
import { type LiveArrival, type PoolEvent, recordOf, runLive } from '../helpers/lockstep.js';

const PROFILE = 'qwen2.5-1.5b-h100';

function config(policy: string): Record<string, unknown> {
  return {
    log: { level: 'silent' },
    // No active health checks (the simulator has none); metrics scraped every second, as the simulator's views.
    health: { intervalMs: 0, scrapeIntervalMs: 1000 },
    router: { profile: policy, seed: 7 },
    scheduling: { queue: 'vtc', maxQueueLength: 6, maxWaitMs: 4_000 },
    pools: {
      small: {
        endpoints: ['s-0', 's-1', 's-2'].map((name) => ({
          name,
          kind: 'emulated',
          profile: PROFILE,
          maxConcurrency: 3,
          labels: { tier: 'edge' },
        })),
      },
      big: {
        scaling: {
          policy: 'kpa',
          options: { targetConcurrency: 2 },
          minReplicas: 0,
          maxReplicas: 3,
          coldStartMs: 1500,
          maxConcurrency: 4,
          catalog: [{ name: 'gpu', profile: PROFILE, onDemandUsdPerHour: 1 }],
          actuator: { kind: 'emulated' },
        },
        endpoints: [],
      },
    },
  };
}

/**
 * Conversations of two tenants over both pools: shared system prompts (prefix families), turns that
 * grow on the previous ones, bursts that fill the queues, and gaps that let the large pool scale.
 */
function workload(n: number, seed: number): LiveArrival[] {
  const rng = new SeededRng(seed);
  const systems = Array.from(
    { length: 4 },
    (_, i) => `You are assistant ${i}. ${'Be precise and brief. '.repeat(60 + 20 * i)}`,
  );
  const histories = new Map<number, { role: 'system' | 'user' | 'assistant'; content: string }[]>();
  const out: LiveArrival[] = [];
  let t = 50.25;
  for (let i = 0; i < n; i++) {
    // Bursts of quick arrivals with pauses between them.
    t += i % 25 < 18 ? 20 + rng.next() * 60 : 400 + rng.next() * 900;
    const conv = Math.floor(rng.next() * 12);
    let h = histories.get(conv);
    if (h === undefined) {
      h = [{ role: 'system', content: systems[conv % systems.length]! }];
      histories.set(conv, h);
    }
    h.push({
      role: 'user',
      content: `Question ${i} of conversation ${conv}: ${'why '.repeat(10 + Math.floor(rng.next() * 80))}`,
    });
    const maxTokens = 4 + Math.floor(rng.next() * 40);
    out.push({
      atMs: t,
      id: `r${i}`,
      model: conv % 3 === 0 ? 'big' : 'small',
      tenant: conv % 2 === 0 ? 'a' : 'b',
      messages: h.map((m) => ({ ...m })),
      maxTokens,
    });
    h.push({ role: 'assistant', content: 'ok '.repeat(maxTokens) });
  }
  return out;
}

async function runSim(
  raw: Record<string, unknown>,
  arrivals: readonly LiveArrival[],
  inspect?: (sim: Simulation) => void,
): Promise<PoolEvent[]> {
  const cfg = validateConfig({ ...raw, server: { port: 0 } });
  const fleet = simFleetFromConfig(cfg, { queues: true });
  const sim = new Simulation({
    pools: fleet.pools,
    routing: fleet.routing,
    seed: fleet.seed,
    breaker: fleet.breaker,
    scrapeIntervalMs: fleet.scrapeIntervalMs,
  });
  const events: PoolEvent[] = [];
  for (const p of sim.pools) p.driver.onEvent = (e: DriverEvent) => events.push({ ...e, pool: p.name });
  await sim.run(arrivals.map((a) => recordOf(a, PROFILE)));
  inspect?.(sim);
  return events;
}

/** What the pool `small` learnt of its engines (router/model-correction.ts), by endpoint name. */
function corrections(pools: readonly { name: string; driver: PoolDriver<unknown> }[]): string {
  const small = pools.find((p) => p.name === 'small')!;
  return JSON.stringify(
    small.driver.corrections().map((c) => [c.endpoint, c.factors.prefill, c.factors.decode]),
  );
}

/** Replica names differ between hosts (process ids vs slots): name them by first use, per pool. */
function canonical(events: readonly PoolEvent[]): string[] {
  const names = new Map<string, string>();
  // The initial target (no change) is set while the live gateway starts, before anyone listens.
  return events
    .filter((e) => !(e.kind === 'scale' && e.reason === 'initial'))
    .map((e) => {
      if (e.kind !== 'start' && e.kind !== 'retry') return JSON.stringify(e);
      const key = `${e.pool}\u0000${e.endpoint}`;
      let name = names.get(key);
      if (name === undefined) {
        name =
          e.pool === 'big'
            ? `replica-${[...names.keys()].filter((k) => k.startsWith('big')).length}`
            : e.endpoint;
        names.set(key, name);
      }
      return JSON.stringify({ ...e, endpoint: name });
    });
}

describe("the simulator runs the gateway's own decisions", () => {
  const arrivals = workload(240, 11);

  it('default policy: same routes, queue order, drops and scale events as the live gateway', async () => {
    const [live, sim] = [
      await runLive(config('default'), arrivals),
      await runSim(config('default'), arrivals),
    ];
    const kinds = (k: string) => live.filter((e) => e.kind === k).length;
    assert.ok(kinds('start') > 200, `only ${kinds('start')} starts`);
    assert.ok(kinds('scale') >= 2, 'the large pool scales from zero and up');
    assert.ok(live.some((e) => e.kind === 'start' && e.reason !== 'only-candidate'));
    assert.deepEqual(canonical(live), canonical(sim));
  });

  it('default policy with the model correction on: same decisions, and the same factors learnt', async () => {
    // The correction is learnt from token times: both hosts must report them at the same instants.
    const raw = {
      ...config('corrected'),
      router: {
        profile: 'corrected',
        seed: 7,
        profiles: { corrected: withModelCorrection(ROUTING_PRESETS.default!, true) },
      },
    };
    let liveFactors = '';
    let simFactors = '';
    const live = await runLive(raw, arrivals, (gw) => {
      liveFactors = corrections(gw.current.pools);
    });
    const sim = await runSim(raw, arrivals, (s) => {
      simFactors = corrections(s.pools);
    });
    assert.deepEqual(canonical(live), canonical(sim));
    assert.equal(liveFactors, simFactors);
    // It learnt something (the emulated engines run the profile, so not far from 1).
    const factors = (JSON.parse(simFactors) as [string, number, number][]).flatMap(([, p, d]) => [p, d]);
    assert.ok(factors.some((f) => f !== 1));
    for (const f of factors) assert.ok(f > 0.7 && f < 1.3, `factor ${f}`);
  });

  for (const policy of Object.keys(ROUTING_PRESETS).filter((p) => p !== 'default')) {
    it(`${policy}: the same decisions live and simulated`, async () => {
      const few = arrivals.slice(0, 120);
      const [live, sim] = [await runLive(config(policy), few), await runSim(config(policy), few)];
      assert.deepEqual(canonical(live), canonical(sim));
    });
  }
});
