/**
 * @module scheduler/orders/structures
 * The two containers every queue order is built from, both with exact removal so that `size` is
 * always the number of queued items and nothing dead is kept behind:
 *
 * ```
 * Fifo      head ⇄ node ⇄ node ⇄ tail      push, shift, unlink: O(1)
 * IndexedHeap  [root, …] with node.pos      push, pop, remove, update: O(log n)
 * ```
 *
 * core/min-heap does not fit here: it can neither remove an arbitrary element (cancel, expiry,
 * shedding) nor re-sift one whose key changed (a VTC counter growing).
 */
import { assert } from '../../core/assert.js';

/** A link of a {@link Fifo}; keep it to unlink the value later in O(1). */
export interface FifoNode<T> {
  readonly value: T;
  prev: FifoNode<T> | null;
  next: FifoNode<T> | null;
  /** The list holding it (null once removed): guards against unlinking from the wrong list. */
  owner: Fifo<T> | null;
}

/** A doubly linked FIFO. */
export class Fifo<T> implements Iterable<T> {
  head: FifoNode<T> | null = null;
  tail: FifoNode<T> | null = null;
  size = 0;

  push(value: T): FifoNode<T> {
    const node: FifoNode<T> = { value, prev: this.tail, next: null, owner: this };
    if (this.tail === null) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size++;
    return node;
  }

  shift(): T | undefined {
    const node = this.head;
    if (node === null) return undefined;
    this.unlink(node);
    return node.value;
  }

  unlink(node: FifoNode<T>): void {
    assert(node.owner === this, 'Fifo.unlink: the node is not in this list');
    if (node.prev === null) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === null) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = null;
    node.owner = null;
    this.size--;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let n = this.head; n !== null; n = n.next) yield n.value;
  }
}

/** A slot of an {@link IndexedHeap}; `pos` is its index in the heap array (-1 once removed). */
export interface HeapNode<T> {
  readonly value: T;
  pos: number;
}

/** A binary min-heap whose nodes know their position, so any node can be removed or re-sifted. */
export class IndexedHeap<T> {
  private readonly nodes: HeapNode<T>[] = [];

  /** `less` must be a strict total order (callers end it with a sequence number). */
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.nodes.length;
  }

  peek(): T | undefined {
    return this.nodes[0]?.value;
  }

  push(value: T): HeapNode<T> {
    const node: HeapNode<T> = { value, pos: this.nodes.length };
    this.nodes.push(node);
    this.up(node.pos);
    return node;
  }

  pop(): T | undefined {
    const top = this.nodes[0];
    if (top === undefined) return undefined;
    this.remove(top);
    return top.value;
  }

  remove(node: HeapNode<T>): void {
    const i = node.pos;
    assert(this.nodes[i] === node, 'IndexedHeap.remove: the node is not in this heap');
    const last = this.nodes.pop()!;
    node.pos = -1;
    if (last === node) return;
    this.nodes[i] = last;
    last.pos = i;
    this.update(last);
  }

  /** Restores the order after `node`'s key changed (either way). */
  update(node: HeapNode<T>): void {
    assert(this.nodes[node.pos] === node, 'IndexedHeap.update: the node is not in this heap');
    this.down(this.up(node.pos));
  }

  *values(): Iterable<T> {
    for (const n of this.nodes) yield n.value;
  }

  private up(i: number): number {
    const h = this.nodes;
    const node = h[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (!this.less(node.value, p.value)) break;
      h[i] = p;
      p.pos = i;
      i = parent;
    }
    h[i] = node;
    node.pos = i;
    return i;
  }

  private down(i: number): void {
    const h = this.nodes;
    const node = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.less(h[r]!.value, h[l]!.value) ? r : l;
      const child = h[c]!;
      if (!this.less(child.value, node.value)) break;
      h[i] = child;
      child.pos = i;
      i = c;
    }
    h[i] = node;
    node.pos = i;
  }
}
