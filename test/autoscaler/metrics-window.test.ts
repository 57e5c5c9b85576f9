/**
 * MetricsWindow: exact time averages and rates on hand-built series, the window edges, quantiles
 * from the log-scale histogram, and the ring's reuse of slots.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  latencyBin,
  latencyBinEdgeMs,
  MetricsWindow,
  type PoolSample,
} from '../../src/autoscaler/metrics-window.js';
import { AssertionError } from '../../src/core/assert.js';

function s(inFlight: number, queued = 0, engineWaiting = 0, kvUsage = Number.NaN): PoolSample {
  return { inFlight, queued, engineWaiting, kvUsage };
}

/** 600 000^(i/48): the log-scale position i (fractional inside a bin) of the 1 ms … 600 s histogram. */
const at = (i: number) => 600_000 ** (i / 48);

describe('MetricsWindow gauges', () => {
  it('averages each sample over the time until the next, the latest until the query time', () => {
    const w = new MetricsWindow();
    w.sample(0, s(2, 1, 4, 0.5));
    w.sample(1000, s(4, 0, 2, Number.NaN));
    w.sample(3000, s(0, 0, 0, 0.8));
    // (2500, 3500]: 4 over [2500, 3000), 0 over [3000, 3500) — half of bucket (2000, 3000] counts.
    w.at(3500);
    assert.equal(w.concurrency(1000), 2);
    w.at(4000);
    // concurrency = inFlight + queued: 3 for 1 s, 4 for 2 s, 0 for 1 s.
    assert.equal(w.concurrency(4000), (3 * 1 + 4 * 2 + 0 * 1) / 4);
    assert.equal(w.concurrency(2000), (4 * 1 + 0 * 1) / 2);
    assert.equal(w.queued(4000), 0.25);
    assert.equal(w.engineWaiting(4000), (4 * 1 + 2 * 2 + 0 * 1) / 4);
    // kvUsage skips the 2 s whose sample had none: (0.5 × 1 + 0.8 × 1) / 2.
    assert.equal(w.kvUsage(4000), 0.65);
    assert.equal(w.kvUsage(2000), 0.8);
    assert.equal(w.kvUsage(1000), 0.8);
  });

  it('averages only over the time since the first sample when the window reaches before it', () => {
    const w = new MetricsWindow();
    assert.equal(w.concurrency(60_000), 0);
    assert.ok(Number.isNaN(w.kvUsage(60_000)));
    w.sample(10_000, s(3));
    w.at(15_000);
    assert.equal(w.concurrency(60_000), 3);
    w.sample(15_000, s(1));
    w.at(20_000);
    assert.equal(w.concurrency(60_000), (3 * 5 + 1 * 5) / 10);
  });

  it('answers the latest sample when the first sample is at the query time', () => {
    const w = new MetricsWindow();
    w.sample(5000, s(7, 0, 0, 0.25));
    assert.equal(w.concurrency(60_000), 7);
    assert.equal(w.kvUsage(60_000), 0.25);
  });

  it('is NaN for kvUsage when no sample in the window had one', () => {
    const w = new MetricsWindow();
    w.sample(0, s(1, 0, 0, 0.5));
    w.sample(10_000, s(1));
    w.at(20_000);
    assert.ok(Number.isNaN(w.kvUsage(10_000)));
    assert.equal(w.kvUsage(20_000), 0.5);
  });

  it('clamps a window longer than the span, and keeps a long-held sample only for the span', () => {
    const w = new MetricsWindow({ spanMs: 10_000 });
    w.sample(0, s(10));
    w.sample(15_000, s(0)); // 10 held for 15 s: longer than the 11-slot ring
    w.at(20_000);
    assert.equal(w.concurrency(60_000), (10 * 5 + 0 * 5) / 10);
    assert.equal(w.concurrency(10_000), 5);
  });

  it('averages exactly while the ring wraps several times', () => {
    const w = new MetricsWindow({ spanMs: 10_000 });
    for (let t = 0; t <= 40; t++) w.sample(t * 1000, s(t));
    // (30 s, 40 s]: the samples 30 … 39, one second each.
    assert.equal(w.concurrency(10_000), 34.5);
    assert.equal(w.concurrency(4000), (36 + 37 + 38 + 39) / 4);
  });
});

