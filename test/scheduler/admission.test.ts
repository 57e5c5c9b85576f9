/** AdmissionQueue: shedding, refusal and expiry with their exact reasons and times. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import { AdmissionQueue } from '../../src/scheduler/admission.js';
import { createOrder, type OrderName } from '../../src/scheduler/orders/index.js';
import type { DropReason, PriorityClass, QueueBounds } from '../../src/scheduler/types.js';
import { item } from './helpers.js';

function queue(bounds: QueueBounds, order: OrderName = 'fcfs', dropLate = false) {
  const drops: string[] = [];
  const q = new AdmissionQueue(
    () => createOrder(order),
    bounds,
    (it, reason: DropReason) => drops.push(`${it.id}:${reason}`),
    { dropLate },
  );
  const offer = (id: string, priority: PriorityClass = 'normal', arrivalMs = 0, deadlineMs = Infinity) =>
    q.offer(item(id, { priority, arrivalMs, deadlineMs }), arrivalMs);
  return { q, drops, offer };
}

describe('AdmissionQueue bounds', () => {
  it('sheds the youngest item of the least urgent class for a strictly more urgent newcomer', () => {
    const { q, drops, offer } = queue({ maxLength: 5, maxWaitMs: 1e6 });
    assert.equal(offer('l1', 'low'), true);
    assert.equal(offer('b1', 'batch'), true);
    assert.equal(offer('l2', 'low'), true);
    assert.equal(offer('b2', 'batch'), true);
    assert.equal(offer('n1', 'normal'), true);
    assert.equal(offer('h1', 'high'), true); // batch is least urgent, b2 its youngest
    assert.equal(offer('h2', 'high'), true); // then b1
    assert.equal(offer('h3', 'high'), true); // then low: l2 is the younger
    assert.equal(offer('l3', 'low'), false); // only low and more urgent left: not strictly more urgent
    assert.equal(offer('n2', 'normal'), true); // sheds l1
    assert.deepEqual(drops, ['b2:shed', 'b1:shed', 'l2:shed', 'l1:shed']);
    assert.equal(q.size, 5);
    assert.equal(q.waiting('batch'), 0);
    assert.deepEqual(
      [0, 0, 0, 0, 0].map(() => {
        const it = q.peek(0, 'interactive')!;
        q.take(it, 0);
        return it.id;
      }),
      ['n1', 'h1', 'h2', 'h3', 'n2'],
    );
  });

  it('refuses a newcomer of the same class as everything waiting', () => {
    const { q, drops, offer } = queue({ maxLength: 2, maxWaitMs: 1e6 });
    offer('n1');
    offer('n2');
    assert.equal(offer('n3'), false);
    assert.deepEqual(drops, []);
    assert.equal(q.size, 2);
  });

  it('refuses a newcomer whose class is full even when the queue is not, without shedding', () => {
    const { q, drops, offer } = queue({
      maxLength: 10,
      maxWaitMs: 1e6,
      perClass: { batch: { maxLength: 1 } },
    });
    assert.equal(offer('b1', 'batch'), true);
    assert.equal(offer('b2', 'batch'), false);
    assert.equal(offer('n1'), true);
    assert.deepEqual(drops, []);
    assert.equal(q.size, 2);
  });

  it('never queues a class whose maxLength is 0, nor anything when the queue maxLength is 0', () => {
    assert.equal(
      queue({ maxLength: 5, maxWaitMs: 1, perClass: { batch: { maxLength: 0 } } }).offer('b', 'batch'),
      false,
    );
    assert.equal(queue({ maxLength: 0, maxWaitMs: 1 }).offer('h', 'high'), false);
  });

  it('keeps batch items in a lane of their own', () => {
    const { q, offer } = queue({ maxLength: 5, maxWaitMs: 1e6 });
    offer('b1', 'batch');
    offer('n1');
    assert.equal(q.peek(0, 'interactive')?.id, 'n1');
    assert.equal(q.peek(0, 'batch')?.id, 'b1');
    assert.equal(q.waiting('interactive'), 1);
    assert.equal(q.waiting('batch'), 1);
  });

  it('removes a waiting item on request without reporting a drop', () => {
    const { q, drops, offer } = queue({ maxLength: 5, maxWaitMs: 1e6 });
    offer('n1');
    offer('n2');
    assert.equal(q.remove('n1')?.id, 'n1');
    assert.equal(q.remove('n1'), undefined);
    assert.equal(q.peek(0, 'interactive')?.id, 'n2');
    assert.deepEqual(drops, []);
  });

  it('rejects malformed bounds with the field named', () => {
    const f = () => {};
    const make = (b: QueueBounds) => () => new AdmissionQueue(() => createOrder('fcfs'), b, f);
    assert.throws(make({ maxLength: 1.5, maxWaitMs: 1 }), /bounds.maxLength must be a whole number/);
    assert.throws(make({ maxLength: 1, maxWaitMs: 0 }), /bounds.maxWaitMs must be a positive number/);
    assert.throws(
      make({ maxLength: 1, maxWaitMs: 1, perClass: { low: { maxWaitMs: -1 } } }),
      /bounds.perClass.low.maxWaitMs/,
    );
  });
});

describe('AdmissionQueue expiry', () => {
  it('drops items at their class or global wait bound, whichever is shorter, and says when the next one is due', () => {
    const { q, drops, offer } = queue({
      maxLength: 10,
      maxWaitMs: 1000,
      perClass: { high: { maxWaitMs: 200 }, batch: { maxWaitMs: 5000 } },
    });
    offer('n1', 'normal', 0);
    offer('h1', 'high', 100);
    offer('h2', 'high', 250);
    offer('b1', 'batch', 300);
    offer('n2', 'normal', 500);
    assert.equal(q.maxWaitMs('high'), 200);
    assert.equal(q.maxWaitMs('batch'), 1000); // the global bound also applies
    assert.equal(q.expire(299), 300); // h1 is due at 100 + 200
    assert.deepEqual(drops, []);
    assert.equal(q.expire(300), 450); // h2 at 250 + 200
    assert.deepEqual(drops, ['h1:wait_timeout']);
    assert.equal(q.expire(1000), 1300); // n1 and h2 go; b1 is due at 300 + 1000
    assert.deepEqual(drops, ['h1:wait_timeout', 'h2:wait_timeout', 'n1:wait_timeout']);
    assert.equal(q.expire(1300), 1500);
    assert.equal(q.expire(1500), Number.POSITIVE_INFINITY);
    assert.deepEqual(drops.slice(3), ['b1:wait_timeout', 'n2:wait_timeout']);
    assert.equal(q.size, 0);
  });

  it('with dropLate (edf), drops items whose deadline has come, in both lanes', () => {
    const { q, drops, offer } = queue({ maxLength: 10, maxWaitMs: 1e6 }, 'edf', true);
    offer('d1', 'normal', 0, 300);
    offer('d2', 'normal', 0, Infinity);
    offer('d3', 'normal', 0, 200);
    offer('d4', 'batch', 0, 250);
    assert.equal(q.expire(199), 200);
    assert.equal(q.expire(200), 250);
    assert.deepEqual(drops, ['d3:deadline']);
    assert.equal(q.expire(350), 1e6); // then only d2's wait bound is left
    assert.deepEqual(drops, ['d3:deadline', 'd1:deadline', 'd4:deadline']);
    assert.equal(q.peek(350, 'interactive')?.id, 'd2');
  });

  it('without dropLate, runs late items like any other', () => {
    const { q, drops, offer } = queue({ maxLength: 10, maxWaitMs: 1e6 }, 'edf', false);
    offer('d1', 'normal', 0, 10);
    assert.equal(q.expire(500), 1e6);
    assert.deepEqual(drops, []);
  });

  it('accepts dropLate only with the edf order', () => {
    assert.throws(() => queue({ maxLength: 1, maxWaitMs: 1 }, 'fcfs', true), AssertionError);
  });
});
