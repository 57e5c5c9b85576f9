/** Queue items and a fake pool for the scheduler tests. */
import type { SchedulerHooks } from '../../src/scheduler/pool-scheduler.js';
import type { DropReason, QueueItem, QueueOrder } from '../../src/scheduler/types.js';

/** A queue item with neutral defaults: normal class, arrived at 0, no deadline. */
export function item(id: string, over: Partial<QueueItem> = {}): QueueItem {
  return {
    id,
    arrivalMs: 0,
    tenant: 'default',
    priority: 'normal',
    promptTokens: 100,
    predictedOutputTokens: 10,
    deadlineMs: Number.POSITIVE_INFINITY,
    ...over,
  };
}

/** Pops everything at `nowMs`, returning the ids in admission order. */
export function drain(order: QueueOrder, nowMs = 0): string[] {
  const ids: string[] = [];
  for (let it = order.pop(nowMs); it !== undefined; it = order.pop(nowMs)) ids.push(it.id);
  return ids;
}

/** A pool with a fixed number of slots: tryStart succeeds while one is free. */
export class FakePool implements SchedulerHooks {
  readonly started: string[] = [];
  readonly drops: [string, DropReason, number][] = [];
  inFlight = 0;
  /** Runs inside tryStart after a successful start (to mimic callers that report service there). */
  onStart: ((item: QueueItem) => void) | null = null;

  constructor(public limit: number) {}

  tryStart(item: QueueItem): boolean {
    if (this.inFlight >= this.limit) return false;
    this.inFlight++;
    this.started.push(item.id);
    this.onStart?.(item);
    return true;
  }

  /** Requests still prefilling (the batch rule waits for none). */
  prefilling = 0;

  load(): { inFlight: number; limit: number; prefilling: number } {
    return { inFlight: this.inFlight, limit: this.limit, prefilling: this.prefilling };
  }

  drop(item: QueueItem, reason: DropReason, retryAfterS: number): void {
    this.drops.push([item.id, reason, retryAfterS]);
  }

  /** A request finished: its slot is free. */
  finish(): void {
    this.inFlight--;
  }
}
