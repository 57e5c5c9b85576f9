/**
 * The simulator's gateway queue against outcomes computed by hand. With the toy profile a step of N
 * tokens takes 1 ms + 0.01 ms·N (chunks of 64): a 100-token prompt alone takes 1.64 + 1.36 = 3 ms to
 * its first token, then 1.01 ms per further token. With endpoint concurrency 1 the replica serves
 * one request at a time, so every start and finish time follows from those two numbers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineProfile } from '../../src/engine-model/types.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import type { PriorityClass } from '../../src/scheduler/types.js';
import {
  type RequestRecord,
  type SimOptions,
  type SimSchedulingOptions,
  Simulation,
} from '../../src/sim/simulator.js';
import type { TraceRecord } from '../../src/traces/record.js';
import { TOY_PROFILE } from '../helpers/profiles.js';

const toy: EngineProfile = { ...TOY_PROFILE, numKvBlocks: 10_000, maxModelLen: 100_000, coldStartMs: 0 };

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= 1e-9, `${what}: ${actual} ≠ ${expected}`);

/** A 100-token prompt alone: 3 ms to the first token, 1.01 ms per further token. */
const serviceMs = (outputTokens: number) => 3 + (outputTokens - 1) * 1.01;

const NO_BOUNDS = { maxLength: 1000, maxWaitMs: 1e9 };

function options(concurrency: number, scheduling?: Partial<SimSchedulingOptions>): SimOptions {
  return {
    pools: [{ name: 'm', endpoints: [{ name: 'e0', profile: toy, maxConcurrency: concurrency }] }],
    routing: ROUTING_PRESETS['least-outstanding']!,
    ...(scheduling ? { scheduling: { order: 'fcfs', bounds: NO_BOUNDS, ...scheduling } } : {}),
  };
}

const req = (
  arrivalMs: number,
  outputTokens: number,
  extra: { priority?: PriorityClass; tenant?: string } = {},
): TraceRecord => ({ arrivalMs, inputTokens: 100, outputTokens, ...extra });

async function run(opts: SimOptions, records: TraceRecord[]) {
  const out: RequestRecord[] = [];
  const summary = await new Simulation(opts).run(records, (r) => out.push(r));
  const byId = new Map(out.map((r) => [r.id, r]));
  return { summary, out, byId, order: out.filter((r) => r.status === 'ok').map((r) => r.id) };
}

// A long request holds the serial replica while three more arrive: long, medium, short, shorter.
const MIX = [req(0, 100), req(1, 50), req(2, 1), req(3, 10)];

