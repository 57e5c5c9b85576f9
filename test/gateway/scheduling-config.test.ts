/**
 * The scheduling configuration: defaults, per-pool overrides, serial-backend concurrency, metric
 * gates only where metrics exist, the scheduler options compiled from it, and the capacity gate
 * the capacity-filter enforces.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METRICS_MAPPINGS } from '../../src/adapters/engines/metrics-mapping.js';
import { METRIC_ENGINES, parseConfigText, schedulingFor } from '../../src/config/load.js';
import type { EndpointMetrics } from '../../src/framework/endpoint.js';
import { schedulerOptions } from '../../src/pool/plan.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import { context, request, view } from '../helpers/routing.js';

const pools = `
pools:
  m:
    endpoints:
      - { name: e0, kind: http, url: "http://127.0.0.1:8000/v1" }
`;

describe('scheduling config', () => {
  it('fills the documented defaults', () => {
    assert.deepEqual(parseConfigText(pools).scheduling, {
      queue: 'fcfs',
      maxQueueLength: 1024,
      maxWaitMs: 30_000,
      perClass: { batch: { maxWaitMs: 300_000 } },
      batchHeadroom: 0.25,
      batchOnlyWithoutPrefill: true,
      agingMs: 30_000,
      ttftDeadlineMs: 10_000,
      dropLate: true,
      tenantWeights: {},
      defaultPriority: 'normal',
    });
  });

  it('a pool overrides the top level key by key, and perClass class by class', () => {
    const cfg = parseConfigText(`
scheduling: { queue: vtc, maxWaitMs: 5000, tenantWeights: { a: 2 } }
pools:
  m:
    scheduling: { queue: sjf, perClass: { high: { maxQueueLength: 10 }, batch: { maxQueueLength: 50 } } }
    endpoints: [{ name: e0, kind: http, url: "http://h/v1" }]
  n:
    endpoints: [{ name: e1, kind: http, url: "http://h/v1" }]
`);
    assert.deepEqual(schedulingFor(cfg, 'm'), {
      ...cfg.scheduling,
      queue: 'sjf',
      perClass: { batch: { maxWaitMs: 300_000, maxQueueLength: 50 }, high: { maxQueueLength: 10 } },
    });
    assert.equal(schedulingFor(cfg, 'm').maxWaitMs, 5000);
    assert.deepEqual(schedulingFor(cfg, 'm').tenantWeights, { a: 2 });
    assert.equal(schedulingFor(cfg, 'n'), cfg.scheduling);
  });

  it('names the key of a bad scheduling value', () => {
    assert.throws(() => parseConfigText(`scheduling: { queue: lifo }\n${pools}`), /scheduling\.queue/);
    assert.throws(
      () =>
        parseConfigText(
          pools.replace('    endpoints:', '    scheduling: { defaultPriority: urgent }\n    endpoints:'),
        ),
      /pools\.m\.scheduling\.defaultPriority/,
    );
    assert.throws(
      () => parseConfigText(`scheduling: { perClass: { vip: {} } }\n${pools}`),
      /scheduling\.perClass/,
    );
    assert.throws(
      () => parseConfigText(`scheduling: { batchHeadroom: 1.5 }\n${pools}`),
      /scheduling\.batchHeadroom/,
    );
  });

  it('a serial backend (engine: ollama) defaults to one request at a time', () => {
    const cfg = parseConfigText(`
pools:
  m:
    endpoints:
      - { name: o, kind: http, url: "http://h:11434/v1", engine: ollama }
      - { name: o2, kind: http, url: "http://h:11434/v1", engine: ollama, maxConcurrency: 2 }
      - { name: v, kind: http, url: "http://h:8000/v1", engine: vllm }
      - { name: x, kind: emulated, profile: qwen2.5-0.5b-h100 }
`);
    assert.deepEqual(
      cfg.pools.m!.endpoints.map((e) => e.maxConcurrency),
      [1, 2, 256, 256],
    );
  });

  it('metric gates need an engine whose metrics are scraped', () => {
    const ok = parseConfigText(`
pools:
  m:
    endpoints:
      - { name: v, kind: http, url: "http://h/v1", engine: vllm, maxEngineWaiting: 4, maxKvUsage: 0.9 }
      - { name: x, kind: emulated, profile: qwen2.5-0.5b-h100, maxKvUsage: 0.95 }
`);
    assert.equal(ok.pools.m!.endpoints[0]!.maxEngineWaiting, 4);
    assert.throws(
      () => parseConfigText(pools.replace('url:', 'engine: ollama, maxKvUsage: 0.9, url:')),
      /pools\.m\.endpoints\[0\]\.maxKvUsage: needs engine metrics, which engine ollama does not export/,
    );
    assert.deepEqual([...METRIC_ENGINES].sort(), Object.keys(METRICS_MAPPINGS).sort());
  });

  it('maxPrefilling needs no metrics: any engine takes it, and it must be a positive integer', () => {
    const ok = parseConfigText(pools.replace('url:', 'engine: ollama, maxPrefilling: 2, url:'));
    assert.equal(ok.pools.m!.endpoints[0]!.maxPrefilling, 2);
    assert.throws(() => parseConfigText(pools.replace('url:', 'maxPrefilling: 0, url:')), /maxPrefilling/);
  });

  it('compiles to scheduler options where a class bound replaces the pool-wide one', () => {
    const cfg = parseConfigText(
      `scheduling: { queue: edf, perClass: { high: { maxQueueLength: 5, maxWaitMs: 2000 } } }\n${pools}`,
    );
    assert.deepEqual(schedulerOptions(cfg.scheduling), {
      order: 'edf',
      bounds: {
        maxLength: 1024,
        maxWaitMs: 300_000,
        perClass: {
          high: { maxLength: 5, maxWaitMs: 2000 },
          normal: { maxWaitMs: 30_000 },
          low: { maxWaitMs: 30_000 },
          batch: { maxWaitMs: 300_000 },
        },
      },
      batchHeadroom: 0.25,
      batchOnlyWithoutPrefill: true,
      agingMs: 30_000,
      dropLate: true,
      tenantWeights: {},
    });
  });
});

describe('capacity gate (capacity-filter)', () => {
  const filter = builtinRoutingRegistry().filters.get('capacity-filter')!('f', {});
  const metrics = (waiting: number, kvUsage: number): EndpointMetrics => ({
    running: 1,
    waiting,
    kvUsage,
    scrapedAtMs: 0,
  });
  const gate = { maxEngineWaiting: 4, maxKvUsage: 0.9 };
  const cases: [string, Parameters<typeof view>[2], boolean][] = [
    ['below every limit', { metrics: metrics(3, 0.89), info: { gate } }, true],
    ['engine queue at its limit', { metrics: metrics(4, 0.1), info: { gate } }, false],
    ['KV usage at its limit', { metrics: metrics(0, 0.9), info: { gate } }, false],
    ['no scrape: only maxConcurrency applies', { metrics: null, info: { gate } }, true],
    ['no scrape, at maxConcurrency', { metrics: null, inFlight: 10, info: { gate } }, false],
    [
      'a null limit is no limit',
      { metrics: metrics(99, 0.9), info: { gate: { maxEngineWaiting: null, maxKvUsage: 0.95 } } },
      true,
    ],
    ['no gate configured', { metrics: metrics(99, 1) }, true],
    [
      'maxPrefilling with no scrape: the ledger (idle here) decides',
      { metrics: null, info: { gate: { maxEngineWaiting: null, maxKvUsage: null, maxPrefilling: 1 } } },
      true,
    ],
  ];
  for (const [name, over, kept] of cases) {
    it(name, () => {
      const out = filter.filter(request(), [view('a', 0, over)], context());
      assert.equal(out.length, kept ? 1 : 0);
    });
  }
});
