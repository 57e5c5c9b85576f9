/**
 * @module scheduler/orders
 * The queue orders by name, as the configuration and the simulator's `--queue` name them.
 */
import { AssertionError } from '../../core/assert.js';
import type { QueueOrder } from '../types.js';
import { EdfOrder } from './edf.js';
import { FcfsOrder } from './fcfs.js';
import { PriorityOrder } from './priority.js';
import { SjfOrder } from './sjf.js';
import { VtcOrder } from './vtc.js';

export { EdfOrder, FcfsOrder, PriorityOrder, SjfOrder, VtcOrder };

export const ORDER_NAMES = ['fcfs', 'priority', 'vtc', 'sjf', 'edf'] as const;
export type OrderName = (typeof ORDER_NAMES)[number];

/** What the orders take from the scheduling options; each reads only its own fields. */
export interface OrderOptions {
  /** priority: wait (ms) that earns one class of urgency (default 30 000). */
  readonly agingMs?: number;
  /** vtc: per-tenant weights (default 1). */
  readonly tenantWeights?: Readonly<Record<string, number>>;
  /** sjf: cost of one output token in prompt tokens (default 16). */
  readonly sjfOutputWeight?: number;
  /** sjf: wait (ms) after which an item goes before all younger ones (default 60 000). */
  readonly sjfMaxAgeMs?: number;
}

/** A new, empty order named `name`. */
export function createOrder(name: OrderName, opts: OrderOptions = {}): QueueOrder {
  switch (name) {
    case 'fcfs':
      return new FcfsOrder();
    case 'priority':
      return new PriorityOrder(opts.agingMs);
    case 'vtc':
      return new VtcOrder(opts.tenantWeights);
    case 'sjf':
      return new SjfOrder({ outputWeight: opts.sjfOutputWeight, maxAgeMs: opts.sjfMaxAgeMs });
    case 'edf':
      return new EdfOrder();
  }
  throw new AssertionError(`unknown queue order ${String(name)}; known: ${ORDER_NAMES.join(', ')}`);
}
