/**
 * @module scheduler/orders/priority
 * Strict priority classes with aging. An item's effective rank is
 * `rank(class) − floor(waited / agingMs)` (rank 0 = high … 3 = batch, unclamped), so a waiting
 * item gains one class of urgency per `agingMs` and no class starves; equal effective ranks go
 * first come, first served.
 *
 * One FIFO per class. Within a class every item has the same base rank and the head has waited
 * longest (items are pushed in arrival order), so the head is the class's best; the next item is
 * the best of the heads: peek and pop are O(classes) = O(4), push and remove O(1).
 */
import { assert } from '../../core/assert.js';
import { PRIORITY_CLASSES, type QueueItem, type QueueOrder } from '../types.js';
import { Fifo, type FifoNode } from './structures.js';

interface Entry {
  readonly item: QueueItem;
  readonly seq: number;
  readonly rank: number;
}

/** Priority classes with aging; see the module comment for the rule. */
export class PriorityOrder implements QueueOrder {
  readonly name = 'priority';
  private readonly classes = PRIORITY_CLASSES.map(() => new Fifo<Entry>());
  private readonly byId = new Map<string, FifoNode<Entry>>();
  private seq = 0;

  /** `agingMs`: wait that earns one class of urgency (+Infinity: no aging). */
  constructor(private readonly agingMs = 30_000) {
    assert(agingMs > 0, `priority: agingMs must be a positive number of ms, got ${agingMs}`);
  }

  get size(): number {
    return this.byId.size;
  }

  push(item: QueueItem): void {
    assert(!this.byId.has(item.id), `priority: ${item.id} is already queued`);
    const rank = PRIORITY_CLASSES.indexOf(item.priority);
    this.byId.set(item.id, this.classes[rank]!.push({ item, seq: this.seq++, rank }));
  }

  peek(nowMs: number): QueueItem | undefined {
    return this.best(nowMs)?.value.item;
  }

  pop(nowMs: number): QueueItem | undefined {
    const node = this.best(nowMs);
    if (node === undefined) return undefined;
    this.classes[node.value.rank]!.unlink(node);
    this.byId.delete(node.value.item.id);
    return node.value.item;
  }

  remove(id: string): boolean {
    const node = this.byId.get(id);
    if (node === undefined) return false;
    this.classes[node.value.rank]!.unlink(node);
    this.byId.delete(id);
    return true;
  }

  *items(): Iterable<QueueItem> {
    for (const c of this.classes) for (const e of c) yield e.item;
  }

  private effectiveRank(e: Entry, nowMs: number): number {
    return e.rank - Math.floor(Math.max(0, nowMs - e.item.arrivalMs) / this.agingMs);
  }

  private best(nowMs: number): FifoNode<Entry> | undefined {
    let best: FifoNode<Entry> | undefined;
    let bestRank = 0;
    for (const c of this.classes) {
      const head = c.head;
      if (head === null) continue;
      const r = this.effectiveRank(head.value, nowMs);
      if (best === undefined || r < bestRank || (r === bestRank && head.value.seq < best.value.seq)) {
        best = head;
        bestRank = r;
      }
    }
    return best;
  }
}
