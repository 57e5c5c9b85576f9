/**
 * The benches' setups from `switchyard sim` flags: each run below gives the same summary as the
 * bench's own construction of the simulation (bench/routing.ts's pooled ideal, bench/scheduling.ts's
 * serial SJF-oracle and gated priority fleets), on a short window of a shipped trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getProfile, pooledProfile } from '../../src/engine-model/profiles.js';
import { routingSpec } from '../../src/router/presets.js';
import { type SimOptions, type SimSummary, Simulation } from '../../src/sim/simulator.js';
import { openRequestTrace } from '../../src/traces/loaders.js';
import { reshape, tag } from '../../src/traces/transform.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TRACES = fileURLToPath(new URL('../../../traces/', import.meta.url));

const sim = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'sim', ...args], { encoding: 'utf8' });
const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as SimSummary;

/** The parts of a summary that do not name pools or endpoints. */
function core(s: SimSummary) {
  const {
    requests,
    completed,
    rejected,
    rejected_by_reason,
    ttft_ms,
    e2e_ms,
    gateway_queue_ms,
    slo_attainment,
  } = s;
  return {
    requests,
    completed,
    rejected,
    rejected_by_reason,
    ttft_ms,
    e2e_ms,
    gateway_queue_ms,
    slo_attainment,
  };
}

async function direct(
  opts: SimOptions,
  file: string,
  window: { startS: number; endS: number },
  rateScale: number,
  batchShare?: number,
) {
  const records = reshape((await openRequestTrace(file)).records, { window, rateScale });
  return new Simulation(opts).run(batchShare === undefined ? records : tag(records, { batchShare, seed: 1 }));
}

describe('switchyard sim: the benches setups from flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-simbench-'));

  it('bench:routing pooled ideal: --pooled 8 on one replica, SLO against the unpooled profile', async () => {
    const file = join(TRACES, 'mooncake_synthetic_trace.jsonl');
    const base = getProfile('qwen2.5-7b-h100');
    const want = await direct(
      {
        pools: [
          {
            name: 'm',
            endpoints: [{ name: 'pooled', profile: pooledProfile(base, 8), maxConcurrency: 8192 }],
          },
        ],
        routing: routingSpec('round-robin'),
        seed: 1,
        scrapeIntervalMs: 100,
        slo: { ttftScale: 5, referenceProfile: base },
      },
      file,
      { startS: 0, endS: 60 },
      2,
    );
    const out = join(dir, 'pooled');
    const r = sim(
      '--trace',
      file,
      '--window',
      '0:60',
      '--rate-scale',
      '2',
      '--profile',
      'qwen2.5-7b-h100',
      '--replicas',
      '1',
      '--pooled',
      '8',
      '--endpoint-concurrency',
      '8192',
      '--policy',
      'round-robin',
      '--scrape-ms',
      '100',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(want.requests > 100);
    assert.deepEqual(core(summaryOf(out)), core(want));
  });

  it('bench:scheduling serial backend: SJF on true sizes with a starvation guard', async () => {
    const file = join(TRACES, 'AzureLLMInferenceTrace_code.csv');
    const profile = getProfile('qwen2.5-1.5b-h100');
    const bounds = { maxLength: 100_000, maxWaitMs: 3_600_000 };
    const want = await direct(
      {
        pools: [{ name: 'm', endpoints: [{ name: 'r0', profile, maxConcurrency: 1 }] }],
        routing: routingSpec('least-outstanding'),
        scheduling: { order: 'sjf', oracleSizes: true, sjfMaxAgeMs: 20_000, bounds },
      },
      file,
      { startS: 0, endS: 120 },
      4,
    );
    const out = join(dir, 'serial');
    const r = sim(
      '--trace',
      file,
      '--window',
      '0:120',
      '--rate-scale',
      '4',
      '--profile',
      'qwen2.5-1.5b-h100',
      '--replicas',
      '1',
      '--endpoint-concurrency',
      '1',
      '--policy',
      'least-outstanding',
      '--queue',
      'sjf',
      '--sjf-oracle',
      '--sjf-max-age-ms',
      '20000',
      '--max-queue',
      '100000',
      '--max-wait-ms',
      '3600000',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(want.scheduling !== null && want.scheduling.queued > 0, 'requests waited');
    assert.deepEqual(core(summaryOf(out)), core(want));
  });

  it('bench:scheduling batching fleet: an engine-waiting gate, priority with batch headroom', async () => {
    const file = join(TRACES, 'AzureLLMInferenceTrace_conv.csv');
    const profile = getProfile('qwen2.5-7b-h100');
    const gate = { maxEngineWaiting: 1, maxKvUsage: null };
    const interactive = { maxWaitMs: 30_000 };
    const want = await direct(
      {
        pools: [
          {
            name: 'm',
            endpoints: [0, 1].map((i) => ({ name: `r${i}`, profile, maxConcurrency: 256, gate })),
          },
        ],
        routing: routingSpec('default'),
        slo: { ttftScale: 5 },
        scheduling: {
          order: 'priority',
          batchHeadroom: 0.5,
          bounds: {
            maxLength: 1024,
            maxWaitMs: 300_000,
            perClass: {
              high: interactive,
              normal: interactive,
              low: interactive,
              batch: { maxWaitMs: 300_000 },
            },
          },
        },
      },
      file,
      { startS: 0, endS: 60 },
      3,
      0.3,
    );
    const out = join(dir, 'gated');
    const r = sim(
      '--trace',
      file,
      '--window',
      '0:60',
      '--rate-scale',
      '3',
      '--profile',
      'qwen2.5-7b-h100',
      '--replicas',
      '2',
      '--endpoint-concurrency',
      '256',
      '--max-engine-waiting',
      '1',
      '--queue',
      'priority',
      '--batch-headroom',
      '0.5',
      '--batch-share',
      '0.3',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(want.scheduling !== null && want.scheduling.queued > 0, 'the gate held requests in the queue');
    assert.ok((want.by_class.batch?.requests ?? 0) > 0);
    assert.deepEqual(core(summaryOf(out)), core(want));
  });

  it('refuses the new flags where they do not apply', () => {
    const file = join(TRACES, 'AzureLLMInferenceTrace_code.csv');
    const bad = (args: string[], msg: RegExp) => {
      const r = sim('--trace', file, '--out', join(dir, 'bad'), ...args);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, msg);
    };
    bad(['--sjf-oracle'], /--queue NAME/);
    bad(['--queue', 'fcfs', '--sjf-max-age-ms', '5'], /--queue sjf/);
    bad(['--config', 'config/demo.yaml', '--pooled', '2'], /go with --profile/);
    bad(['--pooled', '2', '--autoscale', 'kpa'], /do not mix/);
    bad(['--autoscale', 'kpa', '--replica-rps', '1', '--autoscale-options', '[1]'], /JSON object/);
  });
});
