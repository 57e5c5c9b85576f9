/**
 * `switchyard sim` on the shipped ServeGen deepseek-r1 window file: `--rate-factor` multiplies every
 * client's rate (the arrival count scales, the span in time does not), runs are deterministic with
 * the seed, and the flags rebuild bench:autoscaling's setup exactly.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { createPolicy } from '../../src/autoscaler/policies/index.js';
import { getProfile } from '../../src/engine-model/profiles.js';
import { routingSpec } from '../../src/router/presets.js';
import { type SimSummary, Simulation } from '../../src/sim/simulator.js';
import { logGamma, SERVEGEN_WINDOW_S, servegenTrace } from '../../src/traces/servegen.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TRACES = fileURLToPath(new URL('../../../traces/', import.meta.url));
const WINDOWS = join(TRACES, 'servegen_reason_deepseek-r1_windows.csv.gz');
const LENGTHS = join(TRACES, 'AzureLLMInferenceTrace_conv.csv');

const sim = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'sim', ...args], { encoding: 'utf8' });
const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as SimSummary;

/**
 * The expected arrival count in [0, endS) at rate factor f, and its standard deviation: each active
 * (client, window) is a stationary renewal process with the fitted shape's CV, whose count over n
 * mean gaps has variance ≈ n · CV² (the window's part of [0, endS) only).
 */
function expectedCount(endS: number, f: number): { mean: number; sd: number } {
  const lines = gunzipSync(readFileSync(WINDOWS)).toString('utf8').trim().split('\n').slice(1);
  let mean = 0;
  let variance = 0;
  for (const line of lines) {
    const [, start, rate, , dist, shape] = line.split(',');
    const s = Number(start);
    if (dist === '' || s >= endS) continue;
    const k = Number(shape);
    const cv2 = dist === 'Gamma' ? 1 / k : Math.exp(logGamma(1 + 2 / k) - 2 * logGamma(1 + 1 / k)) - 1;
    const n = Number(rate) * f * (Math.min(endS, s + SERVEGEN_WINDOW_S) - s);
    mean += n;
    variance += n * cv2;
  }
  return { mean, sd: Math.sqrt(variance) };
}

const arrivalsMs = (out: string): number[] =>
  readFileSync(join(out, 'requests.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { arrival_ms: number }).arrival_ms);

describe('switchyard sim on a ServeGen window file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-simsg-'));
  const END_S = 60;
  const run = (f: string, out: string) =>
    sim(
      '--trace',
      WINDOWS,
      '--lengths-from',
      LENGTHS,
      '--window',
      `0:${END_S}`,
      '--rate-factor',
      f,
      '--profile',
      'qwen2.5-0.5b-h100',
      '--replicas',
      '8',
      '--out',
      join(dir, out),
    );

  it('--rate-factor 2 doubles the arrivals in the same span, deterministically', () => {
    const counts: number[] = [];
    for (const f of ['1', '2']) {
      const r = run(f, `f${f}`);
      assert.equal(r.status, 0, r.stderr);
      const times = arrivalsMs(join(dir, `f${f}`));
      const want = expectedCount(END_S, Number(f));
      assert.equal(summaryOf(join(dir, `f${f}`)).requests, times.length);
      assert.ok(
        Math.abs(times.length - want.mean) < 4 * want.sd,
        `factor ${f}: ${times.length} arrivals, expected ${want.mean.toFixed(0)} ± ${(4 * want.sd).toFixed(0)}`,
      );
      // The shape in time is kept: arrivals still fill the window, not the first 1/f of it.
      assert.ok(Math.max(...times) > (END_S - 2) * 1000 && Math.max(...times) < END_S * 1000);
      counts.push(times.length);
    }
    // Doubled: the factor-2 count against twice the factor-1 expectation, within 4 sd of it.
    const twice = expectedCount(END_S, 2);
    assert.ok(Math.abs(counts[1]! - 2 * expectedCount(END_S, 1).mean) < 4 * twice.sd);
    const again = run('2', 'f2-again');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(
      readFileSync(join(dir, 'f2-again', 'requests.jsonl'), 'utf8'),
      readFileSync(join(dir, 'f2', 'requests.jsonl'), 'utf8'),
      'same seed, same records',
    );
  });

  it('--rate-factor is refused on a per-request trace and below 0', () => {
    const r = sim('--trace', LENGTHS, '--rate-factor', '2', '--out', join(dir, 'bad'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--rate-factor .*--rate-scale/);
    const neg = sim(
      '--trace',
      WINDOWS,
      '--lengths-from',
      LENGTHS,
      '--rate-factor',
      '-1',
      '--out',
      join(dir, 'bad'),
    );
    assert.equal(neg.status, 2);
  });

  it("reproduces bench:autoscaling's setup from flags: the same summary as the bench's own construction", async () => {
    // bench/autoscaling.ts runPolicy (KPA row), over 5 minutes at a quarter of the rates.
    const profile = getProfile('llama3-70b-h100-tp4');
    const slo = { ttftMs: 2000, tpotMs: 100 };
    const bench = new Simulation({
      pools: [
        {
          name: 'm',
          endpoints: [],
          scaling: {
            policy: createPolicy('kpa', { targetConcurrency: 24.19 }),
            autoscaler: {
              minReplicas: 0,
              maxReplicas: 32,
              catalog: [
                {
                  name: 'h100x4',
                  profile: profile.name,
                  capacity: 1,
                  onDemandUsdPerHour: profile.costPerHourUsd,
                },
              ],
              maxSpotShare: 0,
              maxSpotSharePerType: 1,
              replicaRps: 4.311,
              coldStartMs: profile.coldStartMs,
              slo: { ...slo, quantile: 0.9 },
            },
            initialReplicas: 1,
          },
        },
      ],
      routing: routingSpec('default'),
      seed: 1,
      slo,
    });
    const trace = await servegenTrace(WINDOWS, LENGTHS, {
      seed: 1,
      rateFactor: 0.25,
      window: { startS: 0, endS: 300 },
    });
    const want = await bench.run(trace.records);
    const out = join(dir, 'bench-kpa');
    const r = sim(
      '--trace',
      WINDOWS,
      '--lengths-from',
      LENGTHS,
      '--rate-factor',
      '0.25',
      '--window',
      '0:300',
      '--profile',
      'llama3-70b-h100-tp4',
      '--autoscale',
      'kpa',
      '--autoscale-options',
      '{"targetConcurrency":24.19}',
      '--min-replicas',
      '0',
      '--max-replicas',
      '32',
      '--initial-replicas',
      '1',
      '--replica-rps',
      '4.311',
      '--slo-ttft-ms',
      '2000',
      '--slo-tpot-ms',
      '100',
      '--endpoint-concurrency',
      '256',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    const got = summaryOf(out);
    assert.ok(want.requests > 500);
    for (const k of [
      'requests',
      'completed',
      'slo_attainment',
      'replica_seconds',
      'cost_usd',
      'cold_starts',
    ] as const)
      assert.equal(got[k], want[k], k);
    assert.deepEqual(got.ttft_ms, want.ttft_ms);
    assert.equal(got.autoscaling?.scale_changes, want.autoscaling?.scale_changes);
    assert.equal(got.autoscaling?.max_replicas, want.autoscaling?.max_replicas);
  });
});
