/**
 * @module scheduler/types
 * The contracts of gateway-side scheduling: what a queued request carries, the queue orders that
 * decide who goes next, and the bounds that keep waiting finite. The gateway and the simulator
 * drive the same {@link AdmissionQueue} (scheduler/admission.ts) over the same orders; nothing here
 * reads a clock or does I/O: times are passed in.
 */

/** Priority classes, most urgent first. `batch` runs only on capacity interactive traffic leaves idle. */
export const PRIORITY_CLASSES = ['high', 'normal', 'low', 'batch'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** The numeric rank of a class (0 = most urgent). */
export function priorityRank(c: PriorityClass): number {
  return PRIORITY_CLASSES.indexOf(c);
}

/** One request waiting for capacity, with everything an order may rank it by. */
export interface QueueItem {
  readonly id: string;
  /** Clock time (ms) it entered the queue. */
  readonly arrivalMs: number;
  /** Fairness key: the tenant (or key) it is billed to; `default` when unknown. */
  readonly tenant: string;
  readonly priority: PriorityClass;
  readonly promptTokens: number;
  /** The output-length predictor's estimate at arrival (SJF ranks by predicted job size). */
  readonly predictedOutputTokens: number;
  /** Latest clock time (ms) its first token is still useful (EDF); +Infinity when none. */
  readonly deadlineMs: number;
}

/** A queue discipline: which waiting item is admitted next. */
export interface QueueOrder {
  readonly name: string;
  readonly size: number;
  push(item: QueueItem, nowMs: number): void;
  /** The next item to admit, without removing it; undefined when empty. */
  peek(nowMs: number): QueueItem | undefined;
  /** Removes and returns the next item to admit. */
  pop(nowMs: number): QueueItem | undefined;
  /** Removes an item (expired, cancelled, shed); returns whether it was queued. */
  remove(id: string): boolean;
  /** Every queued item, in no particular order (bounds and shedding walk it). */
  items(): Iterable<QueueItem>;
  /**
   * Service accounting for fairness orders (VTC): called when an admitted request of `tenant` has
   * been served `promptTokens` and `outputTokens` (as they are known, possibly several times).
   */
  onServed?(tenant: string, promptTokens: number, outputTokens: number): void;
}

/** Waiting limits, for the whole queue and per priority class (a class limit also applies). */
export interface QueueBounds {
  /** Items waiting at most; a full queue sheds the least urgent (batch first) or refuses. */
  readonly maxLength: number;
  /** Longest wait (ms) before an item is dropped with 429. */
  readonly maxWaitMs: number;
  readonly perClass?: Partial<
    Record<PriorityClass, { readonly maxLength?: number; readonly maxWaitMs?: number }>
  >;
}

/** Why an item left the queue without being admitted. */
export type DropReason = 'queue_full' | 'shed' | 'wait_timeout' | 'deadline' | 'cancelled';
