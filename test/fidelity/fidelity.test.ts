/**
 * The fidelity replay: inference-perf's workload generated exactly (counts, arrival times, slots,
 * prefix blocks), a directory it cannot read refused with the file and key named, and
 * `switchyard fidelity` run as a user runs it on a small directory of made-up measurements whose
 * errors are computed here by hand from the replay itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FidelityDataError, loadFidelityData } from '../../src/fidelity/data.js';
import { replayExperiment } from '../../src/fidelity/replay.js';
import { PROMPT_TOKEN_FACTOR, inferencePerfRequests } from '../../src/fidelity/workload.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const WORKLOAD = {
  groups: 2,
  users: 2,
  sys: 32,
  q: 32,
  out: 4,
  stages: [[2, 5] as [number, number], [4, 2] as [number, number]],
};

describe('fidelity: the inference-perf workload', () => {
  it('⌊rate × duration⌋ requests per stage, gaps normalised to the stage, slots in turn, prompts sys + q', () => {
    const r = inferencePerfRequests(WORKLOAD, 16, 7);
    assert.equal(r.records.length, 10 + 8);
    assert.deepEqual([...r.stageOf], [...Array(10).fill(0), ...Array(8).fill(1)]);
    // ConstantLoadTimer: the last gap ends exactly at the stage's end.
    assert.ok(Math.abs(r.records[9]!.arrivalMs - 5000) < 1e-6, `${r.records[9]!.arrivalMs}`);
    assert.ok(Math.abs(r.records[17]!.arrivalMs - 7000) < 1e-6, `${r.records[17]!.arrivalMs}`);
    assert.deepEqual(r.stages, [
      { startMs: 0, endMs: 5000, rate: 2 },
      { startMs: 5000, endMs: 7000, rate: 4 },
    ]);
    for (let i = 1; i < r.records.length; i++)
      assert.ok(r.records[i]!.arrivalMs >= r.records[i - 1]!.arrivalMs);
    const tokens = Math.round(64 * PROMPT_TOKEN_FACTOR); // 67
    assert.equal(r.records[0]!.inputTokens, tokens);
    assert.equal(r.records[0]!.outputTokens, 4);
    // Request i is user session i mod 4, which repeats its prompt every round.
    assert.deepEqual(
      r.records.slice(0, 6).map((x) => x.session),
      ['user-0', 'user-1', 'user-2', 'user-3', 'user-0', 'user-1'],
    );
    assert.deepEqual(r.records[4]!.hashIds, r.records[0]!.hashIds);
    // ⌊67/16⌋ = 4 full blocks; the system prompt (round(32 × 1.051) = 34 tokens) covers 2 of them.
    const blocks = r.records.slice(0, 4).map((x) => x.hashIds!);
    for (const b of blocks) assert.equal(b.length, 4);
    const sysBlocks = new Set(blocks.map((b) => `${b[0]},${b[1]}`));
    assert.equal(sysBlocks.size, 2, 'two groups, two distinct system prompts among four slots');
    assert.equal(new Set(blocks.map((b) => b[2])).size, 4, 'each slot has its own question');
  });

  it('fresh questions share only the system prompt between rounds', () => {
    const r = inferencePerfRequests(WORKLOAD, 16, 7, true);
    assert.deepEqual(r.records[4]!.hashIds!.slice(0, 2), r.records[0]!.hashIds!.slice(0, 2));
    assert.notEqual(r.records[4]!.hashIds![2], r.records[0]!.hashIds![2]);
  });
});

/** A fidelity directory with one experiment whose "measurements" are given. */
function dataDir(real: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'swy-fidelity-'));
  const experiments = {
    experiments: [{ id: 'x', profile: 'qwen2.5-1.5b-h100', workload: 'w', mbt: 2048, seqs: 128, ...extra }],
    workloads: {
      w: {
        ...WORKLOAD,
        sys: 100,
        q: 400,
        out: 50,
        stages: [
          [2, 10],
          [4, 10],
        ],
      },
    },
  };
  writeFileSync(join(dir, 'experiments.json'), JSON.stringify(experiments));
  writeFileSync(join(dir, 'real_metrics.json'), JSON.stringify({ x: { real, others: {} } }));
  return dir;
}

