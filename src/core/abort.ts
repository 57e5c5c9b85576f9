/**
 * @module core/abort
 * A request's cancellation, shaped like `AbortController` and typed as an `AbortSignal` (undici, the
 * admission queue and the stream relay listen on it). Node 20's own AbortSignal is made as an
 * EventTarget whose prototype is swapped before its symbol-keyed fields are added; V8 then gives each
 * signal fresh hidden classes, and the signal survives every scavenge until the next mark-compact
 * (`node --trace-gc-nvp`: ≈ 1.3 kB allocated and ≈ 0.4 kB promoted per signal, against none
 * promoted for a plain EventTarget). One per request was the largest thing the gateway promoted.
 *
 * Only `abort` events exist here; listeners may be functions or `{ handleEvent }` objects, with
 * `once`; the `signal` listener option is not supported (no caller uses it).
 */

type Listener = Parameters<AbortSignal['addEventListener']>[1];
type ListenerOptions = Parameters<AbortSignal['addEventListener']>[2];

/** An AbortSignal that only a {@link Cancellation} aborts. */
export class CancellationSignal implements AbortSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((this: AbortSignal, ev: Event) => unknown) | null = null;
  /** Registered listeners and, at the same index, whether each is `once`; null until the first. */
  private listeners: Listener[] | null = null;
  private once: boolean[] | null = null;

  addEventListener(type: string, listener: Listener | null, options?: ListenerOptions): void {
    // A signal aborts once: a listener added after that would never be called.
    if (type !== 'abort' || listener === null || this.aborted) return;
    this.listeners ??= [];
    this.once ??= [];
    if (this.listeners.includes(listener)) return; // EventTarget ignores a duplicate
    this.listeners.push(listener);
    this.once.push(typeof options === 'object' && options.once === true);
  }

  removeEventListener(type: string, listener: Listener | null): void {
    if (type !== 'abort' || listener === null || this.listeners === null) return;
    const i = this.listeners.indexOf(listener);
    if (i === -1) return;
    this.listeners.splice(i, 1);
    this.once!.splice(i, 1);
  }

  dispatchEvent(event: Event): boolean {
    if (event.type !== 'abort') return true;
    call(this, this.onabort, event);
    const listeners = this.listeners;
    const once = this.once;
    if (listeners === null || once === null) return true;
    // EventTarget's rules: listeners added during the dispatch wait for the next one (there is none),
    // and one removed before its turn is skipped.
    for (const l of listeners.slice()) {
      const i = listeners.indexOf(l);
      if (i === -1) continue;
      if (once[i]) {
        listeners.splice(i, 1);
        once.splice(i, 1);
      }
      call(this, l, event);
    }
    return true;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }
}

/** Calls one listener; like EventTarget, a throwing listener neither stops the others nor the caller. */
function call(
  self: AbortSignal,
  l: Listener | ((this: AbortSignal, ev: Event) => unknown) | null,
  ev: Event,
): void {
  if (l === null) return;
  try {
    if (typeof l === 'function') l.call(self, ev);
    else l.handleEvent(ev);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}

/** `AbortController`'s interface over a {@link CancellationSignal}. */
export class Cancellation {
  readonly signal = new CancellationSignal();

  abort(reason?: unknown): void {
    const s = this.signal;
    if (s.aborted) return;
    s.aborted = true;
    s.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    s.dispatchEvent(new Event('abort'));
  }
}
