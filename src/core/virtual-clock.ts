/**
 * @module core/virtual-clock
 * A {@link Clock} whose time moves only when its timers run: a binary min-heap of timers ordered by
 * (due time, insertion order). Timers due at the same time fire in the order they were set, so a run
 * is deterministic. The engine-model tests and the simulator drive decision code with it.
 */
import type { Clock, TimerHandle } from './clock.js';
import { MinHeap } from './min-heap.js';

interface VirtualTimer extends TimerHandle {
  readonly due: number;
  readonly seq: number;
  fn: (() => void) | null;
}

/** Virtual time in ms, starting at `startMs`. */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap = new MinHeap<VirtualTimer>(
    (a, b) => a.due < b.due || (a.due === b.due && a.seq < b.seq),
  );

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer: VirtualTimer = { __timer: true, due: this.t + Math.max(0, delayMs), seq: this.seq++, fn };
    this.heap.push(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    (handle as VirtualTimer).fn = null; // removed lazily when it reaches the top
  }

  /** Runs timers in order until none is due at or before `untilMs`, then sets the time to `untilMs`. */
  runUntil(untilMs: number): void {
    while (this.heap.size > 0 && this.heap.peek()!.due <= untilMs) this.fireNext();
    if (untilMs > this.t) this.t = untilMs;
  }

  /** Runs timers until none is left (or `maxTimers` have fired, to stop runaway loops). Returns how many fired. */
  runAll(maxTimers = 10_000_000): number {
    let fired = 0;
    while (this.heap.size > 0 && fired < maxTimers) if (this.fireNext()) fired++;
    return fired;
  }

  /** When the next pending timer is due (+Infinity when none is left). */
  nextDueMs(): number {
    while (this.heap.size > 0 && this.heap.peek()!.fn === null) this.heap.pop();
    return this.heap.size > 0 ? this.heap.peek()!.due : Number.POSITIVE_INFINITY;
  }

  /**
   * Fires the next pending timer alone; false when none is left. A host that does real I/O between
   * timers (a live gateway driven on virtual time) steps and lets the I/O settle each time.
   */
  step(): boolean {
    if (this.nextDueMs() === Number.POSITIVE_INFINITY) return false;
    return this.fireNext();
  }

  private fireNext(): boolean {
    const timer = this.heap.pop()!;
    if (timer.fn === null) return false;
    this.t = timer.due;
    const fn = timer.fn;
    timer.fn = null;
    fn();
    return true;
  }
}
