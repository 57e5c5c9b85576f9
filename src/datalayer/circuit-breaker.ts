/**
 * @module datalayer/circuit-breaker
 * Passive health: consecutive failures open the circuit; after `openMs` one half-open probe is let
 * through; its success closes the circuit, its failure opens it again. Time only via the Clock.
 *
 *   closed ──(failureThreshold consecutive failures)──► open ──(openMs elapsed)──► half-open
 *     ▲                                                  ▲                            │
 *     └───────────────(probe succeeds)───────────────────┼────(probe fails)───────────┘
 */
import type { Clock } from '../core/clock.js';
import type { CircuitState } from '../framework/endpoint.js';

export interface CircuitBreakerOptions {
  readonly failureThreshold: number;
  readonly openMs: number;
}

/** One endpoint's breaker. `state()` is what routing sees; `onSend` claims the half-open probe. */
export class CircuitBreaker {
  private failures = 0;
  private openedAtMs = Number.NaN;
  private probeInFlight = false;
  private current: 'closed' | 'open' = 'closed';

  constructor(
    private readonly clock: Clock,
    private readonly opts: CircuitBreakerOptions,
  ) {}

  /** `open` while cooling down or while the half-open probe is out; `half-open` when a probe may go. */
  state(): CircuitState {
    if (this.current === 'closed') return 'closed';
    if (this.probeInFlight) return 'open';
    return this.clock.now() - this.openedAtMs >= this.opts.openMs ? 'half-open' : 'open';
  }

  /** A request is being sent; when the circuit is half-open it becomes the probe. */
  onSend(): void {
    if (this.current === 'open' && this.state() === 'half-open') this.probeInFlight = true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.probeInFlight = false;
    this.current = 'closed';
  }

  onFailure(): void {
    this.failures++;
    if (this.current === 'open' || this.failures >= this.opts.failureThreshold) {
      this.current = 'open';
      this.openedAtMs = this.clock.now();
    }
    this.probeInFlight = false;
  }

  /** Consecutive failures since the last success. */
  get consecutiveFailures(): number {
    return this.failures;
  }
}
