/**
 * @module scheduler/admission
 * A pool's bounded waiting room: a queue order (who goes next) plus the bounds of
 * {@link QueueBounds} (how many may wait, and for how long), per priority class and overall.
 *
 * ```
 * offer ──► class full? ──yes──► refuse (queue_full)
 *             │no
 *           queue full? ──yes──► shed the youngest item of the least urgent class if the
 *             │no                 newcomer is strictly more urgent (shed), else refuse
 *           enqueue ──► lane order (interactive | batch) + its class's arrival FIFO
 * ```
 *
 * Batch items wait in a lane of their own (a second instance of the same order) so that the
 * driver can start them only when no other item waits, whatever the order would rank them.
 * Because every item of a class has the same wait bound, the head of each class's arrival FIFO
 * is the next of that class to time out (items are offered in arrival order; one offered late
 * by δ ms may time out up to δ ms late): {@link AdmissionQueue.expire} costs O(expired × log n +
 * classes). With `dropLate` (edf only) the order's head is the earliest deadline, read the same way.
 */
import { assert } from '../core/assert.js';
import { Fifo, type FifoNode } from './orders/structures.js';
import {
  type DropReason,
  PRIORITY_CLASSES,
  type PriorityClass,
  priorityRank,
  type QueueBounds,
  type QueueItem,
  type QueueOrder,
} from './types.js';

/** Batch items wait apart from the rest. */
export type Lane = 'interactive' | 'batch';

/** Receives each item the queue lets go of without admitting it (shed, timed out, late). */
export type DropSink = (item: QueueItem, reason: DropReason) => void;

export interface AdmissionOptions {
  /** Drop items whose deadline has passed (needs the `edf` order, whose head is the earliest deadline). */
  readonly dropLate?: boolean;
}

/** A bounded queue over an order; see the module comment. */
export class AdmissionQueue {
  private readonly interactive: QueueOrder;
  private readonly batch: QueueOrder;
  /** Per class, in arrival order: the youngest of the least urgent class is shed first, the oldest times out first. */
  private readonly classes = PRIORITY_CLASSES.map(() => new Fifo<QueueItem>());
  private readonly byId = new Map<string, FifoNode<QueueItem>>();
  private readonly classMaxLength: number[];
  private readonly classMaxWaitMs: number[];
  private readonly dropLate: boolean;

  /** `makeOrder` is called twice: one order for each {@link Lane}. */
  constructor(
    makeOrder: () => QueueOrder,
    private readonly bounds: QueueBounds,
    private readonly onDrop: DropSink,
    opts: AdmissionOptions = {},
  ) {
    checkBound('bounds', bounds.maxLength, bounds.maxWaitMs);
    for (const [c, b] of Object.entries(bounds.perClass ?? {}))
      checkBound(`bounds.perClass.${c}`, b?.maxLength, b?.maxWaitMs);
    this.classMaxLength = PRIORITY_CLASSES.map((c) => bounds.perClass?.[c]?.maxLength ?? bounds.maxLength);
    this.classMaxWaitMs = PRIORITY_CLASSES.map((c) =>
      Math.min(bounds.maxWaitMs, bounds.perClass?.[c]?.maxWaitMs ?? bounds.maxWaitMs),
    );
    this.interactive = makeOrder();
    this.batch = makeOrder();
    this.dropLate = opts.dropLate ?? false;
    assert(
      !this.dropLate || this.interactive.name === 'edf',
      `dropLate needs the edf order, not ${this.interactive.name}`,
    );
  }

  /** Items waiting, both lanes. */
  get size(): number {
    return this.byId.size;
  }

  /** Items waiting in `lane`. */
  waiting(lane: Lane): number {
    return this.order(lane).size;
  }

  /** The longest an item of class `c` may wait (ms): its class bound or the global one, whichever is shorter. */
  maxWaitMs(c: PriorityClass): number {
    return this.classMaxWaitMs[priorityRank(c)]!;
  }

