/**
 * @module scheduler/orders/sjf
 * Shortest predicted job first, with a starvation guard.
 *
 * Job size = promptTokens + outputWeight × predictedOutputTokens. `outputWeight` (default 16) is
 * what one output token costs relative to one prompt token: a decode step advances a request by
 * one token while a prefill step processes a whole chunk of its prompt, so output tokens dominate
 * a request's time; the exact value matters little, since it only has to put long answers after
 * short ones. Equal sizes go first come, first served.
 *
 * Starvation guard: an item that has waited `maxAgeMs` or more (default 60 s) goes before every
 * younger one, oldest first. Items sit both in a heap keyed (size, seq) and in an arrival FIFO;
 * peek looks at the FIFO's head first: push, pop and remove are O(log n).
 */
import { assert } from '../../core/assert.js';
import type { QueueItem, QueueOrder } from '../types.js';
import { Fifo, type FifoNode, type HeapNode, IndexedHeap } from './structures.js';

export interface SjfOptions {
  /** Cost of one output token in prompt tokens (default 16). */
  readonly outputWeight?: number;
  /** Wait (ms) after which an item goes before all younger ones (default 60 000; +Infinity: never). */
  readonly maxAgeMs?: number;
}

interface Entry {
  readonly item: QueueItem;
  readonly seq: number;
  readonly size: number;
  heapNode: HeapNode<Entry> | null;
  fifoNode: FifoNode<Entry> | null;
}

const smaller = (a: Entry, b: Entry): boolean => a.size < b.size || (a.size === b.size && a.seq < b.seq);

/** Shortest predicted job first; see the module comment. */
export class SjfOrder implements QueueOrder {
  readonly name = 'sjf';
  private readonly bySize = new IndexedHeap<Entry>(smaller);
  private readonly byArrival = new Fifo<Entry>();
  private readonly byId = new Map<string, Entry>();
  private readonly outputWeight: number;
  private readonly maxAgeMs: number;
  private seq = 0;

  constructor(opts: SjfOptions = {}) {
    this.outputWeight = opts.outputWeight ?? 16;
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
    assert(this.outputWeight >= 0, `sjf: outputWeight must be ≥ 0, got ${this.outputWeight}`);
    assert(this.maxAgeMs > 0, `sjf: maxAgeMs must be a positive number of ms, got ${this.maxAgeMs}`);
  }

  get size(): number {
    return this.byId.size;
  }

  /** The size `item` is ranked by. */
  jobSize(item: QueueItem): number {
    return item.promptTokens + this.outputWeight * item.predictedOutputTokens;
  }

  push(item: QueueItem): void {
    assert(!this.byId.has(item.id), `sjf: ${item.id} is already queued`);
    const e: Entry = { item, seq: this.seq++, size: this.jobSize(item), heapNode: null, fifoNode: null };
    e.heapNode = this.bySize.push(e);
    e.fifoNode = this.byArrival.push(e);
    this.byId.set(item.id, e);
  }

  peek(nowMs: number): QueueItem | undefined {
    return this.next(nowMs)?.item;
  }

  pop(nowMs: number): QueueItem | undefined {
    const e = this.next(nowMs);
    if (e === undefined) return undefined;
    this.unlink(e);
    return e.item;
  }

  remove(id: string): boolean {
    const e = this.byId.get(id);
    if (e === undefined) return false;
    this.unlink(e);
    return true;
  }

  *items(): Iterable<QueueItem> {
    for (const e of this.byArrival) yield e.item;
  }

  private next(nowMs: number): Entry | undefined {
    const oldest = this.byArrival.head?.value;
    if (oldest !== undefined && nowMs - oldest.item.arrivalMs >= this.maxAgeMs) return oldest;
    return this.bySize.peek();
  }

  private unlink(e: Entry): void {
    this.bySize.remove(e.heapNode!);
    this.byArrival.unlink(e.fifoNode!);
    e.heapNode = e.fifoNode = null;
    this.byId.delete(e.item.id);
  }
}
