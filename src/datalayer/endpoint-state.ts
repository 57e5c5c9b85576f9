/**
 * @module datalayer/endpoint-state
 * The per-endpoint data layer: counters owned by the gateway (in flight, breaker, health, scraped
 * engine metrics). Routing never touches it directly; it reads a frozen {@link EndpointView}.
 */
import type { Clock } from '../core/clock.js';
import {
  type EndpointInfo,
  type EndpointMetrics,
  type EndpointView,
  PLAIN_ENDPOINT,
} from '../framework/endpoint.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';

/** Mutable state of one endpoint, updated by explicit events. */
export class EndpointState {
  inFlight = 0;
  healthy = true;
  metrics: EndpointMetrics | null = null;
  readonly breaker: CircuitBreaker;

  constructor(
    readonly id: string,
    readonly pool: string,
    public maxConcurrency: number,
    clock: Clock,
    breaker: CircuitBreakerOptions,
    public info: EndpointInfo = PLAIN_ENDPOINT,
  ) {
    this.breaker = new CircuitBreaker(clock, breaker);
  }

  /** A frozen copy for one routing decision; `index` is the endpoint's place in its pool. */
  view(index: number): EndpointView {
    return Object.freeze({
      id: this.id,
      index,
      pool: this.pool,
      healthy: this.healthy,
      circuit: this.breaker.state(),
      inFlight: this.inFlight,
      maxConcurrency: this.maxConcurrency,
      metrics: this.metrics,
      info: this.info,
    });
  }
}
