/**
 * The queue orders: one conformance suite run against every order, then exact expected orders on
 * hand-built queues for each (aging at its exact boundaries, the VTC counter lift, EDF with
 * infinite deadlines, SJF ties).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import {
  createOrder,
  EdfOrder,
  FcfsOrder,
  ORDER_NAMES,
  PriorityOrder,
  SjfOrder,
  VtcOrder,
} from '../../src/scheduler/orders/index.js';
import { drain, item } from './helpers.js';

describe('every queue order', () => {
  for (const name of ORDER_NAMES) {
    describe(name, () => {
      it('is empty when made, and says its name', () => {
        const o = createOrder(name);
        assert.equal(o.name, name);
        assert.equal(o.size, 0);
        assert.equal(o.peek(0), undefined);
        assert.equal(o.pop(0), undefined);
        assert.equal(o.remove('x'), false);
      });

      it('admits items with equal keys first come, first served', () => {
        const o = createOrder(name);
        for (const id of ['c', 'a', 'd', 'b']) o.push(item(id), 0);
        assert.deepEqual(drain(o), ['c', 'a', 'd', 'b']);
      });

      it('keeps size exact through remove, and never admits a removed item', () => {
        const o = createOrder(name);
        for (const id of ['a', 'b', 'c', 'd', 'e']) o.push(item(id), 0);
        assert.equal(o.remove('c'), true);
        assert.equal(o.remove('c'), false);
        assert.equal(o.remove('a'), true);
        assert.equal(o.size, 3);
        assert.deepEqual([...o.items()].map((i) => i.id).sort(), ['b', 'd', 'e']);
        assert.equal(o.peek(0)?.id, 'b');
        assert.deepEqual(drain(o), ['b', 'd', 'e']);
        assert.equal(o.size, 0);
      });

      it('refuses an id that is already queued', () => {
        const o = createOrder(name);
        o.push(item('a'), 0);
        assert.throws(() => o.push(item('a'), 0), AssertionError);
      });

      it('takes an id again once it has left', () => {
        const o = createOrder(name);
        o.push(item('a'), 0);
        o.pop(0);
        o.push(item('a', { arrivalMs: 5 }), 5);
        assert.equal(o.pop(5)?.arrivalMs, 5);
      });
    });
  }
});

describe('fcfs', () => {
  it('admits in arrival order whatever the class, size or deadline', () => {
    const o = new FcfsOrder();
    o.push(item('batch', { priority: 'batch', promptTokens: 9000 }));
    o.push(item('high', { priority: 'high', deadlineMs: 1 }));
    o.push(item('small', { promptTokens: 1, predictedOutputTokens: 1 }));
    assert.deepEqual(drain(o), ['batch', 'high', 'small']);
  });
});

describe('priority', () => {
  it('admits strictly by class before any aging, first come first served within one', () => {
    const o = new PriorityOrder(30_000);
    for (const [id, priority] of [
      ['n1', 'normal'],
      ['l1', 'low'],
      ['h1', 'high'],
      ['b1', 'batch'],
      ['h2', 'high'],
      ['n2', 'normal'],
    ] as const)
      o.push(item(id, { priority }));
    assert.deepEqual(drain(o, 29_999), ['h1', 'h2', 'n1', 'n2', 'l1', 'b1']);
  });

  it('lets a low item catch up one class per agingMs, exactly at the boundary', () => {
    const make = () => {
      const o = new PriorityOrder(1000);
      o.push(item('low', { priority: 'low', arrivalMs: 0 })); // rank 2
      o.push(item('normal', { priority: 'normal', arrivalMs: 500 })); // rank 1
      return o;
    };
    // 999 ms: low is 2 − 0 = 2, normal 1 − 0 = 1.
    assert.equal(make().peek(999)?.id, 'normal');
    // 1000 ms: low is 2 − 1 = 1, normal 1 − floor(500 / 1000) = 1: a tie, and low came first.
    assert.equal(make().peek(1000)?.id, 'low');
  });

  it('ranks an old low item level with a younger high one after two agingMs', () => {
    const make = () => {
      const o = new PriorityOrder(1000);
      o.push(item('low', { priority: 'low', arrivalMs: 0 }));
      o.push(item('high', { priority: 'high', arrivalMs: 1500 }));
      return o;
    };
    // 1999 ms: low 2 − 1 = 1, high 0 − 0 = 0.
    assert.deepEqual(drain(make(), 1999), ['high', 'low']);
    // 2000 ms: low 2 − 2 = 0, high 0 − 0 = 0: the tie goes to the earlier arrival.
    assert.deepEqual(drain(make(), 2000), ['low', 'high']);
  });

  it('does not clamp the effective rank: an equally old high item stays ahead of batch', () => {
    const o = new PriorityOrder(1000);
    o.push(item('batch', { priority: 'batch', arrivalMs: 0 }));
    o.push(item('high', { priority: 'high', arrivalMs: 0 }));
    // 10 s: batch 3 − 10 = −7, high 0 − 10 = −10.
    assert.deepEqual(drain(o, 10_000), ['high', 'batch']);
  });

  it('never ages with agingMs = +Infinity', () => {
    const o = new PriorityOrder(Number.POSITIVE_INFINITY);
    o.push(item('low', { priority: 'low', arrivalMs: 0 }));
    o.push(item('normal', { priority: 'normal', arrivalMs: 1e9 }));
    assert.deepEqual(drain(o, 2e9), ['normal', 'low']);
  });

  it('rejects a non-positive agingMs', () => {
    assert.throws(() => new PriorityOrder(0), /agingMs must be a positive number/);
  });
});

describe('vtc', () => {
  it('admits the head of the waiting tenant with the smallest counter', () => {
    const o = new VtcOrder();
    for (const id of ['a1', 'a2', 'a3']) o.push(item(id, { tenant: 'A' }));
    for (const id of ['b1', 'b2']) o.push(item(id, { tenant: 'B' }));
    const admitted: string[] = [];
    const admit = (promptTokens: number) => {
      const it = o.pop()!;
      admitted.push(it.id);
      o.onServed(it.tenant, promptTokens, 0);
    };
    admit(30); // A 0 = B 0: the tie goes to the tenant whose oldest item came first → a1; A = 30
    admit(10); // B 0 < A 30 → b1; B = 10
    admit(50); // B 10 < A 30 → b2; B = 60, and B no longer waits
    admit(5); // only A waits → a2
    admit(5); // → a3
    assert.deepEqual(admitted, ['a1', 'b1', 'b2', 'a2', 'a3']);
    assert.equal(o.counter('A'), 40);
    assert.equal(o.counter('B'), 60);
  });

  it('weights input 1 : output 2, divided by the tenant weight', () => {
    const o = new VtcOrder({ A: 2 });
    o.onServed('A', 100, 50); // (100 + 2 × 50) / 2
    o.onServed('B', 100, 50); // (100 + 2 × 50) / 1
    o.onServed('B', 0, 10);
    assert.equal(o.counter('A'), 100);
    assert.equal(o.counter('B'), 220);
  });

  it('lifts a tenant that starts waiting to the smallest counter among waiting tenants', () => {
    const o = new VtcOrder();
    o.push(item('a1', { tenant: 'A' }));
    o.push(item('c1', { tenant: 'C' }));
    o.onServed('A', 100, 0);
    o.onServed('C', 70, 0);
    o.push(item('b1', { tenant: 'B' })); // B was never served: lifted to min(100, 70)
    assert.equal(o.counter('B'), 70);
    // C 70 = B 70: c1 came first.
    assert.deepEqual(drain(o), ['c1', 'b1', 'a1']);
  });

  it('never lowers a counter when lifting, and lifts only a tenant that was not waiting', () => {
    const o = new VtcOrder();
    o.onServed('B', 500, 0);
    o.push(item('a1', { tenant: 'A' })); // nobody waits: A is lifted to the highest counter, 500
    o.onServed('A', 10, 0); // 510
    o.push(item('b1', { tenant: 'B' })); // max(500, 510)
    assert.equal(o.counter('B'), 510);
    o.onServed('A', 100, 0); // A waits: no lift, 610
    o.push(item('a2', { tenant: 'A' }));
    assert.equal(o.counter('A'), 610);
  });

  it('starts a busy period level: a tenant arriving to an empty queue is lifted to the highest counter', () => {
    const o = new VtcOrder();
    o.onServed('A', 300, 0); // A was served (say on the fast path) while nothing waited
    o.push(item('b1', { tenant: 'B' }));
    assert.equal(o.counter('B'), 300);
    o.push(item('a1', { tenant: 'A' })); // lifted to max(300, min waiting = 300)
    assert.equal(o.counter('A'), 300);
    assert.deepEqual(drain(o), ['b1', 'a1']);
  });

  it('re-sorts a waiting tenant when its counter grows', () => {
    const o = new VtcOrder();
    o.push(item('a1', { tenant: 'A' }));
    o.push(item('b1', { tenant: 'B' }));
    assert.equal(o.peek()?.id, 'a1');
    o.onServed('A', 1, 0);
    assert.equal(o.peek()?.id, 'b1');
  });

  it('re-sorts a tenant when its oldest item is removed', () => {
    const o = new VtcOrder();
    o.push(item('a1', { tenant: 'A' }));
    o.push(item('b1', { tenant: 'B' }));
    o.push(item('a2', { tenant: 'A' }));
    o.remove('a1'); // A's oldest is now a2, younger than b1: B wins the tie
    assert.deepEqual(drain(o), ['b1', 'a2']);
  });

  it('rejects a non-positive weight', () => {
    assert.throws(() => new VtcOrder({ A: 0 }), /tenant weight of A must be a positive number/);
  });
});

describe('sjf', () => {
  it('admits the smallest prompt + 16 × predicted output first, equal sizes first come first served', () => {
    const o = new SjfOrder();
    o.push(item('x1', { promptTokens: 100, predictedOutputTokens: 10 })); // 260
    o.push(item('x2', { promptTokens: 500, predictedOutputTokens: 0 })); // 500
    o.push(item('x3', { promptTokens: 10, predictedOutputTokens: 20 })); // 330
    o.push(item('x4', { promptTokens: 260, predictedOutputTokens: 0 })); // 260, after x1
    assert.deepEqual(drain(o), ['x1', 'x4', 'x3', 'x2']);
  });

  it('takes the output weight as a parameter', () => {
    const o = new SjfOrder({ outputWeight: 0 });
    o.push(item('long-answer', { promptTokens: 10, predictedOutputTokens: 1000 }));
    o.push(item('long-prompt', { promptTokens: 20, predictedOutputTokens: 1 }));
    assert.deepEqual(drain(o), ['long-answer', 'long-prompt']);
    assert.equal(new SjfOrder().jobSize(item('x', { promptTokens: 7, predictedOutputTokens: 3 })), 55);
  });

  it('lets an item that has waited maxAgeMs go first, exactly at the boundary', () => {
    const make = () => {
      const o = new SjfOrder({ maxAgeMs: 60_000 });
      o.push(item('big', { arrivalMs: 0, promptTokens: 10_000 }));
      o.push(item('s1', { arrivalMs: 100, promptTokens: 1 }));
      o.push(item('s2', { arrivalMs: 200, promptTokens: 2 }));
      return o;
    };
    assert.deepEqual(drain(make(), 59_999), ['s1', 's2', 'big']);
    assert.deepEqual(drain(make(), 60_000), ['big', 's1', 's2']);
    // At 60.1 s big and s1 are both overdue: oldest first, then the rest by size.
    assert.deepEqual(drain(make(), 60_100), ['big', 's1', 's2']);
  });

  it('admits several overdue items oldest first, whatever their size', () => {
    const o = new SjfOrder({ maxAgeMs: 1000 });
    o.push(item('l1', { arrivalMs: 0, promptTokens: 900 }));
    o.push(item('l2', { arrivalMs: 10, promptTokens: 800 }));
    o.push(item('s', { arrivalMs: 5000, promptTokens: 1 }));
    assert.deepEqual(drain(o, 5000), ['l1', 'l2', 's']);
  });
});

describe('edf', () => {
  it('admits the earliest deadline first, ties and infinite deadlines first come first served', () => {
    const o = new EdfOrder();
    o.push(item('e1', { deadlineMs: 300 }));
    o.push(item('e2', { deadlineMs: Number.POSITIVE_INFINITY }));
    o.push(item('e3', { deadlineMs: 100 }));
    o.push(item('e4', { deadlineMs: 300 }));
    o.push(item('e5', { deadlineMs: Number.POSITIVE_INFINITY }));
    assert.deepEqual(drain(o), ['e3', 'e1', 'e4', 'e2', 'e5']);
  });

  it('keeps the heap order through removals from the middle', () => {
    const o = new EdfOrder();
    const deadlines = [50, 10, 40, 20, 30, 60, 5];
    for (const [i, d] of deadlines.entries()) o.push(item(`d${d}`, { deadlineMs: d, arrivalMs: i }));
    o.remove('d20');
    o.remove('d5');
    assert.deepEqual(drain(o), ['d10', 'd30', 'd40', 'd50', 'd60']);
  });
});
