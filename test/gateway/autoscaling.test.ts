/**
 * The autoscaler in the live gateway, end to end through real HTTP and the official openai client:
 * a pool autoscaled from zero by the KPA through the process actuator, whose replicas are real
 * `switchyard engine` processes (from dist, 300 ms emulated cold start). The first request wakes it,
 * a burst scales it out, idleness scales it back to zero, every request succeeds, and no engine
 * process outlives the gateway.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PoolScaler } from '../../src/gateway/autoscaling.js';
import { eventually, startGateway } from '../helpers/gateway.js';
import { alive } from '../helpers/process.js';

const POOL = 'llama-3.1-8b-instruct';

/** The demo's large pool, with KPA windows small enough for a test. */
function scaledPool(): Record<string, unknown> {
  return {
    aliases: ['large'],
    endpoints: [],
    scaling: {
      policy: 'kpa',
      options: { stableWindowMs: 6000, scaleToZeroGracePeriodMs: 1000, targetConcurrency: 2 },
      minReplicas: 0,
      maxReplicas: 3,
      catalog: [{ name: 'local-8b', profile: 'llama3.1-8b-h100', onDemandUsdPerHour: 2.5 }],
      // The default command: a real emulated engine process per replica, up 300 ms after it listens.
      coldStartMs: 300,
      actuator: { kind: 'process', drainTimeoutMs: 10_000 },
    },
  };
}

describe('autoscaling in the live gateway', () => {
  it('scales from zero on demand, out under load, back to zero when idle; no request fails', async () => {
    const t = await startGateway({ health: { scrapeIntervalMs: 500 }, pools: { [POOL]: scaledPool() } });
    const scaler = t.gw.poolScalers.get(POOL) as PoolScaler;
    const pids = new Set<number>();
    let maxReady = 0;
    // Every 50 ms: the pids the actuator spawned and the most replicas ready at once.
    const watch = setInterval(() => {
      for (const r of scaler.processes()) if (r.pid !== undefined) pids.add(r.pid);
      maxReady = Math.max(maxReady, scaler.counts().ready);
    }, 50);
    const t0 = performance.now();
    const at = (): number => Math.round(performance.now() - t0);
    const timings: Record<string, number> = {};
    try {
      // At zero: no process, no endpoint, and still ready (the activator serves it).
      assert.deepEqual(scaler.counts(), { ready: 0, starting: 0, draining: 0 });
      assert.equal(scaler.processes().length, 0);
      assert.equal(t.gw.current.byModel.get(POOL)!.engines.length, 0);
      assert.equal((await fetch(`${t.origin}/ready`)).status, 200);

      // The first request wakes the pool and waits for the cold start instead of failing.
      const first = await t.client.chat.completions.create({
        model: 'large',
        messages: [{ role: 'user', content: 'wake up' }],
        max_tokens: 4,
      });
      assert.equal(first.usage?.completion_tokens, 4);
      timings.firstAnswerMs = at();
      assert.equal(scaler.autoscaler.target, 1);
      assert.equal(t.gw.current.byModel.get(POOL)!.engines.length, 1);

      // A burst of 12 long requests (half streamed) against a target of 2 per replica: scale out.
      const burst = Array.from({ length: 12 }, (_, i) => request(t.client, i % 2 === 0, 800));
      const scaledOut = await eventually(() => scaler.counts().ready >= 2, 15_000);
      timings.scaledOutMs = at();
      const tokens = await Promise.all(burst);
      timings.burstDoneMs = at();
      assert.ok(scaledOut, `the pool reached ${maxReady} ready replicas under load, wanted ≥ 2`);
      assert.deepEqual(tokens, Array(12).fill(800));

      // New requests now spread over the replicas (registered as endpoints of the pool).
      const spread = await Promise.all(Array.from({ length: 6 }, () => endpointOf(t.origin)));
      assert.ok(new Set(spread).size >= 2, `requests after scale-out went to ${[...new Set(spread)]}`);

      // Idle: back to zero; every replica drained and stopped.
      const zero = await eventually(
        () => scaler.autoscaler.target === 0 && scaler.processes().length === 0,
        25_000,
      );
      timings.zeroMs = at();
      assert.ok(zero, `still ${JSON.stringify(scaler.counts())} target ${scaler.autoscaler.target}`);
      assert.equal(t.gw.current.byModel.get(POOL)!.engines.length, 0);
      assert.ok(maxReady >= 2 && maxReady <= 3);
      assert.ok(pids.size >= 2, `spawned ${pids.size} processes`);
      for (const pid of pids) assert.equal(alive(pid), false, `engine process ${pid} is still running`);

      const metrics = await (await fetch(`${t.origin}/metrics`)).text();
      assert.match(
        metrics,
        /switchyard_scale_events_total\{model="llama-3.1-8b-instruct",reason="activator"\} 1/,
      );
      assert.match(
        metrics,
        /switchyard_scale_events_total\{model="llama-3.1-8b-instruct",reason="panic"\} [1-9]/,
      );
      assert.match(
        metrics,
        /switchyard_scale_events_total\{model="llama-3.1-8b-instruct",reason="scale-to-zero"\} 1/,
      );
      assert.match(metrics, /switchyard_pool_desired_replicas\{model="llama-3.1-8b-instruct"\} 0/);
      assert.match(metrics, /switchyard_pool_replicas\{model="llama-3.1-8b-instruct",phase="ready"\} 0/);
      assert.doesNotMatch(metrics, /switchyard_requests_total\{[^}]*status="[45]\d\d"\}/);
      // Each replica's cold start was measured live: at least the engine's 300 ms, one per spawn.
      const cold = (what: string) =>
        Number(
          new RegExp(
            `switchyard_replica_cold_start_seconds_${what}\\{model="${POOL}",type="local-8b"\\} (\\S+)`,
          ).exec(metrics)?.[1],
        );
      assert.equal(cold('count'), pids.size);
      assert.ok(cold('sum') >= 0.3 * pids.size, `cold starts summed ${cold('sum')} s`);
    } finally {
      clearInterval(watch);
      await t.close();
      for (const r of scaler.processes()) if (r.pid !== undefined) pids.add(r.pid);
      for (const pid of pids) assert.equal(alive(pid), false, `engine process ${pid} outlived the gateway`);
      process.stderr.write(`# autoscaling timings (ms from start): ${JSON.stringify(timings)}\n`);
    }
  });
});

/** One request of `maxTokens` tokens to the scaled pool; resolves with the tokens received. */
async function request(
  client: import('openai').default,
  stream: boolean,
  maxTokens: number,
): Promise<number> {
  const messages = [{ role: 'user' as const, content: 'tell me a long story' }];
  if (!stream) {
    const r = await client.chat.completions.create({ model: 'large', messages, max_tokens: maxTokens });
    return r.usage?.completion_tokens ?? -1;
  }
  const s = await client.chat.completions.create({
    model: 'large',
    messages,
    max_tokens: maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  let usage = -1;
  for await (const chunk of s) if (chunk.usage) usage = chunk.usage.completion_tokens;
  return usage;
}

/** The endpoint that served a short request (`x-switchyard-endpoint`); throws on a non-200. */
async function endpointOf(origin: string): Promise<string> {
  const res = await fetch(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'large', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  return res.headers.get('x-switchyard-endpoint') ?? '';
}
