/** `switchyard sim --autoscale`: the flags, the oracle, a catalog with spot, and refusals. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const sim = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'sim', ...args], { encoding: 'utf8' });

/** Requests at 100 s and 400 s, in a Mooncake-format file (timestamps in ms). */
function trace(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-simas-'));
  const file = join(dir, 'trace.jsonl');
  const line = (t: number, i: number) =>
    JSON.stringify({ timestamp: t, input_length: 256, output_length: 4, hash_ids: [i] });
  writeFileSync(file, `${[100_000, 400_000].map(line).join('\n')}\n`);
  return { dir, file };
}

const FLEET = ['--profile', 'qwen2.5-1.5b-h100', '--replica-rps', '1'];

interface Summary {
  cold_starts: number;
  replica_seconds: number;
  autoscaling: { policy: string; cold_start_waits: number } | null;
}

const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;

describe('switchyard sim --autoscale', () => {
  it('kpa from zero: each lone request wakes the pool (a cold start) and KPA takes it back to zero', () => {
    const { dir, file } = trace();
    const out = join(dir, 'kpa');
    const r = sim('--trace', file, ...FLEET, '--autoscale', 'kpa', '--max-replicas', '2', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /autoscaling \(kpa\): .* 2 cold starts/);
    const s = summaryOf(out);
    assert.equal(s.autoscaling?.policy, 'kpa');
    assert.equal(s.cold_starts, 2, 'the pool went back to zero between the requests 300 s apart');
    assert.equal(s.autoscaling?.cold_start_waits, 2);
  });

  it('the oracle starts the replica one cold start ahead: no request meets a cold pool', () => {
    const { dir, file } = trace();
    const out = join(dir, 'oracle');
    const r = sim('--trace', file, ...FLEET, '--autoscale', 'oracle', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const s = summaryOf(out);
    assert.equal(s.autoscaling?.cold_start_waits, 0);
    assert.equal(s.cold_starts, 2);
  });

  it('a catalog file with spot prices: spot replicas are bought and costed', () => {
    const { dir, file } = trace();
    const catalog = join(dir, 'catalog.yaml');
    writeFileSync(
      catalog,
      '- { name: a, profile: qwen2.5-1.5b-h100, onDemandUsdPerHour: 4, spotUsdPerHour: 1 }\n' +
        '- { name: b, profile: qwen2.5-1.5b-h100, onDemandUsdPerHour: 4, spotUsdPerHour: 1.5 }\n',
    );
    const out = join(dir, 'spot');
    const r = sim(
      '--trace',
      file,
      ...FLEET,
      '--autoscale',
      'static',
      '--min-replicas',
      '2',
      '--max-replicas',
      '2',
      '--initial-replicas',
      '2',
      '--catalog',
      catalog,
      '--max-spot-share',
      '1',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      cost_usd: number;
      replica_seconds: number;
      autoscaling: { replica_seconds_by_tier: { spot: number; 'on-demand': number } };
    };
    // Two spot replicas, at most half the capacity on each type: one of a ($1/h), one of b ($1.5/h).
    assert.equal(s.autoscaling.replica_seconds_by_tier['on-demand'], 0);
    const each = s.replica_seconds / 2;
    assert.ok(Math.abs(s.cost_usd - (each * 2.5) / 3600) < 1e-9, `cost ${s.cost_usd}`);
  });

  it('refuses bad values with exit code 2, naming the flag', () => {
    const { dir, file } = trace();
    const out = join(dir, 'bad');
    const cases: [string[], RegExp][] = [
      [['--autoscale', 'nope'], /unknown --autoscale nope/],
      [['--min-replicas', '1'], /--min-replicas goes with --autoscale/],
      [['--autoscale', 'kpa', '--min-replicas', '3', '--max-replicas', '2'], /--max-replicas \(2\) is below/],
      [['--autoscale', 'kpa', '--max-spot-share', '2'], /--max-spot-share must be in \[0, 1\]/],
    ];
    for (const [args, message] of cases) {
      const r = sim('--trace', file, ...FLEET, ...args, '--out', out);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
