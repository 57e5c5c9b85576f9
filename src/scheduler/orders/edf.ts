/**
 * @module scheduler/orders/edf
 * Earliest deadline first: a heap keyed (deadlineMs, seq). Items without a deadline
 * (deadlineMs = +Infinity) compare equal among themselves, so they come after every finite
 * deadline, first come, first served. push, pop and remove are O(log n). Dropping items whose
 * deadline has passed is the admission queue's job (it reads this order's head).
 */
import { assert } from '../../core/assert.js';
import type { QueueItem, QueueOrder } from '../types.js';
import { type HeapNode, IndexedHeap } from './structures.js';

interface Entry {
  readonly item: QueueItem;
  readonly seq: number;
}

const earlier = (a: Entry, b: Entry): boolean =>
  a.item.deadlineMs < b.item.deadlineMs || (a.item.deadlineMs === b.item.deadlineMs && a.seq < b.seq);

/** Earliest deadline first; see the module comment. */
export class EdfOrder implements QueueOrder {
  readonly name = 'edf';
  private readonly heap = new IndexedHeap<Entry>(earlier);
  private readonly byId = new Map<string, HeapNode<Entry>>();
  private seq = 0;

  get size(): number {
    return this.heap.size;
  }

  push(item: QueueItem): void {
    assert(!this.byId.has(item.id), `edf: ${item.id} is already queued`);
    assert(!Number.isNaN(item.deadlineMs), `edf: ${item.id} has a NaN deadline`);
    this.byId.set(item.id, this.heap.push({ item, seq: this.seq++ }));
  }

  peek(): QueueItem | undefined {
    return this.heap.peek()?.item;
  }

  pop(): QueueItem | undefined {
    const e = this.heap.pop();
    if (e !== undefined) this.byId.delete(e.item.id);
    return e?.item;
  }

  remove(id: string): boolean {
    const node = this.byId.get(id);
    if (node === undefined) return false;
    this.heap.remove(node);
    this.byId.delete(id);
    return true;
  }

  *items(): Iterable<QueueItem> {
    for (const e of this.heap.values()) yield e.item;
  }
}
