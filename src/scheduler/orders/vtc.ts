/**
 * @module scheduler/orders/vtc
 * The Virtual Token Counter of Sheng et al., "Fairness in Serving Large Language Models" (OSDI
 * 2024, Algorithm 2), as in the authors' artifact github.com/Ying1123/VTC-artifact,
 * `slora/server/router/vtc_req_queue.py`:
 *
 * - each tenant t has a counter c_t of the tokens it has been served, weighted input 1 : output 2
 *   (wp = 1, wq = 2, the artifact's `input_price` / `output_price`) and divided by its weight;
 * - the next item is the oldest waiting item of the waiting tenant with the smallest counter
 *   (`generate_new_batch`; equal counters: the tenant whose oldest item came first);
 * - a tenant that starts waiting again has its counter lifted to max(c_t, min over the other
 *   waiting tenants' counters) (`append`), so time spent idle earns no credit;
 * - counters grow only through {@link VtcOrder.onServed}: the caller reports a request's prompt
 *   tokens when it starts it (from inside `tryStart`, so the next pick of the same pump sees the
 *   charge, as the artifact charges the prompt at admission) and its output tokens later. The pool
 *   driver (pool/driver.ts), live and simulated alike, reports them once, when the response
 *   completes with its usage (a proxy sees no per-token count it can trust before then), where
 *   the artifact's `update_counter` charges each decode step: a tenant's long answers are charged
 *   late, and a failed request's output is never charged.
 *
 * One case differs: the artifact lifts only against waiting tenants, so a tenant that arrives to
 * an empty queue keeps a low counter and, once others wait again, is served ahead of them until it
 * catches up. Here a tenant that arrives to an empty queue is lifted to the highest counter: a
 * busy period starts level.
 *
 * Tenants that wait sit in a heap keyed (counter, seq of their oldest item), re-sifted when their
 * counter or oldest item changes: push, pop, remove and onServed are O(log tenants); each
 * tenant's items are a FIFO. One small record is kept per tenant ever seen and never dropped (a
 * counter must outlive its tenant's idle spells). Tenants are whatever `x-switchyard-tenant`
 * values clients send, so the table grows with the distinct names seen.
 */
import { assert } from '../../core/assert.js';
import type { QueueItem, QueueOrder } from '../types.js';
import { Fifo, type FifoNode, type HeapNode, IndexedHeap } from './structures.js';

/** The VTC paper's cost of a prompt token and of an output token. */
export const VTC_INPUT_WEIGHT = 1;
export const VTC_OUTPUT_WEIGHT = 2;

interface Entry {
  readonly item: QueueItem;
  readonly seq: number;
  readonly tenant: Tenant;
}

interface Tenant {
  readonly weight: number;
  /** Weighted tokens served, divided by the weight. */
  counter: number;
  readonly waiting: Fifo<Entry>;
  /** In the heap exactly while `waiting` is not empty. */
  node: HeapNode<Tenant> | null;
}

const before = (a: Tenant, b: Tenant): boolean =>
  a.counter < b.counter || (a.counter === b.counter && a.waiting.head!.value.seq < b.waiting.head!.value.seq);

/** Token-fair sharing between tenants; see the module comment. */
export class VtcOrder implements QueueOrder {
  readonly name = 'vtc';
  private readonly tenants = new Map<string, Tenant>();
  private readonly backlogged = new IndexedHeap<Tenant>(before);
  private readonly byId = new Map<string, FifoNode<Entry>>();
  private seq = 0;
  private maxCounter = 0;

  /** `weights`: a tenant's share relative to others (default 1 each). */
  constructor(private readonly weights: Readonly<Record<string, number>> = {}) {
    for (const [t, w] of Object.entries(weights))
      assert(w > 0 && Number.isFinite(w), `vtc: tenant weight of ${t} must be a positive number, got ${w}`);
  }

  get size(): number {
    return this.byId.size;
  }

  push(item: QueueItem): void {
    assert(!this.byId.has(item.id), `vtc: ${item.id} is already queued`);
    const t = this.tenant(item.tenant);
    if (t.node === null) t.counter = Math.max(t.counter, this.backlogged.peek()?.counter ?? this.maxCounter);
    this.byId.set(item.id, t.waiting.push({ item, seq: this.seq++, tenant: t }));
    if (t.node === null) t.node = this.backlogged.push(t);
  }

  peek(): QueueItem | undefined {
    return this.backlogged.peek()?.waiting.head?.value.item;
  }

  pop(): QueueItem | undefined {
    const t = this.backlogged.peek();
    if (t === undefined) return undefined;
    const node = t.waiting.head!;
    this.unlink(node);
    return node.value.item;
  }

  remove(id: string): boolean {
    const node = this.byId.get(id);
    if (node === undefined) return false;
    this.unlink(node);
    return true;
  }

  *items(): Iterable<QueueItem> {
    for (const t of this.backlogged.values()) for (const e of t.waiting) yield e.item;
  }

  onServed(tenant: string, promptTokens: number, outputTokens: number): void {
    const t = this.tenant(tenant);
    t.counter += (VTC_INPUT_WEIGHT * promptTokens + VTC_OUTPUT_WEIGHT * outputTokens) / t.weight;
    if (t.counter > this.maxCounter) this.maxCounter = t.counter;
    if (t.node !== null) this.backlogged.update(t.node);
  }

  /** A tenant's counter (weighted tokens served ÷ weight, with lifts); 0 for one never seen. */
  counter(tenant: string): number {
    return this.tenants.get(tenant)?.counter ?? 0;
  }

  private unlink(node: FifoNode<Entry>): void {
    const t = node.value.tenant;
    t.waiting.unlink(node);
    this.byId.delete(node.value.item.id);
    if (t.waiting.size > 0) this.backlogged.update(t.node!);
    else {
      this.backlogged.remove(t.node!);
      t.node = null;
    }
  }

  private tenant(name: string): Tenant {
    let t = this.tenants.get(name);
    if (t === undefined) {
      t = { weight: this.weights[name] ?? 1, counter: 0, waiting: new Fifo<Entry>(), node: null };
      this.tenants.set(name, t);
    }
    return t;
  }
}
