/**
 * ServeGen window statistics → generated arrivals: rates, order, determinism, lengths, time windows.
 * Fixtures are tiny gzip CSVs written to a temp dir; one test reads the shipped deepseek-r1 file
 * (traces/).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { TraceError } from '../../src/traces/loaders.js';
import type { TraceRecord } from '../../src/traces/record.js';
import { logGamma, SERVEGEN_HEADER, servegenTrace } from '../../src/traces/servegen.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-servegen-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
/** Writes rows `client,window_start_s,rate_rps,cv,iat_dist,iat_shape,iat_scale` as a gzip file. */
function windowsFile(rows: readonly string[], header = SERVEGEN_HEADER): string {
  const path = join(dir, `w${fileNo++}.csv.gz`);
  writeFileSync(path, gzipSync(`${[header, ...rows].join('\n')}\n`));
  return path;
}

/** A lengths source of fixed records (with hash ids, which must not come through); counts opens. */
function lengthsOf(pairs: readonly [number, number][]): {
  open: () => AsyncIterable<TraceRecord>;
  opens: number;
} {
  const src = {
    opens: 0,
    open: async function* (): AsyncGenerator<TraceRecord> {
      src.opens++;
      for (const [i, o] of pairs) yield { arrivalMs: 0, inputTokens: i, outputTokens: o, hashIds: [1, 2, 3] };
    },
  };
  return src;
}

const ONE: [number, number][] = [[100, 10]];