describe('simulator: gateway queue', () => {
  it('serial replica, FCFS: requests run in arrival order, each waiting for the one before', async () => {
    const { out, order, byId, summary } = await run(options(1, { order: 'fcfs' }), MIX);
    assert.deepEqual(order, ['r0', 'r1', 'r2', 'r3']);
    const finish0 = serviceMs(100);
    const finish1 = finish0 + serviceMs(50);
    const finish2 = finish1 + serviceMs(1);
    const expected = [
      { id: 'r0', start: 0, finish: finish0 },
      { id: 'r1', start: finish0, finish: finish1 },
      { id: 'r2', start: finish1, finish: finish2 },
      { id: 'r3', start: finish2, finish: finish2 + serviceMs(10) },
    ];
    for (const e of expected) {
      const r = byId.get(e.id)!;
      close(r.gateway_queue_ms, e.start - r.arrival_ms, `${e.id} gateway queue`);
      close(r.queue_ms, 0, `${e.id} engine queue (the replica is idle when it is sent)`);
      close(r.ttft_ms, e.start + 3 - r.arrival_ms, `${e.id} TTFT from its arrival`);
      close(r.e2e_ms, e.finish - r.arrival_ms, `${e.id} E2E from its arrival`);
    }
    assert.equal(out.length, 4);
    assert.equal(summary.scheduling?.queued, 3);
    assert.equal(summary.scheduling?.max_waiting, 3);
    assert.equal(summary.gateway_queue_ms.count, 4);
    close(summary.gateway_queue_ms.min, 0, 'r0 went straight through');
    close(summary.gateway_queue_ms.max, finish2 - 3, 'r3 waited longest');
  });

  it('serial replica, SJF with true sizes: the shortest waiting request goes next', async () => {
    const { order, byId } = await run(options(1, { order: 'sjf', oracleSizes: true }), MIX);
    assert.deepEqual(order, ['r0', 'r2', 'r3', 'r1']);
    const finish0 = serviceMs(100);
    close(byId.get('r2')!.gateway_queue_ms, finish0 - 2, 'r2 right after r0');
    close(byId.get('r3')!.gateway_queue_ms, finish0 + serviceMs(1) - 3, 'r3 after r2');
    close(byId.get('r1')!.e2e_ms, finish0 + serviceMs(1) + serviceMs(10) + serviceMs(50) - 1, 'r1 last');
  });

  it('SJF by prediction never reads the trace’s output length: identical prompts rank alike (FCFS)', async () => {
    const { order } = await run(options(1, { order: 'sjf' }), MIX);
    assert.deepEqual(order, ['r0', 'r1', 'r2', 'r3']);
  });

  it('a full queue refuses newcomers of the same class with queue_full, at once', async () => {
    const records = [0, 1, 2, 3, 4].map((t) => req(t, 10));
    const { out, summary } = await run(options(1, { bounds: { maxLength: 2, maxWaitMs: 1e9 } }), records);
    assert.deepEqual(
      out.map((r) => [r.id, r.status, r.reject_reason]),
      [
        ['r3', 'rejected', 'queue_full'],
        ['r4', 'rejected', 'queue_full'],
        ['r0', 'ok', 'none'],
        ['r1', 'ok', 'none'],
        ['r2', 'ok', 'none'],
      ],
    );
    for (const r of out.slice(0, 2)) {
      assert.equal(r.gateway_queue_ms, 0);
      assert.equal(r.endpoint, 'none');
      assert.ok(Number.isNaN(r.ttft_ms));
    }
    assert.deepEqual(summary.rejected_by_reason, { queue_full: 2 });
    assert.deepEqual(summary.scheduling?.dropped_by_reason, { queue_full: 2 });
    assert.equal(summary.completed, 3);
    // SLO: TTFT ≤ 5 × 3 ms. r0 and r1 (TTFT 3 and 12.09 + 3 − 1 ms) meet it; r2 (24.18 + 3 − 2) does not.
    close(summary.slo_attainment, 2 / 5, 'SLO attainment, refused requests counting as misses');
  });

  it('a full queue sheds a waiting batch request for a more urgent newcomer', async () => {
    const records = [req(0, 10), req(1, 10, { priority: 'batch' }), req(2, 10), req(3, 10)];
    const { out, summary } = await run(
      options(1, { order: 'priority', bounds: { maxLength: 2, maxWaitMs: 1e9 } }),
      records,
    );
    const shed = out.find((r) => r.status === 'rejected')!;
    assert.equal(shed.id, 'r1');
    assert.equal(shed.reject_reason, 'shed');
    close(shed.gateway_queue_ms, 3 - 1, 'shed when r3 arrived');
    assert.deepEqual(
      out.filter((r) => r.status === 'ok').map((r) => r.id),
      ['r0', 'r2', 'r3'],
    );
    assert.deepEqual(summary.rejected_by_reason, { shed: 1 });
  });

  it('a request waiting past its max wait is dropped with wait_timeout at exactly that time', async () => {
    // r0 holds the replica until 102.99 ms; r1 may wait 50 ms, r2 (batch) 500 ms.
    const records = [req(0, 100), req(1, 10), req(2, 10, { priority: 'batch' })];
    const { byId, summary } = await run(
      options(1, {
        order: 'fcfs',
        batchHeadroom: 0,
        // A class bound applies besides the pool-wide one: the pool-wide bound is the longest.
        bounds: { maxLength: 10, maxWaitMs: 500, perClass: { normal: { maxWaitMs: 50 } } },
      }),
      records,
    );
    const r1 = byId.get('r1')!;
    assert.equal(r1.status, 'rejected');
    assert.equal(r1.reject_reason, 'wait_timeout');
    close(r1.gateway_queue_ms, 50, 'dropped 50 ms after its arrival');
    const r2 = byId.get('r2')!;
    assert.equal(r2.status, 'ok');
    close(r2.gateway_queue_ms, serviceMs(100) - 2, 'the batch request waited out r0');
    assert.deepEqual(summary.rejected_by_reason, { wait_timeout: 1 });
  });

  it('priority: a batch request waits while an interactive one waits, though it came first', async () => {
    const records = [req(0, 100), req(1, 10, { priority: 'batch' }), req(2, 10)];
    const { order, byId, summary } = await run(options(1, { order: 'priority', batchHeadroom: 0 }), records);
    assert.deepEqual(order, ['r0', 'r2', 'r1']);
    const finish0 = serviceMs(100);
    close(byId.get('r2')!.gateway_queue_ms, finish0 - 2, 'interactive right after r0');
    close(byId.get('r1')!.gateway_queue_ms, finish0 + serviceMs(10) - 1, 'batch after it');
    assert.deepEqual(Object.keys(summary.by_class), ['normal', 'batch']);
    assert.equal(summary.by_class.batch!.requests, 1);
    assert.equal(summary.by_class.normal!.completed, 2);
  });

  it('batch starts only within its headroom of the pool’s concurrency', async () => {
    // Limit 4, headroom 0.5 (the prefill rule off): a batch request starts only while at most one
    // request is in flight.
    const records = [
      req(0, 100, { priority: 'batch' }),
      req(0, 100, { priority: 'batch' }),
      req(0, 100, { priority: 'batch' }),
      req(0, 100),
    ];
    const { byId } = await run(
      options(4, { order: 'priority', batchHeadroom: 0.5, batchOnlyWithoutPrefill: false }),
      records,
    );
    assert.equal(byId.get('r0')!.gateway_queue_ms, 0);
    assert.equal(byId.get('r1')!.gateway_queue_ms, 0);
    assert.equal(byId.get('r3')!.gateway_queue_ms, 0, 'interactive uses the headroom');
    // The third batch request waits until only one request is left in flight.
    const finishes = ['r0', 'r1', 'r3'].map((id) => byId.get(id)!.e2e_ms).sort((a, b) => a - b);
    close(byId.get('r2')!.gateway_queue_ms, finishes[1]!, 'r2 starts at the second finish');
  });

  it('vtc: a tenant that has been served less goes ahead of a flooding one', async () => {
    // Tenant a sends four requests at 0 (r0 runs at once), b one at 1. b's counter is lifted to
    // a's (100 prompt tokens) when it starts waiting; a's grows by 2 per output token of r0, so when
    // r0 finishes b (100) is below a (100 + 2 × 10) and goes next; its own 100-token prompt then
    // puts it above a.
    const records = [...[0, 0, 0, 0].map((t) => req(t, 10, { tenant: 'a' })), req(1, 10, { tenant: 'b' })];
    const fcfs = await run(options(1, { order: 'fcfs' }), records);
    assert.deepEqual(fcfs.order, ['r0', 'r1', 'r2', 'r3', 'r4']);
    const vtc = await run(options(1, { order: 'vtc' }), records);
    assert.deepEqual(vtc.order, ['r0', 'r4', 'r1', 'r2', 'r3']);
    close(vtc.byId.get('r4')!.gateway_queue_ms, serviceMs(10) - 1, 'b waits out r0 only');
  });

  it('edf: deadlines default to the TTFT SLO; late requests are dropped, or run earliest deadline first', async () => {
    // SLO: TTFT ≤ 5 × idle TTFT, so a 100-token prompt's deadline is arrival + 15 ms, a 10-token
    // prompt's arrival + 5 × 1.1 ms. r0 holds the replica until 102.99 ms, past both.
    const records = [req(0, 100), req(1, 10), { arrivalMs: 2, inputTokens: 10, outputTokens: 10 }];
    const late = await run(options(1, { order: 'edf' }), records);
    assert.deepEqual(
      late.out.filter((r) => r.status === 'rejected').map((r) => [r.id, r.reject_reason]),
      [
        ['r2', 'deadline'],
        ['r1', 'deadline'],
      ],
    );
    close(late.byId.get('r2')!.gateway_queue_ms, 5.5, 'r2 dropped at its deadline');
    close(late.byId.get('r1')!.gateway_queue_ms, 15, 'r1 dropped at its deadline');
    const kept = await run(options(1, { order: 'edf', dropLate: false }), records);
    assert.deepEqual(kept.order, ['r0', 'r2', 'r1']);
    const fixed = await run(options(1, { order: 'edf', ttftDeadlineMs: 200 }), records);
    assert.deepEqual(fixed.order, ['r0', 'r1', 'r2'], 'equal budgets: arrival order');
  });

  it('records carry class and tenant; the summary breaks them down', async () => {
    const records = [
      req(0, 10, { tenant: 'a' }),
      req(0, 10, { tenant: 'b', priority: 'high' }),
      req(0, 10, { tenant: 'a', priority: 'high' }),
    ];
    const { out, summary } = await run(options(1, { order: 'fcfs' }), records);
    assert.deepEqual(
      out.map((r) => [r.id, r.tenant, r.priority]),
      [
        ['r0', 'a', 'normal'],
        ['r1', 'b', 'high'],
        ['r2', 'a', 'high'],
      ],
    );
    assert.deepEqual(Object.keys(summary.by_class), ['high', 'normal']);
    assert.deepEqual(Object.keys(summary.by_tenant), ['a', 'b']);
    assert.equal(summary.by_tenant.a!.requests, 2);
    assert.equal(summary.by_tenant.a!.completed, 2);
    assert.equal(summary.by_class.high!.requests, 2);
    // r1 alone in its tenant: its one value is every percentile.
    const r1 = out[1]!;
    close(summary.by_tenant.b!.ttft_ms.p50, r1.ttft_ms, 'tenant b TTFT p50');
    close(summary.by_tenant.b!.e2e_ms.p99, r1.e2e_ms, 'tenant b E2E p99');
    close(summary.by_tenant.b!.gateway_queue_ms.p50, serviceMs(10), 'tenant b waited out r0');
  });

  it('without scheduling nothing waits in the gateway, and records say so', async () => {
    const { out, summary } = await run(options(1), [req(0, 10), req(0, 10, { tenant: 't' })]);
    assert.deepEqual(
      out.map((r) => [r.status, r.reject_reason, r.gateway_queue_ms, r.priority, r.tenant]),
      [
        ['rejected', 'no_endpoint', 0, 'normal', 't'],
        ['ok', 'none', 0, 'normal', 'default'],
      ],
    );
    assert.equal(summary.scheduling, null);
    assert.equal(summary.gateway_queue_ms.max, 0);
  });
});

