/**
 * @module core/clock
 * The one seam through which decision code and the engine model read time and set timers.
 * Live code gets {@link LiveClock}; the simulator supplies a virtual clock with the same interface,
 * so the same policies and the same engine model run unchanged on virtual time.
 */

/** An opaque handle returned by {@link Clock.setTimer}. */
export interface TimerHandle {
  readonly __timer: true;
}

/** Time source and timer service. Times are milliseconds on a monotonic axis. */
export interface Clock {
  /** Current time in ms (monotonic; the origin is clock-specific). */
  now(): number;
  /** Calls `fn` once after `delayMs` (clamped to ≥ 0). */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  /** Cancels a timer; a no-op if it already fired or was cleared. */
  clearTimer(handle: TimerHandle): void;
}

/** Wall-clock implementation over `performance.now()` and Node timers. */
export class LiveClock implements Clock {
  now(): number {
    return performance.now();
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, Math.max(0, delayMs));
    return t as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  }
}

/** Whole seconds since the Unix epoch, for timestamps that leave the process (OpenAI's `created`). */
export function epochSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
