/**
 * @module obs/metrics
 * The gateway's Prometheus metrics. One registry per gateway instance (tests run several in one
 * process). Metric names end in `_total` or `_seconds`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Queue waits: 0 for fast-path starts (first bucket), up to the batch class's 300 s default bound. */
const QUEUE_WAIT_BUCKETS_S = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

type CounterChild = ReturnType<Counter<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

/** The per-(model, endpoint) series a finished request updates, resolved once and reused. */
export class RequestSeries {
  private readonly byStatus = new Map<number, CounterChild>();

  constructor(
    private readonly m: GatewayMetrics,
    private readonly model: string,
    private readonly endpoint: string,
    readonly duration: HistogramChild,
    readonly ttft: HistogramChild,
    readonly promptTokens: CounterChild,
    readonly completionTokens: CounterChild,
  ) {}

  requests(status: number): CounterChild {
    let c = this.byStatus.get(status);
    if (c === undefined) {
      c = this.m.requests.labels({ model: this.model, endpoint: this.endpoint, status: String(status) });
      this.byStatus.set(status, c);
    }
    return c;
  }
}

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
  readonly routingDecisions: Counter<'model' | 'reason'>;
  readonly modelCorrection: Gauge<'model' | 'endpoint' | 'phase'>;
  readonly tierDecisions: Counter<'alias' | 'pool' | 'rule'>;
  readonly tierPoolFailures: Counter<'alias' | 'pool'>;
  readonly cascadeEscalations: Counter<'alias' | 'check'>;
  readonly configReloads: Counter<'result'>;
  readonly queueLength: Gauge<'model' | 'class'>;
  readonly queueWait: Histogram<'model' | 'class'>;
  readonly queueDrops: Counter<'model' | 'reason'>;
  readonly poolReplicas: Gauge<'model' | 'phase'>;
  readonly poolDesiredReplicas: Gauge<'model'>;
  readonly scaleEvents: Counter<'model' | 'reason'>;
  readonly coldStart: Histogram<'model' | 'type'>;

  private readonly series = new Map<string, RequestSeries>();

  /**
   * The series of one (model, endpoint) pair. prom-client hashes label objects on every call, so the
   * hot path looks them up once here; both names come from the config, which bounds the map.
   */
  seriesOf(model: string, endpoint: string): RequestSeries {
    const key = `${model}\u0000${endpoint}`;
    let s = this.series.get(key);
    if (s === undefined) {
      const labels = { model, endpoint };
      s = new RequestSeries(
        this,
        model,
        endpoint,
        this.duration.labels(labels),
        this.ttft.labels(labels),
        this.tokens.labels({ ...labels, direction: 'prompt' }),
        this.tokens.labels({ ...labels, direction: 'completion' }),
      );
      this.series.set(key, s);
    }
    return s;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Each area registers its metrics in turn: this order is the exposition's.
    ({
      requests: this.requests,
      duration: this.duration,
      ttft: this.ttft,
      tokens: this.tokens,
      inFlight: this.inFlight,
    } = requestMetrics(registers));
    ({
      endpointInFlight: this.endpointInFlight,
      endpointHealthy: this.endpointHealthy,
      endpointCircuitOpen: this.endpointCircuitOpen,
      retries: this.retries,
      routingDecisions: this.routingDecisions,
      modelCorrection: this.modelCorrection,
    } = endpointMetrics(registers));
    ({
      tierDecisions: this.tierDecisions,
      tierPoolFailures: this.tierPoolFailures,
      cascadeEscalations: this.cascadeEscalations,
    } = tierMetrics(registers));
    ({
      queueLength: this.queueLength,
      queueWait: this.queueWait,
      queueDrops: this.queueDrops,
    } = queueMetrics(registers));
    ({
      poolReplicas: this.poolReplicas,
      poolDesiredReplicas: this.poolDesiredReplicas,
      scaleEvents: this.scaleEvents,
      coldStart: this.coldStart,
    } = scalingMetrics(registers));
    this.configReloads = new Counter({
      name: 'switchyard_config_reloads_total',
      help: 'Configuration reloads by result (ok, error).',
      labelNames: ['result'],
      registers,
    });
  }
}

