/** PoolScheduler driven by a fake pool with a fixed number of slots. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PoolScheduler, type SchedulerOptions } from '../../src/scheduler/pool-scheduler.js';
import type { QueueItem } from '../../src/scheduler/types.js';
import { FakePool, item } from './helpers.js';

const BOUNDS = { maxLength: 100, maxWaitMs: 10_000 };

function setup(slots: number, opts: Partial<SchedulerOptions> = {}) {
  const pool = new FakePool(slots);
  const s = new PoolScheduler({ order: 'fcfs', bounds: BOUNDS, ...opts }, pool);
  return { pool, s };
}

describe('PoolScheduler', () => {
  it('starts an arrival at once when nothing waits and a slot is free', () => {
    const { pool, s } = setup(1);
    assert.equal(s.arrive(item('a'), 0), 'started');
    assert.equal(s.waiting, 0);
    assert.deepEqual(pool.started, ['a']);
  });

  it('queues while the pool is full, and pump starts waiting items as slots free', () => {
    const { pool, s } = setup(1);
    s.arrive(item('a'), 0);
    assert.equal(s.arrive(item('b'), 1), 'queued');
    assert.equal(s.arrive(item('c'), 2), 'queued');
    s.pump(3); // still full
    assert.deepEqual(pool.started, ['a']);
    pool.finish();
    s.pump(4);
    assert.deepEqual(pool.started, ['a', 'b']);
    assert.equal(s.waiting, 1);
  });

  it('never lets an arrival overtake waiting items through a freed slot', () => {
    const { pool, s } = setup(2);
    s.arrive(item('a'), 0);
    s.arrive(item('b'), 0);
    s.arrive(item('c'), 1);
    pool.finish(); // a slot is free, but nobody has pumped yet
    assert.equal(s.arrive(item('d'), 2), 'queued');
    s.pump(2);
    assert.deepEqual(pool.started, ['a', 'b', 'c']);
    pool.finish();
    s.pump(3);
    assert.deepEqual(pool.started, ['a', 'b', 'c', 'd']);
  });

  it('pumps in the configured order', () => {
    const { pool, s } = setup(1, { order: 'priority' });
    s.arrive(item('busy'), 0);
    for (const [id, priority] of [
      ['l', 'low'],
      ['n', 'normal'],
      ['h', 'high'],
    ] as const)
      s.arrive(item(id, { priority }), 1);
    const order: string[] = [];
    for (let t = 2; t < 5; t++) {
      pool.finish();
      s.pump(t);
      order.push(pool.started.at(-1)!);
    }
    assert.deepEqual(order, ['h', 'n', 'l']);
  });

  it('holds batch work while a non-batch item waits', () => {
    const { pool, s } = setup(4); // batch may use (1 − 0.25) × 4 = 3 slots
    for (const id of ['i1', 'i2', 'i3', 'i4']) s.arrive(item(id), 0);
    assert.equal(s.arrive(item('b1', { priority: 'batch' }), 1), 'queued');
    assert.equal(s.arrive(item('n1'), 2), 'queued');
    pool.finish();
    pool.finish(); // 2 in flight: b1 would fit, but n1 waits
    s.pump(3);
    assert.deepEqual(pool.started.slice(4), ['n1']);
    s.pump(4); // 3 in flight: 3 + 1 > 3, so b1 still waits
    assert.deepEqual(pool.started.slice(4), ['n1']);
    pool.finish();
    s.pump(5); // 2 in flight, nothing else waits: b1 fits
    assert.deepEqual(pool.started.slice(4), ['n1', 'b1']);
  });

  it('keeps the headroom free of batch work, on arrival and on pump', () => {
    const { pool, s } = setup(4);
    for (const id of ['i1', 'i2', 'i3']) s.arrive(item(id), 0);
    assert.equal(s.arrive(item('b1', { priority: 'batch' }), 1), 'queued'); // 3 + 1 > 3
    pool.finish();
    s.pump(2);
    assert.deepEqual(pool.started, ['i1', 'i2', 'i3', 'b1']);
    assert.equal(s.arrive(item('b2', { priority: 'batch' }), 3), 'queued');
    assert.equal(s.arrive(item('n1'), 3), 'started'); // interactive traffic may use the headroom
  });

  it('starts batch work only while nothing is prefilling in the pool, unless told otherwise', () => {
    const { pool, s } = setup(4);
    s.arrive(item('i1'), 0);
    pool.prefilling = 1; // i1 has not produced its first token yet
    assert.equal(s.arrive(item('b1', { priority: 'batch' }), 1), 'queued');
    s.pump(2);
    assert.deepEqual(pool.started, ['i1']);
    pool.prefilling = 0; // i1 is decoding now: the pool has idle prefill capacity
    s.pump(3);
    assert.deepEqual(pool.started, ['i1', 'b1']);
    const open = setup(4, { batchOnlyWithoutPrefill: false });
    open.s.arrive(item('i1'), 0);
    open.pool.prefilling = 1;
    assert.equal(open.s.arrive(item('b1', { priority: 'batch' }), 1), 'started');
  });

  it('starts batch work on an idle pool even when the headroom rounds its share to nothing', () => {
    const { pool, s } = setup(1); // (1 − 0.25) × 1 = 0.75 slots
    assert.equal(s.arrive(item('b1', { priority: 'batch' }), 0), 'started');
    assert.equal(s.arrive(item('b2', { priority: 'batch' }), 1), 'queued');
    pool.finish();
    s.pump(2);
    assert.deepEqual(pool.started, ['b1', 'b2']);
  });

  it('takes the headroom as an option, rounding (1 − headroom) × limit to the intended whole slots', () => {
    const { pool, s } = setup(20, { batchHeadroom: 0.9 }); // (1 − 0.9) × 20 = 1.9999999999999996: two slots
    s.arrive(item('i1'), 0);
    assert.equal(s.arrive(item('b1', { priority: 'batch' }), 0), 'started');
    assert.equal(s.arrive(item('b2', { priority: 'batch' }), 0), 'queued');
    assert.deepEqual(pool.started, ['i1', 'b1']);
    assert.throws(() => setup(1, { batchHeadroom: 1.5 }), /batchHeadroom must be within \[0, 1\]/);
  });

  it('cancels a waiting item without reporting a drop', () => {
    const { pool, s } = setup(1);
    s.arrive(item('a'), 0);
    s.arrive(item('b'), 0);
    s.arrive(item('c'), 0);
    assert.equal(s.cancel('b'), true);
    assert.equal(s.cancel('b'), false);
    assert.equal(s.cancel('a'), false); // running, not waiting
    assert.equal(s.waiting, 1);
    pool.finish();
    s.pump(1);
    assert.deepEqual(pool.started, ['a', 'c']);
    assert.deepEqual(pool.drops, []);
  });

  it('drops a refused arrival with queue_full and Retry-After from its class wait bound', () => {
    const pool = new FakePool(0);
    const s = new PoolScheduler(
      { order: 'fcfs', bounds: { maxLength: 1, maxWaitMs: 2500, perClass: { low: { maxWaitMs: 120_000 } } } },
      pool,
    );
    assert.equal(s.arrive(item('n1'), 0), 'queued');
    assert.equal(s.arrive(item('n2'), 0), 'dropped');
    assert.equal(s.arrive(item('h1', { priority: 'high' }), 0), 'queued'); // sheds n1
    assert.deepEqual(pool.drops, [
      ['n2', 'queue_full', 3], // ceil(2500 / 1000)
      ['n1', 'shed', 3],
    ]);
    assert.equal(s.retryAfterS(item('x', { priority: 'low' })), 3); // min(120 s, the global 2.5 s)
  });

  it('bounds Retry-After to [1, 60] s', () => {
    const s = (maxWaitMs: number) =>
      new PoolScheduler({ order: 'fcfs', bounds: { maxLength: 1, maxWaitMs } }, new FakePool(0));
    assert.equal(s(10).retryAfterS(item('x')), 1);
    assert.equal(s(300_000).retryAfterS(item('x')), 60);
  });

  it('expires waiting items and returns the next expiry time', () => {
    const pool = new FakePool(0);
    const s = new PoolScheduler(
      { order: 'fcfs', bounds: { maxLength: 10, maxWaitMs: 5000, perClass: { high: { maxWaitMs: 100 } } } },
      pool,
    );
    s.arrive(item('n', { arrivalMs: 0 }), 0);
    s.arrive(item('h', { priority: 'high', arrivalMs: 50 }), 50);
    assert.equal(s.expire(50), 150);
    assert.equal(s.expire(150), 5000);
    assert.equal(s.expire(5000), Number.POSITIVE_INFINITY);
    assert.deepEqual(pool.drops, [
      ['h', 'wait_timeout', 1],
      ['n', 'wait_timeout', 5],
    ]);
  });

  it('drops late items under edf by default, not when dropLate is false', () => {
    for (const [dropLate, expected] of [
      [undefined, [['late', 'deadline', 10]]],
      [false, []],
    ] as const) {
      const pool = new FakePool(0);
      const s = new PoolScheduler(
        {
          order: 'edf',
          bounds: { maxLength: 10, maxWaitMs: 10_000 },
          ...(dropLate === undefined ? {} : { dropLate }),
        },
        pool,
      );
      s.arrive(item('late', { deadlineMs: 40 }), 0);
      s.expire(40);
      assert.deepEqual(pool.drops, expected);
    }
  });

  it('folds a pump called from inside tryStart into the running one', () => {
    const { pool, s } = setup(0);
    for (const id of ['a', 'b', 'c']) s.arrive(item(id), 0);
    pool.limit = 3;
    pool.onStart = () => s.pump(1);
    s.pump(1);
    assert.deepEqual(pool.started, ['a', 'b', 'c']);
  });

  it('does not loop when a hook pumps from inside a tryStart that fails', () => {
    let calls = 0;
    const s: PoolScheduler = new PoolScheduler(
      { order: 'fcfs', bounds: BOUNDS },
      {
        tryStart: () => {
          calls++;
          s.pump(1);
          return false;
        },
        load: () => ({ inFlight: 0, limit: 0, prefilling: 0 }),
        drop: () => {},
      },
    );
    assert.equal(s.arrive(item('a'), 0), 'queued'); // one try on the fast path
    s.pump(1); // one more, whose nested pump starts nothing
    assert.equal(calls, 2);
    assert.equal(s.waiting, 1);
  });

  it('takes the started item out of the queue even when tryStart reorders it (a VTC charge)', () => {
    const { pool, s } = setup(0, { order: 'vtc' });
    s.arrive(item('a1', { tenant: 'A' }), 0);
    s.arrive(item('a2', { tenant: 'A' }), 0);
    s.arrive(item('b1', { tenant: 'B' }), 0);
    // Like the simulator, charge the prompt from inside tryStart: after a1 starts, B comes first.
    pool.onStart = (it: QueueItem) => s.onServed(it.tenant, it.promptTokens, 0);
    pool.limit = 2;
    s.pump(1);
    assert.deepEqual(pool.started, ['a1', 'b1']);
    assert.equal(s.waiting, 1);
    pool.limit = 3;
    s.pump(2);
    assert.deepEqual(pool.started, ['a1', 'b1', 'a2']);
  });
});