describe('simulator: metric capacity gates', () => {
  const gated = (maxEngineWaiting: number | null): SimOptions => ({
    pools: [
      {
        name: 'm',
        endpoints: [
          {
            name: 'e0',
            profile: toy,
            maxConcurrency: 10,
            ...(maxEngineWaiting === null ? {} : { gate: { maxEngineWaiting, maxKvUsage: null } }),
          },
        ],
      },
    ],
    routing: ROUTING_PRESETS['least-outstanding']!,
    scheduling: { order: 'fcfs', bounds: NO_BOUNDS },
  });

  it('an engine with a request waiting takes nothing new: the next one waits in the gateway', async () => {
    // Three requests at once. An idle engine starts the first at once (running); the second waits
    // for the engine's next step (engine waiting = 1). Ungated, the third joins it there. Gated at
    // one waiting request, the third waits in the gateway until capacity is re-checked: the first
    // finish (no periodic scrape here), when the engine's queue is empty again.
    const three = [req(0, 5), req(0, 5), req(0, 5)];
    const free = await run(gated(null), three);
    assert.deepEqual(
      free.out.map((r) => r.gateway_queue_ms),
      [0, 0, 0],
    );
    const { byId } = await run(gated(1), three);
    assert.equal(byId.get('r0')!.gateway_queue_ms, 0);
    assert.equal(byId.get('r1')!.gateway_queue_ms, 0);
    const firstFinish = Math.min(byId.get('r0')!.e2e_ms, byId.get('r1')!.e2e_ms);
    close(byId.get('r2')!.gateway_queue_ms, firstFinish, 'r2 starts at the first finish');
  });
});

