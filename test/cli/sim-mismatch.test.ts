/** `switchyard sim --mismatch X [--mismatch-seed N] [--correction on|off]`: seeded, validated, recorded. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const sim = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'sim', ...args], { encoding: 'utf8' });

/** Forty requests 50 ms apart, in a Mooncake-format file. */
function trace(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-simm-'));
  const file = join(dir, 'trace.jsonl');
  const line = (i: number) =>
    JSON.stringify({
      timestamp: 50 * i,
      input_length: 1024 + 256 * (i % 5),
      output_length: 16,
      hash_ids: [i],
    });
  writeFileSync(file, `${Array.from({ length: 40 }, (_, i) => line(i)).join('\n')}\n`);
  return { dir, file };
}

const FLEET = ['--profile', 'qwen2.5-1.5b-h100', '--replicas', '2'];

function records(out: string): { ttft_ms: number; predicted_ttft_ms: number | null }[] {
  return readFileSync(join(out, 'requests.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('switchyard sim: --mismatch and --correction', () => {
  it('a seed is one fleet of engines; another seed, another fleet; the predicted TTFT is recorded', () => {
    const { dir, file } = trace();
    const run = (name: string, ...args: string[]) => {
      const out = join(dir, name);
      const r = sim('--trace', file, ...FLEET, ...args, '--out', out);
      assert.equal(r.status, 0, r.stderr);
      return records(out);
    };
    const a = run('a', '--mismatch', '0.3', '--mismatch-seed', '4', '--correction', 'on');
    const again = run('b', '--mismatch', '0.3', '--mismatch-seed', '4', '--correction', 'on');
    assert.deepEqual(again, a);
    const other = run('c', '--mismatch', '0.3', '--mismatch-seed', '5', '--correction', 'on');
    assert.notDeepEqual(
      other.map((r) => r.ttft_ms),
      a.map((r) => r.ttft_ms),
    );
    for (const r of a) assert.ok(typeof r.predicted_ttft_ms === 'number' && r.predicted_ttft_ms > 0);
    const matched = run('d');
    assert.notDeepEqual(
      matched.map((r) => r.ttft_ms),
      a.map((r) => r.ttft_ms),
    );
    // A policy without a cost model predicts nothing.
    for (const r of run('e', '--policy', 'round-robin')) assert.equal(r.predicted_ttft_ms, null);
  });

  it('refuses bad values with exit code 2, naming the flag', () => {
    const { dir, file } = trace();
    const out = join(dir, 'out');
    for (const [args, message] of [
      [['--mismatch', '1'], /--mismatch must be in \[0, 1\)/],
      [['--mismatch=-0.1'], /--mismatch must be a non-negative number/],
      [['--mismatch-seed', '3'], /--mismatch-seed goes with --mismatch/],
      [['--mismatch', '0.2', '--mismatch-seed', '1.5'], /--mismatch-seed must be a whole number/],
      [['--correction', 'maybe'], /--correction must be on or off/],
    ] as const) {
      const r = sim('--trace', file, ...FLEET, ...args, '--out', out);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
    const help = sim('--help');
    for (const flag of ['--mismatch', '--mismatch-seed', '--correction'])
      assert.ok(help.stdout.includes(flag), `help names ${flag}`);
  });
});