  /**
   * Enqueues `item` if the bounds allow, shedding a less urgent item
   * when the queue is full (reported to the drop sink as `shed`). False: refused, not enqueued.
   */
  offer(item: QueueItem, nowMs: number): boolean {
    assert(!this.byId.has(item.id), `admission: ${item.id} is already waiting`);
    const rank = priorityRank(item.priority);
    if (this.classes[rank]!.size >= this.classMaxLength[rank]!) return false;
    if (this.byId.size >= this.bounds.maxLength) {
      const victim = this.leastUrgent();
      if (victim === undefined || priorityRank(victim.priority) <= rank) return false;
      this.delete(victim);
      this.onDrop(victim, 'shed');
    }
    this.byId.set(item.id, this.classes[rank]!.push(item));
    this.laneOf(item).push(item, nowMs);
    return true;
  }

  /** The item `lane`'s order would admit next. */
  peek(nowMs: number, lane: Lane): QueueItem | undefined {
    return this.order(lane).peek(nowMs);
  }

  /**
   * `item` (from {@link peek}) has been started: it leaves the queue. Popped when it is still the
   * order's head; removed when the start itself changed the order (a VTC charge from inside
   * `tryStart` may have put another tenant first).
   */
  take(item: QueueItem, nowMs: number): void {
    const order = this.laneOf(item);
    if (order.peek(nowMs) === item) order.pop(nowMs);
    else order.remove(item.id);
    const node = this.byId.get(item.id);
    if (node === undefined) return;
    this.classes[priorityRank(item.priority)]!.unlink(node);
    this.byId.delete(item.id);
  }

  /** Removes a waiting item (its client went away); no drop is reported. */
  remove(id: string): QueueItem | undefined {
    const item = this.byId.get(id)?.value;
    if (item !== undefined) this.delete(item);
    return item;
  }

  /**
   * Drops (through the drop sink) every item that has waited its class's bound (`wait_timeout`)
   * and, with `dropLate`, every item whose deadline has come (`deadline`). Returns the clock time
   * of the next such drop (+Infinity when nothing waits): calling again then drops at least one.
   */
  expire(nowMs: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (let rank = 0; rank < this.classes.length; rank++) {
      const fifo = this.classes[rank]!;
      const waitMs = this.classMaxWaitMs[rank]!;
      for (let head = fifo.head; head !== null; head = fifo.head) {
        const at = head.value.arrivalMs + waitMs;
        if (nowMs < at) {
          next = Math.min(next, at);
          break;
        }
        this.delete(head.value);
        this.onDrop(head.value, 'wait_timeout');
      }
    }
    if (this.dropLate) {
      next = Math.min(next, this.dropPastDeadline(this.interactive, nowMs));
      next = Math.min(next, this.dropPastDeadline(this.batch, nowMs));
    }
    return next;
  }

  /** Forwards service accounting to both lanes' orders (VTC counters see all of a tenant's traffic). */
  onServed(tenant: string, promptTokens: number, outputTokens: number): void {
    this.interactive.onServed?.(tenant, promptTokens, outputTokens);
    this.batch.onServed?.(tenant, promptTokens, outputTokens);
  }

  private dropPastDeadline(order: QueueOrder, nowMs: number): number {
    for (let head = order.peek(nowMs); head !== undefined; head = order.peek(nowMs)) {
      if (nowMs < head.deadlineMs) return head.deadlineMs;
      this.delete(head);
      this.onDrop(head, 'deadline');
    }
    return Number.POSITIVE_INFINITY;
  }

  /** The youngest item of the least urgent class that has any. */
  private leastUrgent(): QueueItem | undefined {
    for (let rank = this.classes.length - 1; rank >= 0; rank--) {
      const tail = this.classes[rank]!.tail;
      if (tail !== null) return tail.value;
    }
    return undefined;
  }

  private delete(item: QueueItem): void {
    this.classes[priorityRank(item.priority)]!.unlink(this.byId.get(item.id)!);
    this.byId.delete(item.id);
    this.laneOf(item).remove(item.id);
  }

  private order(lane: Lane): QueueOrder {
    return lane === 'batch' ? this.batch : this.interactive;
  }

  private laneOf(item: QueueItem): QueueOrder {
    return item.priority === 'batch' ? this.batch : this.interactive;
  }
}

function checkBound(path: string, maxLength: number | undefined, maxWaitMs: number | undefined): void {
  if (maxLength !== undefined)
    assert(
      Number.isInteger(maxLength) && maxLength >= 0,
      `${path}.maxLength must be a whole number ≥ 0, got ${maxLength}`,
    );
  if (maxWaitMs !== undefined)
    assert(maxWaitMs > 0, `${path}.maxWaitMs must be a positive number of ms, got ${maxWaitMs}`);
}