describe('MetricsWindow rates', () => {
  it('counts an event at exactly Q and not one at exactly Q − W', () => {
    const w = new MetricsWindow();
    w.at(0);
    w.arrival(10_000);
    w.arrival(20_000);
    w.arrival(20_000);
    assert.equal(w.arrivalRate(10_000), 2 / 10);
    assert.equal(w.arrivalRate(20_000), 3 / 20);
  });

  it('divides by the time since the first call, at least a second, when the window reaches before it', () => {
    const w = new MetricsWindow();
    for (let i = 0; i < 5; i++) w.arrival(2000);
    w.at(6000);
    assert.equal(w.arrivalRate(60_000), 5 / 4);
    const v = new MetricsWindow();
    for (let i = 0; i < 3; i++) v.arrival(10_000);
    v.at(10_500);
    assert.equal(v.arrivalRate(60_000), 3);
  });

  it('rates completions and output tokens', () => {
    const w = new MetricsWindow();
    w.at(0);
    w.completed(1000, 20, 100);
    w.completed(2000, Number.NaN, 50); // a one-token reply: counted, but not for TPOT
    w.at(10_000);
    assert.equal(w.completionRate(10_000), 0.2);
    assert.equal(w.tokensPerSecond(10_000), 15);
    // One TPOT (20 ms, bin 10): q = 1 reads the bin's upper edge.
    assert.equal(latencyBin(20), 10);
    assert.ok(Math.abs(w.tpotQuantile(1, 10_000) - at(11)) < 1e-9);
  });

  it('takes the bucket straddling Q − W pro rata', () => {
    const w = new MetricsWindow();
    w.at(0);
    for (let i = 0; i < 4; i++) w.arrival(1200); // bucket (1 s, 2 s]
    w.at(3500);
    // (1.5 s, 3.5 s] holds half of bucket (1 s, 2 s]: 2 of its 4 arrivals, over 2 s.
    assert.equal(w.arrivalRate(2000), 1);
    assert.equal(w.arrivalRate(3000), 4 / 3);
  });

  it('records a report older than the latest time at the latest time', () => {
    const w = new MetricsWindow();
    w.at(0);
    w.at(6000);
    w.arrival(5000);
    assert.equal(w.idleMs(), 0);
    assert.equal(w.arrivalRate(1000), 1);
  });

  it('does not read a slot the ring reused for a newer bucket, and empties it on reuse', () => {
    const w = new MetricsWindow({ spanMs: 10_000 }); // 11 slots: buckets 3 and 14 share one
    w.at(0);
    for (let i = 0; i < 5; i++) w.arrival(3500);
    w.at(14_500);
    assert.equal(w.arrivalRate(10_000), 0);
    w.arrival(14_500);
    w.at(15_000);
    assert.equal(w.arrivalRate(10_000), 0.1);
    assert.equal(w.arrivalRate(60_000), 0.1); // clamped to the 10 s span
  });
});

describe('MetricsWindow quantiles', () => {
  it('reads a single value back as its bin’s geometric midpoint', () => {
    const w = new MetricsWindow();
    w.firstToken(1000, 100);
    assert.equal(latencyBin(100), 16); // 600 000^(16/48) = 84.3 ≤ 100 < 111.3 = 600 000^(17/48)
    assert.ok(Math.abs(latencyBinEdgeMs(16) - 84.343) < 0.001);
    const median = w.ttftQuantile(0.5, 10_000);
    assert.ok(Math.abs(median - at(16.5)) < 1e-9);
    assert.ok(Math.abs(median - 96.88) < 0.01);
  });

  it('interpolates log-linearly inside the bin that holds rank q × count', () => {
    const w = new MetricsWindow();
    for (let i = 0; i < 9; i++) w.firstToken(1000, 10); // bin 8: [9.18, 12.12)
    w.firstToken(2000, 1000); // bin 24: [774.6, 1022.0)
    w.at(5000);
    assert.equal(latencyBin(10), 8);
    assert.equal(latencyBin(1000), 24);
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9 * b, `${a} ≠ ${b}`);
    close(w.ttftQuantile(0, 10_000), at(8));
    close(w.ttftQuantile(0.5, 10_000), at(8 + 5 / 9)); // rank 5 of the bin's 9
    close(w.ttftQuantile(0.95, 10_000), at(24.5)); // rank 9.5: half-way through bin 24's one value
    close(w.ttftQuantile(1, 10_000), at(25));
    // (1 s, 5 s]: the 1 000 ms value alone (the 10 ms ones, at exactly Q − W, are out).
    close(w.ttftQuantile(0.5, 4000), at(24.5));
  });

  it('clamps values outside 1 ms … 600 s to the end bins, and is NaN with nothing in the window', () => {
    const w = new MetricsWindow();
    assert.ok(Number.isNaN(w.ttftQuantile(0.5, 10_000))); // nothing recorded yet
    assert.equal(w.arrivalRate(10_000), 0);
    w.firstToken(1000, 0.5);
    w.firstToken(1000, 1e7);
    assert.equal(latencyBin(0.5), 0);
    assert.equal(latencyBin(1e7), 47);
    assert.equal(w.ttftQuantile(0, 10_000), 1);
    assert.ok(Math.abs(w.ttftQuantile(1, 10_000) - 600_000) < 1e-6);
    w.at(11_000);
    assert.ok(Number.isNaN(w.ttftQuantile(0.5, 10_000)));
    assert.ok(Number.isNaN(w.tpotQuantile(0.5, 10_000)));
  });

  it('forgets a slot reused by a newer bucket', () => {
    const w = new MetricsWindow({ spanMs: 10_000 });
    w.firstToken(500, 10); // bucket 0, the slot of bucket 11
    w.at(11_500);
    assert.ok(Number.isNaN(w.ttftQuantile(0.5, 10_000)));
  });
});

describe('MetricsWindow time', () => {
  it('measures idle time from the last arrival to the latest time given', () => {
    const w = new MetricsWindow();
    assert.equal(w.idleMs(), Infinity);
    w.arrival(1000);
    w.at(4000);
    assert.equal(w.idleMs(), 3000);
    assert.equal(w.idleMs(6000), 5000);
    assert.equal(w.idleMs(), 5000);
  });

  it('refuses a span under one bucket and a non-positive window', () => {
    assert.throws(() => new MetricsWindow({ spanMs: 500 }), AssertionError);
    assert.throws(() => new MetricsWindow().concurrency(0), AssertionError);
  });
});
