/** The HTML report: self-contained, every chart present with labelled axes, the summary in it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getProfile } from '../../src/engine-model/profiles.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { renderReport } from '../../src/sim/report.js';
import { Timeline } from '../../src/sim/timeline.js';
import { Simulation } from '../../src/sim/simulator.js';
import { syntheticTrace } from '../../src/traces/synthetic.js';

describe('simulation report', () => {
  it('is one self-contained HTML file with every chart, labelled, and the summary', async () => {
    const profile = getProfile('qwen2.5-1.5b-h100');
    const sim = new Simulation({
      pools: [{ name: 'm', endpoints: [0, 1].map((i) => ({ name: `r${i}`, profile, maxConcurrency: 64 })) }],
      routing: ROUTING_PRESETS['least-outstanding']!,
    });
    const trace = syntheticTrace({
      requests: 400,
      ratePerS: 40,
      inputTokens: { median: 500, sigma: 0.5, max: 4000 },
      outputTokens: 20,
      prefix: { groups: 3, sharedTokens: 256 },
    });
    const summary = await sim.run(trace.records);
    const html = renderReport(summary, sim.charts(), { title: 'test <run>', details: ['trace synthetic'] });
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /<script|https?:\/\/|<link /, 'no scripts and no external assets');
    assert.match(html, /<title>test &lt;run&gt;<\/title>/, 'text is escaped');
    for (const title of [
      'Time to first token, CDF',
      'End-to-end latency, CDF',
      'Load over time',
      'Queues and batches over time',
      'Per-replica load over time',
      'Requests served per replica',
      'Replicas over time',
      'Prefix cache hit rate over time',
    ]) {
      assert.ok(html.includes(`<h2>${title}`), `has "${title}"`);
    }
    assert.equal((html.match(/<svg /g) ?? []).length, 8);
    for (const label of [
      'TTFT (ms, log scale)',
      'simulated time (s)',
      'requests per second',
      'cached prompt tokens (%)',
    ]) {
      assert.ok(html.includes(`>${label}<`), `axis label "${label}"`);
    }
    assert.ok(
      html.includes(`<td>${summary.ttft_ms.p50.toFixed(1)}</td>`),
      'the summary table holds the TTFT p50',
    );
    const timeline = sim.charts().timeline;
    assert.ok(timeline.length >= 10, 'a point per second of a ~10 s run');
    assert.equal(
      timeline.reduce((n, p) => n + p.arrivalsPerS, 0),
      400,
      'arrivals over the timeline add up to the requests (1 s buckets)',
    );
  });
});

describe('timeline', () => {
  it('keeps at most maxBuckets points by merging neighbours, and loses no count', () => {
    const t = new Timeline(1, 4);
    for (let s = 0; s < 10; s++) t.at(s * 1000 + 500).arrivals++;
    const points = t.points();
    assert.ok(points.length <= 4);
    // Width doubled twice (1 s → 4 s): points at 0, 4 and 8 s, holding 4, 4 and 2 arrivals.
    assert.deepEqual(
      points.map((p) => [p.tS, p.arrivalsPerS * 4]),
      [
        [0, 4],
        [4, 4],
        [8, 2],
      ],
    );
  });
});
