/**
 * @module gateway/server
 * The gateway process: an HTTP server for the OpenAI surface plus /health, /ready and /metrics,
 * the current runtime (swapped atomically on reload), the collector, and graceful drain.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, LiveClock, epochSeconds } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';
import type { SwitchyardConfig } from '../config/schema.js';
import { EmulatorFleet } from '../emulator/fleet.js';
import { type Logger, createLogger } from '../obs/logger.js';
import { GatewayMetrics } from '../obs/metrics.js';
import { Collector } from './collector.js';
import { RequestContext } from './context.js';
import { writeError } from './errors.js';
import { handleInference } from './proxy.js';
import { type GatewayRuntime, buildRuntime } from './runtime.js';
import type { Operation } from './validate.js';

/** How to start a gateway. Only `config` is required. */
export interface GatewayOptions {
  readonly config: Readonly<SwitchyardConfig>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Collect Node process metrics too (off in tests that start many gateways). */
  readonly processMetrics?: boolean;
}

type Handler = (req: IncomingMessage, res: ServerResponse, requestId: string) => void;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A running gateway. */
export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly fleet: EmulatorFleet;
  readonly log: Logger;
  private runtime!: GatewayRuntime;
  private readonly clock: Clock;
  private readonly server: Server;
  private readonly collector: Collector;
  private readonly active = new Set<RequestContext>();
  private readonly routes: ReadonlyMap<string, ReadonlyMap<string, Handler>>;
  private draining = false;
  private drainWaiter: (() => void) | null = null;

  private constructor(opts: GatewayOptions) {
    this.clock = opts.clock ?? new LiveClock();
    this.log = opts.logger ?? createLogger(opts.config.log.level);
    this.metrics = new GatewayMetrics({ defaultMetrics: opts.processMetrics ?? true });
    this.fleet = new EmulatorFleet();
    this.collector = new Collector(this.clock, () => this.runtime);
    this.routes = this.buildRoutes();
    this.server = createServer((req, res) => this.dispatch(req, res));
    this.server.keepAliveTimeout = opts.config.server.keepAliveTimeoutMs;
    this.server.headersTimeout = opts.config.server.keepAliveTimeoutMs + 1_000;
    this.server.requestTimeout = 0; // streams may legitimately run for minutes
  }

  /** Builds the runtime (starting emulated engines), listens, and starts health checks. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    gw.runtime = await buildRuntime(opts.config, null, gw.runtimeDeps());
    gw.runtime.activate(null);
    const { host, port } = opts.config.server;
    await new Promise<void>((resolve, reject) => {
      gw.server.once('error', reject);
      gw.server.listen(port, host, () => resolve());
    });
    gw.collector.start();
    return gw;
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Base URL for clients, e.g. `http://127.0.0.1:8080/v1`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  get current(): GatewayRuntime {
    return this.runtime;
  }

  /** Requests accepted and not yet finished. */
  get inFlight(): number {
    return this.active.size;
  }

  /**
   * Swaps in a new config. Requests in flight finish on the runtime they started with; unchanged
   * endpoints keep their state. On any failure the current config stays and the error is thrown.
   */
  async reload(config: Readonly<SwitchyardConfig>): Promise<void> {
    const prev = this.runtime;
    try {
      const next = await buildRuntime(config, prev, this.runtimeDeps());
      this.runtime = next;
      next.activate(prev);
      const kept = new Set(next.engines());
      for (const e of prev.engines()) if (!kept.has(e)) void e.close(); // waits for its in-flight requests
      const emulated = new Set(
        Object.values(config.pools).flatMap((p) =>
          p.endpoints.filter((e) => e.kind === 'emulated').map((e) => e.name),
        ),
      );
      await this.fleet.retain(emulated);
      this.metrics.configReloads.inc({ result: 'ok' });
      this.log.info({ version: next.version }, 'configuration reloaded');
    } catch (err) {
      this.metrics.configReloads.inc({ result: 'error' });
      throw err;
    }
  }

  /**
   * Graceful stop: refuse new requests (503, `Connection: close`), let in-flight requests and
   * streams finish up to `deadlineMs`, then cut what is left and release everything.
   */
  async shutdown(deadlineMs = this.runtime.config.server.drainTimeoutMs): Promise<{ cut: number }> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.active.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(deadlineMs, resolve);
        this.drainWaiter = () => {
          this.clock.clearTimer(timer);
          resolve();
        };
      });
    }
    const cut = this.active.size;
    for (const ctx of [...this.active]) ctx.abort.abort();
    this.collector.stop();
    await Promise.all(this.runtime.engines().map((e) => e.destroy()));
    await this.fleet.closeAll();
    this.server.closeAllConnections();
    await closed;
    return { cut };
  }

  private runtimeDeps(): Parameters<typeof buildRuntime>[2] {
    return { clock: this.clock, fleet: this.fleet, metrics: this.metrics };
  }

  private buildRoutes(): Map<string, Map<string, Handler>> {
    const inference =
      (op: Operation): Handler =>
      (req, res, id) =>
        this.inference(op, req, res, id);
    return new Map<string, Map<string, Handler>>([
      ['/v1/chat/completions', new Map([['POST', inference('chat')]])],
      ['/v1/completions', new Map([['POST', inference('completions')]])],
      ['/v1/embeddings', new Map([['POST', inference('embeddings')]])],
      ['/v1/models', new Map([['GET', (req, res) => this.models(req, res)]])],
      ['/health', new Map([['GET', (_req, res) => json(res, 200, { status: 'ok' })]])],
      ['/ready', new Map([['GET', (_req, res) => this.ready(res)]])],
      ['/metrics', new Map([['GET', (_req, res) => void this.sendMetrics(res)]])],
    ]);
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const methods = this.routes.get(path);
    const id = requestIdOf(req);
    // Every response of this request carries its id, whichever path writes it.
    res.setHeader('x-request-id', id);
    if (methods === undefined) {
      writeError(res, new SwitchyardError('SWY_ERR_NOT_FOUND', `no route for ${req.method} ${path}`));
      return;
    }
    const handler = methods.get(req.method ?? '');
    if (handler === undefined) {
      const allow = [...methods.keys()].join(', ');
      const err = new SwitchyardError(
        'SWY_ERR_METHOD_NOT_ALLOWED',
        `${req.method} is not allowed on ${path}; use ${allow}`,
      );
      writeError(res, err, { allow });
      return;
    }
    if (path.startsWith('/v1/') && !this.authorized(req)) {
      const err = new SwitchyardError('SWY_ERR_UNAUTHORIZED', 'Incorrect API key provided', {
        param: 'authorization',
      });
      writeError(res, err);
      return;
    }
    handler(req, res, id);
  }

  private authorized(req: IncomingMessage): boolean {
    const keys = this.runtime.config.auth.apiKeys;
    if (keys.length === 0) return true;
    const auth = req.headers.authorization;
    const key = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : req.headers['api-key'];
    return typeof key === 'string' && keys.includes(key);
  }

  private inference(op: Operation, req: IncomingMessage, res: ServerResponse, id: string): void {
    if (this.draining) {
      const err = new SwitchyardError('SWY_ERR_SHUTTING_DOWN', 'the gateway is shutting down');
      writeError(res, err, { connection: 'close' });
      return;
    }
    const rt = this.runtime;
    if (this.active.size >= rt.config.limits.maxInFlight) {
      const err = new SwitchyardError(
        'SWY_ERR_OVERLOADED',
        `the gateway has ${this.active.size} requests in flight`,
      );
      writeError(res, err);
      this.metrics.seriesOf('none', 'none').requests(429).inc();
      return;
    }
    const ctx = new RequestContext(id, rt, this.log, this.clock, this.metrics, (c) => this.done(c));
    this.active.add(ctx);
    res.on('close', () => {
      if (!ctx.isFinished) ctx.abort.abort();
    });
    void handleInference(op, req, res, ctx).finally(() => ctx.finish(499));
  }

  private done(ctx: RequestContext): void {
    this.active.delete(ctx);
    if (this.active.size === 0 && this.drainWaiter !== null) this.drainWaiter();
  }

  private models(_req: IncomingMessage, res: ServerResponse): void {
    const created = epochSeconds();
    const data = [...this.runtime.byModel.keys(), ...this.runtime.tiers.keys()].map((id) => ({
      id,
      object: 'model',
      created,
      owned_by: 'switchyard',
    }));
    json(res, 200, { object: 'list', data });
  }

  private ready(res: ServerResponse): void {
    const r = this.runtime.ready();
    const ok = r.ready && !this.draining;
    json(res, ok ? 200 : 503, {
      status: ok ? 'ready' : 'not ready',
      draining: this.draining,
      pools: r.pools,
    });
  }

  private async sendMetrics(res: ServerResponse): Promise<void> {
    const m = this.metrics;
    m.inFlight.reset();
    for (const ctx of this.active) m.inFlight.inc({ model: ctx.model });
    for (const e of this.runtime.engines()) {
      m.endpointInFlight.set({ endpoint: e.name }, e.state.inFlight);
      m.endpointHealthy.set({ endpoint: e.name }, e.state.healthy ? 1 : 0);
      m.endpointCircuitOpen.set({ endpoint: e.name }, e.state.breaker.state() === 'open' ? 1 : 0);
    }
    m.queueLength.reset();
    for (const p of this.runtime.pools) {
      for (const [c, n] of Object.entries(p.admission.waitingByClass()))
        m.queueLength.set({ model: p.name, class: c }, n);
    }
    const body = await m.registry.metrics();
    res.writeHead(200, { 'content-type': m.registry.contentType });
    res.end(body);
  }
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

function json(res: ServerResponse, status: number, obj: unknown): void {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