const stage = (ttft: number, e2e: number) => ({
  ttft_mean: ttft,
  ttft_p90: ttft,
  ttft_p99: ttft,
  e2e_mean: e2e,
  e2e_p99: e2e,
});

describe('fidelity: data and command', () => {
  it('a directory that does not fit the layout is refused with the file and the key', () => {
    const dir = dataDir({ '0': stage(10, 100) }, { mbt: 'lots' });
    assert.throws(
      () => loadFidelityData(dir),
      (e: Error) => {
        assert.ok(e instanceof FidelityDataError);
        assert.match(e.message, /experiments\.json: experiments\.0\.mbt/);
        return true;
      },
    );
    const empty = mkdtempSync(join(tmpdir(), 'swy-fidelity-'));
    mkdirSync(join(empty, 'sub'));
    assert.throws(() => loadFidelityData(empty), /experiments\.json/);
  });

  it('switchyard fidelity prints and writes the replay against the measurements, with exact errors', async () => {
    const dir = dataDir({ '0': stage(20, 400), '1': stage(25, 500) });
    const data = loadFidelityData(dir);
    const replay = await replayExperiment(data, data.experiments[0]!);
    const json = join(dir, 'out.json');
    const run = spawnSync(process.execPath, [MAIN, 'fidelity', '--data', dir, '--json', json], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /\| x \| 1 \| 4 \|/);
    const out = JSON.parse(readFileSync(json, 'utf8')) as {
      medians: Record<string, number>;
      saturated: string[];
      stages: { stage: string; sim: { e2e_mean: number }; error: { e2e_mean: number } }[];
    };
    assert.deepEqual(Object.keys(out.medians).sort(), [
      'e2e_mean',
      'e2e_p99',
      'tpot',
      'ttft_mean',
      'ttft_p99',
    ]);
    assert.deepEqual(out.saturated, []);
    assert.equal(out.stages.length, 2);
    const realE2e = [400, 500];
    const errs = replay.map((s, i) => (s.sim.e2e_mean - realE2e[i]!) / realE2e[i]!);
    for (const [i, s] of out.stages.entries()) {
      assert.ok(
        Math.abs(s.sim.e2e_mean - replay[i]!.sim.e2e_mean) < 1e-9,
        'the CLI replays what the module does',
      );
      assert.ok(Math.abs(s.error.e2e_mean - errs[i]!) < 1e-9);
    }
    // The median of two absolute errors is their mean.
    const expected = (Math.abs(errs[0]!) + Math.abs(errs[1]!)) / 2;
    assert.ok(Math.abs(out.medians.e2e_mean! - expected) < 1e-9);
    // TPOT is (E2E mean − TTFT mean) / (out − 1) on both sides.
    const s0 = replay[0]!;
    assert.ok(Math.abs(s0.real.tpot - (400 - 20) / 49) < 1e-9);
    assert.ok(Math.abs(s0.sim.tpot - (s0.sim.e2e_mean - s0.sim.ttft_mean) / 49) < 1e-9);
  });

  it('a stage the model cannot serve is reported as saturated', async () => {
    const dir = dataDir({ '0': stage(20, 400) }, { seqs: 1 });
    const data = loadFidelityData(dir);
    // One sequence at a time: about 50 steps of 1–2 ms per request, so some tens of requests per
    // second at most: 2 then 4 arrivals/s are served, 50/s for 10 s are not.
    const heavy = {
      ...data,
      workloads: { w: { ...data.workloads.w!, stages: [[50, 10] as [number, number]] } },
    };
    const [r] = await replayExperiment(heavy, data.experiments[0]!);
    assert.equal(r!.saturated, true);
    const [ok] = await replayExperiment(data, data.experiments[0]!);
    assert.equal(ok!.saturated, false);
  });
});
