/**
 * @module core/virtual-clock
 * A {@link Clock} whose time moves only when its timers run: a binary min-heap of timers ordered by
 * (due time, insertion order). Timers due at the same time fire in the order they were set, so a run
 * is deterministic. The engine-model tests and the simulator drive decision code with it.
 */
import type { Clock, TimerHandle } from './clock.js';

interface VirtualTimer extends TimerHandle {
  readonly due: number;
  readonly seq: number;
  fn: (() => void) | null;
}

/** Virtual time in ms, starting at `startMs`. */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap: VirtualTimer[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer: VirtualTimer = { __timer: true, due: this.t + Math.max(0, delayMs), seq: this.seq++, fn };
    this.push(timer);
    return timer;
  }

  clearTimer(handle: TimerHandle): void {
    (handle as VirtualTimer).fn = null; // removed lazily when it reaches the top
  }

  /** Pending (not cleared) timers. */
  get pending(): number {
    let n = 0;
    for (const t of this.heap) if (t.fn !== null) n++;
    return n;
  }

  /** Runs timers in order until none is due at or before `untilMs`, then sets the time to `untilMs`. */
  runUntil(untilMs: number): void {
    while (this.heap.length > 0 && this.heap[0]!.due <= untilMs) this.fireNext();
    if (untilMs > this.t) this.t = untilMs;
  }

  /** Runs timers until none is left (or `maxTimers` have fired, to stop runaway loops). Returns how many fired. */
  runAll(maxTimers = 10_000_000): number {
    let fired = 0;
    while (this.heap.length > 0 && fired < maxTimers) if (this.fireNext()) fired++;
    return fired;
  }

  private fireNext(): boolean {
    const timer = this.pop();
    if (timer.fn === null) return false;
    this.t = timer.due;
    const fn = timer.fn;
    timer.fn = null;
    fn();
    return true;
  }

  private push(timer: VirtualTimer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): VirtualTimer {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