async function collect(records: AsyncIterable<TraceRecord>): Promise<TraceRecord[]> {
  const out: TraceRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

function assertSorted(recs: readonly TraceRecord[]): void {
  for (let i = 1; i < recs.length; i++)
    assert.ok(recs[i]!.arrivalMs >= recs[i - 1]!.arrivalMs, `order at ${i}`);
}

describe('servegenTrace', () => {
  it('one Poisson client at 10 req/s gives about 6,000 arrivals, sorted, inside the window', async () => {
    const path = windowsFile(['0,0,10,1,Gamma,1,0.1']);
    const trace = await servegenTrace(path, lengthsOf(ONE).open, { seed: 7 });
    assert.deepEqual(trace.info, { format: 'servegen', hasBlockHashes: false });
    const recs = await collect(trace.records);
    assert.ok(Math.abs(recs.length - 6000) < 240, `count ${recs.length}`); // Poisson σ ≈ 77
    assertSorted(recs);
    assert.ok(recs.every((r) => r.arrivalMs >= 0 && r.arrivalMs < 600_000));
    assert.ok(recs.every((r) => r.tenant === 'client-0' && r.hashIds === undefined));
  });

  it('rescales the fitted distribution to the published rate (or not, when asked)', async () => {
    // Fitted mean iat 0.2 s (5 req/s) but rate_rps says 10: rescaled ≈ 6,000, raw ≈ 3,000.
    const path = windowsFile(['0,0,10,1,Gamma,1,0.2']);
    const scaled = await collect((await servegenTrace(path, lengthsOf(ONE).open)).records);
    const raw = await collect((await servegenTrace(path, lengthsOf(ONE).open, { rescale: false })).records);
    assert.ok(Math.abs(scaled.length - 6000) < 240, `rescaled count ${scaled.length}`);
    assert.ok(Math.abs(raw.length - 3000) < 170, `raw count ${raw.length}`);
  });

  it('Weibull clients: the mean count per window is rate × 600', async () => {
    // Weibull(0.5, λ): mean 2λ, CV² = 5. Fitted mean 0.4 s; rescaled to 0.2 s (5 req/s) → 3,000/window.
    const rows = Array.from({ length: 10 }, (_, w) => `3,${w * 600},5,2.2,Weibull,0.5,0.2`);
    const recs = await collect((await servegenTrace(windowsFile(rows), lengthsOf(ONE).open)).records);
    const perWindow = recs.length / 10; // σ of the mean ≈ √(5·3000/10) ≈ 39
    assert.ok(Math.abs(perWindow - 3000) < 150, `mean per window ${perWindow}`);
    assertSorted(recs);
    assert.ok(recs.at(-1)!.arrivalMs < 6000_000);
  });

  it('bursty clients are not biased at window edges: 3 requests a window stay 3 on average', async () => {
    // Gamma(0.25): CV 2. A renewal process started with a full iat at each window start would
    // average ≈ 3 + (CV² − 1)/2 = 4.5 here; the stationary start gives 3.
    const rows = Array.from({ length: 1000 }, (_, w) => `1,${w * 600},0.005,2,Gamma,0.25,100`);
    const recs = await collect((await servegenTrace(windowsFile(rows), lengthsOf(ONE).open)).records);
    const perWindow = recs.length / 1000; // σ of the mean ≈ √(4·3/1000) ≈ 0.11
    assert.ok(Math.abs(perWindow - 3) < 0.4, `mean per window ${perWindow}`);
  });

  it('is deterministic: same seed, same records; another seed, other records', async () => {
    const path = windowsFile(['0,0,1,1,Gamma,1,1', '1,0,0.5,1.3,Weibull,0.8,2']);
    const open = lengthsOf(ONE).open;
    const a = await collect((await servegenTrace(path, open, { seed: 3 })).records);
    const b = await collect((await servegenTrace(path, open, { seed: 3 })).records);
    const c = await collect((await servegenTrace(path, open, { seed: 4 })).records);
    assert.ok(a.length > 100);
    assert.deepEqual(a, b);
    assert.notDeepEqual(
      a.map((r) => r.arrivalMs),
      c.map((r) => r.arrivalMs),
    );
    // The records object can be iterated again and gives the same records.
    const trace = await servegenTrace(path, open, { seed: 3 });
    assert.deepEqual(await collect(trace.records), await collect(trace.records));
  });

  it('does not depend on the order of the rows in the file', async () => {
    const rows = ['0,0,1,1,Gamma,1,1', '0,600,2,1,Gamma,1,1', '1,0,0.5,1,Weibull,1,2', '1,600,1,1,Gamma,1,1'];
    const open = lengthsOf(ONE).open;
    const a = await collect((await servegenTrace(windowsFile(rows), open)).records);
    const b = await collect((await servegenTrace(windowsFile([...rows].reverse()), open)).records);
    assert.deepEqual(a, b);
  });

  it('windows with no distribution (or no rows) produce nothing', async () => {
    const path = windowsFile([
      '0,0,0,0,,0,0',
      '0,600,1,1,Gamma,1,1',
      '0,1200,0,0,,0,0',
      '0,2400,1,1,Gamma,1,1',
    ]);
    const recs = await collect((await servegenTrace(path, lengthsOf(ONE).open)).records);
    assert.ok(recs.length > 0);
    const inWindow = (lo: number) =>
      recs.filter((r) => r.arrivalMs >= lo * 1000 && r.arrivalMs < (lo + 600) * 1000);
    assert.equal(inWindow(0).length, 0);
    assert.equal(inWindow(1200).length, 0);
    assert.equal(inWindow(1800).length, 0);
    assert.equal(inWindow(600).length + inWindow(2400).length, recs.length);
    const empty = windowsFile(['0,0,0,0,,0,0', '1,0,0,0,,0,0']);
    assert.deepEqual(await collect((await servegenTrace(empty, lengthsOf(ONE).open)).records), []);
  });

  it('takes token lengths in turn from the lengths trace, re-opening it, without its hash ids', async () => {
    const src = lengthsOf([
      [10, 1],
      [20, 2],
      [30, 3],
    ]);
    const path = windowsFile(['5,0,0.05,1,Gamma,1,20']); // ≈ 30 arrivals
    const recs = await collect((await servegenTrace(path, src.open)).records);
    assert.ok(recs.length >= 7, `count ${recs.length}`);
    recs.forEach((r, i) => {
      assert.equal(r.inputTokens, [10, 20, 30][i % 3]);
      assert.equal(r.outputTokens, [1, 2, 3][i % 3]);
      assert.equal(r.hashIds, undefined);
      assert.equal(r.hashBlockTokens, undefined);
    });
    assert.equal(src.opens, Math.ceil(recs.length / 3));
  });

  it('fails when the lengths trace has no records', async () => {
    const path = windowsFile(['0,0,1,1,Gamma,1,1']);
    const trace = await servegenTrace(path, lengthsOf([]).open);
    await assert.rejects(collect(trace.records), TraceError);
  });

  it('reads lengths from a per-request trace file given by path', async () => {
    const lengthsPath = join(dir, 'mooncake.jsonl');
    writeFileSync(
      lengthsPath,
      '{"timestamp": 0, "input_length": 700, "output_length": 7, "hash_ids": [1, 2]}\n' +
        '{"timestamp": 5, "input_length": 800, "output_length": 8, "hash_ids": [1, 3]}\n',
    );
    const trace = await servegenTrace(windowsFile(['0,0,0.02,1,Gamma,1,50']), lengthsPath);
    const recs = await collect(trace.records);
    assert.ok(recs.length >= 2);
    assert.deepEqual(
      recs.slice(0, 3).map((r) => [r.inputTokens, r.outputTokens, r.hashIds]),
      [
        [700, 7, undefined],
        [800, 8, undefined],
        [700, 7, undefined],
      ].slice(0, Math.min(3, recs.length)),
    );
  });

  it('merges clients in time order, each with its own tenant', async () => {
    const path = windowsFile(['1,0,1,1,Gamma,1,1', '2,0,2,1,Gamma,1,0.5']);
    const recs = await collect((await servegenTrace(path, lengthsOf(ONE).open)).records);
    assertSorted(recs);
    const n1 = recs.filter((r) => r.tenant === 'client-1').length;
    const n2 = recs.filter((r) => r.tenant === 'client-2').length;
    assert.equal(n1 + n2, recs.length);
    assert.ok(Math.abs(n1 - 600) < 100, `client-1 ${n1}`); // Poisson σ ≈ 24
    assert.ok(Math.abs(n2 - 1200) < 140, `client-2 ${n2}`); // σ ≈ 35
    // The two streams interleave rather than one following the other.
    const firstHalf = recs.slice(0, recs.length / 2);
    assert.ok(
      firstHalf.some((r) => r.tenant === 'client-1') && firstHalf.some((r) => r.tenant === 'client-2'),
    );
  });

  it('a time window gives the full run’s arrivals inside it, re-based to 0', async () => {
    const rows = [
      '0,0,1,1,Gamma,1,1',
      '0,600,1,1,Gamma,1,1',
      '0,1200,1,1,Gamma,1,1',
      '4,600,2,1,Weibull,2,1',
    ];
    const path = windowsFile(rows);
    const full = await collect((await servegenTrace(path, lengthsOf(ONE).open)).records);
    const part = await collect(
      (await servegenTrace(path, lengthsOf(ONE).open, { window: { startS: 900, endS: 1500 } })).records,
    );
    const expected = full
      .filter((r) => r.arrivalMs >= 900_000 && r.arrivalMs < 1_500_000)
      .map((r) => [r.arrivalMs - 900_000, r.tenant]);
    assert.ok(expected.length > 500);
    assert.equal(part.length, expected.length);
    part.forEach((r, i) => {
      assert.ok(Math.abs(r.arrivalMs - (expected[i]![0] as number)) < 1e-6);
      assert.equal(r.tenant, expected[i]![1]);
    });
    assert.ok(part.every((r) => r.arrivalMs >= 0 && r.arrivalMs < 600_000));
    // Whole windows: [600, 1200) is the second window alone.
    const second = await collect(
      (await servegenTrace(path, lengthsOf(ONE).open, { window: { startS: 600, endS: 1200 } })).records,
    );
    assert.equal(second.length, full.filter((r) => r.arrivalMs >= 600_000 && r.arrivalMs < 1_200_000).length);
  });

  it('rejects a file that is not a window file, an unknown distribution and a bad window', async () => {
    const open = lengthsOf(ONE).open;
    await assert.rejects(servegenTrace(windowsFile([], 'a,b,c'), open), TraceError);
    await assert.rejects(
      servegenTrace(windowsFile(['0,0,1,1,Lognormal,1,1']), open),
      /Gamma, Weibull or empty/,
    );
    await assert.rejects(servegenTrace(windowsFile(['0,0,1,1,Gamma,0,1']), open), /must be > 0/);
    await assert.rejects(
      servegenTrace(windowsFile(['0,0,1,1,Gamma,1,1', '0,0,1,1,Gamma,1,1']), open),
      /two rows/,
    );
    const ok = windowsFile(['0,0,1,1,Gamma,1,1']);
    await assert.rejects(servegenTrace(ok, open, { window: { startS: 100, endS: 50 } }), TraceError);
  });

  it('logGamma matches known values', () => {
    assert.ok(Math.abs(logGamma(1)) < 1e-12);
    assert.ok(Math.abs(logGamma(5) - Math.log(24)) < 1e-12);
    assert.ok(Math.abs(logGamma(0.5) - 0.5 * Math.log(Math.PI)) < 1e-12);
    assert.ok(Math.abs(logGamma(101) - 363.73937555556347) < 1e-9); // ln 100!
  });

  const real = fileURLToPath(
    new URL('../../../traces/servegen_reason_deepseek-r1_windows.csv.gz', import.meta.url),
  );
  it('reads the first window of the shipped deepseek-r1 file', async () => {
    const trace = await servegenTrace(real, lengthsOf(ONE).open, { seed: 1, window: { endS: 600 } });
    const recs = await collect(trace.records);
    assertSorted(recs);
    assert.ok(recs.every((r) => r.arrivalMs >= 0 && r.arrivalMs < 600_000 && /^client-\d+$/.test(r.tenant!)));
    // Σ rate_rps × 600 over the clients of window 0 is 8,918; over seeds the count spreads about ±4 %.
    assert.ok(Math.abs(recs.length - 8918) < 900, `count ${recs.length}`);
    assert.ok(new Set(recs.map((r) => r.tenant)).size > 5);
  });
});