/** What clients asked and got: requests, latencies, tokens, requests in flight. */
function requestMetrics(
  registers: Registry[],
): Pick<GatewayMetrics, 'requests' | 'duration' | 'ttft' | 'tokens' | 'inFlight'> {
  return {
    requests: new Counter({
      name: 'switchyard_requests_total',
      help: 'Requests answered, by client model, endpoint ("none" if never routed) and HTTP status.',
      labelNames: ['model', 'endpoint', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'switchyard_request_duration_seconds',
      help: 'End-to-end latency from request received to last byte sent.',
      labelNames: ['model', 'endpoint'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    ttft: new Histogram({
      name: 'switchyard_time_to_first_token_seconds',
      help: 'Streamed requests: time from request received to the first content chunk sent.',
      labelNames: ['model', 'endpoint'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    tokens: new Counter({
      name: 'switchyard_tokens_total',
      help: 'Tokens by direction (prompt, completion) as reported by upstream usage.',
      labelNames: ['model', 'endpoint', 'direction'],
      registers,
    }),
    inFlight: new Gauge({
      name: 'switchyard_in_flight_requests',
      help: 'Requests accepted and not yet answered, by client model.',
      labelNames: ['model'],
      registers,
    }),
  };
}

/** Endpoints and the routing among them: load, health, circuit breakers, retries, decisions. */
function endpointMetrics(
  registers: Registry[],
): Pick<
  GatewayMetrics,
  | 'endpointInFlight'
  | 'endpointHealthy'
  | 'endpointCircuitOpen'
  | 'retries'
  | 'routingDecisions'
  | 'modelCorrection'
> {
  return {
    endpointInFlight: new Gauge({
      name: 'switchyard_endpoint_in_flight_requests',
      help: 'Requests outstanding at each endpoint.',
      labelNames: ['endpoint'],
      registers,
    }),
    endpointHealthy: new Gauge({
      name: 'switchyard_endpoint_healthy',
      help: '1 when the last active health check passed.',
      labelNames: ['endpoint'],
      registers,
    }),
    endpointCircuitOpen: new Gauge({
      name: 'switchyard_endpoint_circuit_open',
      help: '1 while the endpoint circuit breaker is open.',
      labelNames: ['endpoint'],
      registers,
    }),
    retries: new Counter({
      name: 'switchyard_retries_total',
      help: 'Upstream attempts retried on another endpoint.',
      labelNames: ['model'],
      registers,
    }),
    routingDecisions: new Counter({
      name: 'switchyard_routing_decisions_total',
      help: 'Routing decisions by pool and reason (prefix-hit, least-load, sticky, overflow, …).',
      labelNames: ['model', 'reason'],
      registers,
    }),
    modelCorrection: new Gauge({
      name: 'switchyard_model_correction',
      help: "Observed ÷ predicted step time of an endpoint's engine, by pool, endpoint and phase (prefill: compute-bound constants; decode: the rest), learnt from latencies; 1 = as its profile says. Applied when the predicted-ttft scorer's `correction` is on.",
      labelNames: ['model', 'endpoint', 'phase'],
      registers,
    }),
  };
}

/** Tier aliases: the pool each plan chose first, the pools that failed, cascade escalations. */
function tierMetrics(
  registers: Registry[],
): Pick<GatewayMetrics, 'tierDecisions' | 'tierPoolFailures' | 'cascadeEscalations'> {
  return {
    tierDecisions: new Counter({
      name: 'switchyard_tier_decisions_total',
      help: 'Tier alias decisions by the pool chosen first and the rule that chose it (or header, default).',
      labelNames: ['alias', 'pool', 'rule'],
      registers,
    }),
    tierPoolFailures: new Counter({
      name: 'switchyard_tier_pool_failures_total',
      help: 'Pools of a tier plan that failed or were saturated, so the next pool of the chain was tried.',
      labelNames: ['alias', 'pool'],
      registers,
    }),
    cascadeEscalations: new Counter({
      name: 'switchyard_cascade_escalations_total',
      help: 'Cascade answers that failed a check (empty, refusal, invalid-json) and were asked again of the larger tier.',
      labelNames: ['alias', 'check'],
      registers,
    }),
  };
}

/** The pools' admission queues: lengths, waits, drops. */
function queueMetrics(
  registers: Registry[],
): Pick<GatewayMetrics, 'queueLength' | 'queueWait' | 'queueDrops'> {
  return {
    queueLength: new Gauge({
      name: 'switchyard_queue_length',
      help: "Requests waiting in a pool's admission queue, by pool and priority class.",
      labelNames: ['model', 'class'],
      registers,
    }),
    queueWait: new Histogram({
      name: 'switchyard_queue_wait_seconds',
      help: 'Time from arrival at a pool to the start of the first attempt (0 when nothing had to wait).',
      labelNames: ['model', 'class'],
      buckets: QUEUE_WAIT_BUCKETS_S,
      registers,
    }),
    queueDrops: new Counter({
      name: 'switchyard_queue_drops_total',
      help: 'Requests that left a queue without running: queue_full, shed, wait_timeout, deadline, cancelled (client left).',
      labelNames: ['model', 'reason'],
      registers,
    }),
  };
}

/** Autoscaled pools: replicas by phase, the target, its changes, cold starts. */
function scalingMetrics(
  registers: Registry[],
): Pick<GatewayMetrics, 'poolReplicas' | 'poolDesiredReplicas' | 'scaleEvents' | 'coldStart'> {
  return {
    poolReplicas: new Gauge({
      name: 'switchyard_pool_replicas',
      help: "An autoscaled pool's replicas by phase (starting, ready, draining), as its actuator reports them.",
      labelNames: ['model', 'phase'],
      registers,
    }),
    poolDesiredReplicas: new Gauge({
      name: 'switchyard_pool_desired_replicas',
      help: "An autoscaled pool's target replica count (reference-replica units).",
      labelNames: ['model'],
      registers,
    }),
    scaleEvents: new Counter({
      name: 'switchyard_scale_events_total',
      help: "Changes of an autoscaled pool's target, by the policy's reason (panic, stable, scale-to-zero, activator, …).",
      labelNames: ['model', 'reason'],
      registers,
    }),
    coldStart: new Histogram({
      name: 'switchyard_replica_cold_start_seconds',
      help: 'Time from asking for a replica to its first healthy answer (process actuator), by pool and instance type.',
      labelNames: ['model', 'type'],
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
      registers,
    }),
  };
}
