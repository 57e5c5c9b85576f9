/**
 * @module obs/metrics
 * The gateway's Prometheus metrics. One registry per gateway instance (tests run several in one
 * process). Metric names end in `_total` or `_seconds`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Every metric the gateway exports. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'endpoint' | 'status'>;
  readonly duration: Histogram<'model' | 'endpoint'>;
  readonly ttft: Histogram<'model' | 'endpoint'>;
  readonly tokens: Counter<'model' | 'endpoint' | 'direction'>;
  readonly inFlight: Gauge<'model'>;
  readonly endpointInFlight: Gauge<'endpoint'>;
  readonly endpointHealthy: Gauge<'endpoint'>;
  readonly endpointCircuitOpen: Gauge<'endpoint'>;
  readonly retries: Counter<'model'>;
  readonly configReloads: Counter<'result'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'switchyard_requests_total',
      help: 'Requests answered, by client model, endpoint ("none" if never routed) and HTTP status.',
      labelNames: ['model', 'endpoint', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'switchyard_request_duration_seconds',
      help: 'End-to-end latency from request received to last byte sent.',
      labelNames: ['model', 'endpoint'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.ttft = new Histogram({
      name: 'switchyard_time_to_first_token_seconds',
      help: 'Streamed requests: time from request received to the first content chunk sent.',
      labelNames: ['model', 'endpoint'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.tokens = new Counter({
      name: 'switchyard_tokens_total',
      help: 'Tokens by direction (prompt, completion) as reported by upstream usage.',
      labelNames: ['model', 'endpoint', 'direction'],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'switchyard_in_flight_requests',
      help: 'Requests accepted and not yet answered, by client model.',
      labelNames: ['model'],
      registers,
    });
    this.endpointInFlight = new Gauge({
      name: 'switchyard_endpoint_in_flight_requests',
      help: 'Requests outstanding at each endpoint.',
      labelNames: ['endpoint'],
      registers,
    });
    this.endpointHealthy = new Gauge({
      name: 'switchyard_endpoint_healthy',
      help: '1 when the last active health check passed.',
      labelNames: ['endpoint'],
      registers,
    });
    this.endpointCircuitOpen = new Gauge({
      name: 'switchyard_endpoint_circuit_open',
      help: '1 while the endpoint circuit breaker is open.',
      labelNames: ['endpoint'],
      registers,
    });
    this.retries = new Counter({
      name: 'switchyard_retries_total',
      help: 'Upstream attempts retried on another endpoint.',
      labelNames: ['model'],
      registers,
    });
    this.configReloads = new Counter({
      name: 'switchyard_config_reloads_total',
      help: 'Configuration reloads by result (ok, error).',
      labelNames: ['result'],
      registers,
    });
  }
}
