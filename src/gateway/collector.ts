/**
 * @module gateway/collector
 * Off the request path: active health checks and engine metrics scrapes, on Clock timers. Results
 * land in each endpoint's data-layer state, which routing reads through snapshots.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { toEndpointMetrics } from '../adapters/engines/metrics-mapping.js';
import type { GatewayRuntime } from './runtime.js';

/** Runs health checks and scrapes for whatever runtime is current. */
export class Collector {
  private healthTimer: TimerHandle | null = null;
  private scrapeTimer: TimerHandle | null = null;
  private stopped = false;
  /** Rounds of checks or scrapes started and not yet landed. */
  pending = 0;

  constructor(
    private readonly clock: Clock,
    private readonly current: () => GatewayRuntime,
  ) {}

  start(): void {
    this.stopped = false;
    void this.healthLoop();
    void this.scrapeLoop();
  }

  stop(): void {
    this.stopped = true;
    if (this.healthTimer) this.clock.clearTimer(this.healthTimer);
    if (this.scrapeTimer) this.clock.clearTimer(this.scrapeTimer);
  }

  /** One round of health checks over every endpoint that has a health path. */
  async checkHealth(): Promise<void> {
    const rt = this.current();
    const timeoutMs = rt.config.health.timeoutMs;
    this.pending++;
    await Promise.all(
      rt.engines().map(async (e) => {
        if (e.healthPath === null) return;
        const res = await e.get(e.healthPath, timeoutMs);
        e.state.healthy = res !== null && res.status >= 200 && res.status < 300;
      }),
    ).finally(() => this.pending--);
    rt.pumpQueues(); // an endpoint may have come back
  }

  /** One round of metrics scrapes over every endpoint with a metrics mapping. */
  async scrape(): Promise<void> {
    const rt = this.current();
    const timeoutMs = rt.config.health.timeoutMs;
    this.pending++;
    await Promise.all(
      rt.engines().map(async (e) => {
        if (e.mapping === null) return;
        const res = await e.get('/metrics', timeoutMs);
        e.state.metrics =
          res !== null && res.status === 200
            ? toEndpointMetrics(res.text, e.mapping, this.clock.now())
            : null;
      }),
    ).finally(() => this.pending--);
    rt.pumpQueues(); // fresh metrics may open a capacity gate
  }

  private async healthLoop(): Promise<void> {
    const interval = this.current().config.health.intervalMs;
    if (this.stopped || interval === 0) return;
    await this.checkHealth();
    if (!this.stopped) this.healthTimer = this.clock.setTimer(interval, () => void this.healthLoop());
  }

  private async scrapeLoop(): Promise<void> {
    const interval = this.current().config.health.scrapeIntervalMs;
    if (this.stopped || interval === 0) return;
    await this.scrape();
    if (!this.stopped) this.scrapeTimer = this.clock.setTimer(interval, () => void this.scrapeLoop());
  }
}
