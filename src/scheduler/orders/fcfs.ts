/**
 * @module scheduler/orders/fcfs
 * First come, first served: a linked FIFO; push, pop and remove are O(1).
 */
import { assert } from '../../core/assert.js';
import type { QueueItem, QueueOrder } from '../types.js';
import { Fifo, type FifoNode } from './structures.js';

/** Admits in arrival (push) order. */
export class FcfsOrder implements QueueOrder {
  readonly name = 'fcfs';
  private readonly fifo = new Fifo<QueueItem>();
  private readonly byId = new Map<string, FifoNode<QueueItem>>();

  get size(): number {
    return this.fifo.size;
  }

  push(item: QueueItem): void {
    assert(!this.byId.has(item.id), `fcfs: ${item.id} is already queued`);
    this.byId.set(item.id, this.fifo.push(item));
  }

  peek(): QueueItem | undefined {
    return this.fifo.head?.value;
  }

  pop(): QueueItem | undefined {
    const item = this.fifo.shift();
    if (item !== undefined) this.byId.delete(item.id);
    return item;
  }

  remove(id: string): boolean {
    const node = this.byId.get(id);
    if (node === undefined) return false;
    this.fifo.unlink(node);
    this.byId.delete(id);
    return true;
  }

  items(): Iterable<QueueItem> {
    return this.fifo;
  }
}
