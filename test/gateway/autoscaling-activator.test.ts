/**
 * The activator and reloads of autoscaled pools: a request that waits for a replica that never
 * comes gets the queue's drop answer (503, Retry-After) at its wait bound; a tier pool at zero with
 * a pool after it wakes and passes the request on; a reload keeps an unchanged scaler, replaces a
 * changed one (draining and stopping its replicas), and a bad scaling block is rejected whole.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import type { PoolScaler } from '../../src/gateway/autoscaling.js';
import { emulatedPool, eventually, startGateway } from '../helpers/gateway.js';
import { alive } from '../helpers/process.js';

/** A replica process that never answers its health check. */
const NEVER_READY = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];

/** `command` undefined: the default, an emulated engine, here up 300 ms after it listens. */
function scaling(
  command: readonly string[] | undefined,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    policy: 'kpa',
    options: { stableWindowMs: 6000, scaleToZeroGracePeriodMs: 1000, targetConcurrency: 2 },
    maxReplicas: 2,
    catalog: [{ name: 'local-8b', profile: 'llama3.1-8b-h100', onDemandUsdPerHour: 2.5 }],
    coldStartMs: 300,
    actuator: { kind: 'process', ...(command ? { command } : {}) },
    ...extra,
  };
}

const chat = (model: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
});

describe('activator', () => {
  it('a request waiting for a replica that never becomes ready gets 503 at its wait bound', async () => {
    const t = await startGateway({
      pools: { big: { endpoints: [], scheduling: { maxWaitMs: 400 }, scaling: scaling(NEVER_READY) } },
    });
    const scaler = t.gw.poolScalers.get('big') as PoolScaler;
    try {
      const t0 = performance.now();
      const res = await fetch(`${t.origin}/v1/chat/completions`, chat('big'));
      const waitedMs = performance.now() - t0;
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, 503);
      assert.equal(body.error.code, 'SWY_ERR_NO_HEALTHY_ENDPOINT');
      assert.match(body.error.message, /autoscaled and has no ready replica yet/);
      assert.equal(res.headers.get('retry-after'), '5');
      assert.ok(waitedMs >= 380 && waitedMs < 2000, `answered after ${waitedMs} ms`);
      // It woke the pool: one replica asked for, still starting.
      assert.equal(scaler.autoscaler.target, 1);
      assert.deepEqual(scaler.counts(), { ready: 0, starting: 1, draining: 0 });
    } finally {
      const pids = scaler.processes().map((r) => r.pid!);
      await t.close();
      for (const pid of pids) assert.equal(alive(pid), false, `replica ${pid} outlived the gateway`);
    }
  });

  it('a tier pool at zero with a pool after it wakes and passes the request on at once', async () => {
    const t = await startGateway({
      pools: {
        big: { endpoints: [], scaling: scaling(NEVER_READY) },
        small: emulatedPool('small', ['small-0']),
      },
      tiers: { auto: { default: 'big', fallback: { big: ['small'] } } },
    });
    const scaler = t.gw.poolScalers.get('big') as PoolScaler;
    try {
      const res = await fetch(`${t.origin}/v1/chat/completions`, chat('auto'));
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-switchyard-pool'), 'small');
      assert.equal(scaler.autoscaler.target, 1);
    } finally {
      await t.close();
    }
  });
});

describe('reloads of autoscaled pools', () => {
  it('keep an unchanged scaler, replace a changed one and stop its replicas, reject a bad block', async () => {
    const pool = (extra: Record<string, unknown> = {}) => ({
      endpoints: [],
      scaling: scaling(undefined, { minReplicas: 1, ...extra }),
    });
    const base = { server: { port: 0, host: '127.0.0.1' }, health: { intervalMs: 0, scrapeIntervalMs: 0 } };
    const t = await startGateway({ pools: { big: pool() } });
    try {
      const first = t.gw.poolScalers.get('big') as PoolScaler;
      assert.ok(
        await eventually(() => first.counts().ready === 1, 10_000),
        'the minimum replica never came up',
      );
      assert.equal((await fetch(`${t.origin}/v1/chat/completions`, chat('big'))).status, 200);
      const oldPid = first.processes()[0]!.pid!;

      await t.gw.reload(validateConfig({ ...base, pools: { big: pool() } }));
      assert.equal(t.gw.poolScalers.get('big'), first, 'an unchanged scaling block keeps its scaler');
      assert.equal(t.gw.current.byModel.get('big')!.engines.length, 1, 'and its registered replica');

      // The config refuses a bad option; one that skipped validation is still refused whole.
      assert.throws(
        () => validateConfig({ ...base, pools: { big: pool({ options: { stableWindowMs: 100 } }) } }),
        /pools\.big\.scaling\.options\.stableWindowMs/,
      );
      const good = validateConfig({ ...base, pools: { big: pool() } });
      const big = good.pools.big!;
      const unchecked = {
        ...good,
        pools: { big: { ...big, scaling: { ...big.scaling!, options: { stableWindowMs: 100 } } } },
      };
      await assert.rejects(t.gw.reload(unchecked), /stableWindowMs/);
      assert.equal(t.gw.poolScalers.get('big'), first, 'a rejected reload changes nothing');

      await t.gw.reload(validateConfig({ ...base, pools: { big: pool({ maxReplicas: 3 }) } }));
      const second = t.gw.poolScalers.get('big') as PoolScaler;
      assert.notEqual(second, first);
      assert.ok(await eventually(() => !alive(oldPid), 10_000), 'the replaced scaler stopped its replica');
      assert.ok(
        await eventually(() => second.counts().ready === 1, 10_000),
        'the new scaler started its minimum',
      );
      const res = await fetch(`${t.origin}/v1/chat/completions`, chat('big'));
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-switchyard-endpoint'), second.processes()[0]!.id);
    } finally {
      await t.close();
    }
  });
});