describe('simulator: the prefill gate (maxPrefilling)', () => {
  const gated = (maxPrefilling: number | null): SimOptions => ({
    pools: [
      {
        name: 'm',
        endpoints: [
          {
            name: 'e0',
            profile: toy,
            maxConcurrency: 10,
            ...(maxPrefilling === null
              ? {}
              : { gate: { maxEngineWaiting: null, maxKvUsage: null, maxPrefilling } }),
          },
        ],
      },
    ],
    routing: ROUTING_PRESETS['least-outstanding']!,
    scheduling: { order: 'fcfs', bounds: NO_BOUNDS },
  });

  it('with one request prefilling the endpoint takes nothing new until its first token, without any scrape', async () => {
    const three = [req(0, 5), req(0, 5), req(0, 5)];
    const free = await run(gated(null), three);
    assert.deepEqual(
      free.out.map((r) => r.gateway_queue_ms),
      [0, 0, 0],
    );
    // Gated: r0 is sent at once and its first token comes 3 ms later (alone, two prefill chunks);
    // that first token pumps the queue and sends r1; r1's first token sends r2.
    const { byId } = await run(gated(1), three);
    assert.equal(byId.get('r0')!.gateway_queue_ms, 0);
    close(byId.get('r0')!.ttft_ms, 3, 'r0 alone to its first token');
    close(byId.get('r1')!.gateway_queue_ms, 3, 'r1 is sent at r0 first token');
    close(byId.get('r2')!.gateway_queue_ms, byId.get('r1')!.ttft_ms, 'r2 is sent at r1 first token');
    assert.ok(byId.get('r1')!.ttft_ms < byId.get('r0')!.e2e_ms, 'r2 did not wait for a finish');
    assert.deepEqual(
      [...byId.values()].map((r) => r.status),
      ['ok', 'ok', 'ok'],
    );
  });
});
