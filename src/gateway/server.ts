/**
 * @module gateway/server
 * The gateway process: an HTTP server for the OpenAI surface plus /health, /ready and /metrics,
 * the current runtime (swapped atomically on reload), the collector, the autoscaled pools'
 * scalers, and graceful drain.
 *
 * The runtime is built from an *effective* config: the file's, with each autoscaled pool's
 * endpoints extended by the replicas its scaler has registered. A reload and a change of replicas
 * both rebuild through {@link buildRuntime} and {@link GatewayRuntime.activate}, one at a time
 * (a burst of replica changes coalesces into one rebuild), so unchanged engines keep their state
 * and queues are retargeted and pumped. An engine a rebuild drops is retired: closed once the
 * requests holding a slot on it have finished.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, LiveClock, epochSeconds } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';
import type { HttpEngine } from '../adapters/engines/http-engine.js';
import type { SwitchyardConfig } from '../config/schema.js';
import { EmulatorFleet } from '../emulator/fleet.js';
import { type Logger, createLogger } from '../obs/logger.js';
import { GatewayMetrics } from '../obs/metrics.js';
import { MODEL_PHASES } from '../router/model-correction.js';
import { scalingPlan } from '../pool/plan.js';
import { AdminApi } from '../tenancy/admin-api.js';
import { Tenancy } from '../tenancy/service.js';
import { PoolScaler, type ScalerHost } from './autoscaling.js';
import { Collector } from './collector.js';
import { RequestContext } from './context.js';
import { asSwitchyardError, writeError } from './errors.js';
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
/** How often a retired engine is checked for requests still holding a slot on it, ms. */
const RETIRE_POLL_MS = 100;

/** A running gateway. */
export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly fleet: EmulatorFleet;
  readonly log: Logger;
  private runtime!: GatewayRuntime;
  /** Keys, limits, budgets and the usage ledger: one per process, kept across reloads. */
  tenancy!: Tenancy;
  private admin!: AdminApi;
  private readonly clock: Clock;
  private readonly server: Server;
  private readonly collector: Collector;
  private readonly active = new Set<RequestContext>();
  private readonly routes: ReadonlyMap<string, ReadonlyMap<string, Handler>>;
  private draining = false;
  private drainWaiter: (() => void) | null = null;
  /** The config as loaded (the runtime serves its effective version: plus the registered replicas). */
  private config: Readonly<SwitchyardConfig>;
  /** Pool name → its scaler, for the pools with a `scaling` block. */
  private scalers: ReadonlyMap<string, PoolScaler> = new Map();
  private readonly scalerHost: ScalerHost;
  /** Scalers a reload replaced or removed, while they drain their replicas. */
  private readonly closingScalers = new Set<Promise<void>>();
  /** Engines a rebuild dropped, until idle and closed; by `pool\0url` for {@link ScalerHost.retired}. */
  private readonly retiring = new Map<string, Promise<void>>();
  private readonly retiringEngines = new Set<HttpEngine>();
  /** Rebuilds and reloads queued or running. */
  private queuedChanges = 0;
  /** Runtime rebuilds (reloads, replica changes) run one at a time, in this chain. */
  private chain: Promise<unknown> = Promise.resolve();
  /** A replica rebuild queued and not yet started: later changes join it. */
  private pendingRebuild: Promise<void> | null = null;
  /** Shutdown is past draining requests: no more rebuilds, retirements end at once. */
  private stopped = false;

  private constructor(opts: GatewayOptions) {
    this.clock = opts.clock ?? new LiveClock();
    this.log = opts.logger ?? createLogger(opts.config.log.level);
    this.metrics = new GatewayMetrics({ defaultMetrics: opts.processMetrics ?? true });
    this.fleet = new EmulatorFleet(this.clock);
    this.collector = new Collector(this.clock, () => this.runtime);
    this.routes = this.buildRoutes();
    this.server = createServer((req, res) => this.dispatch(req, res));
    this.server.keepAliveTimeout = opts.config.server.keepAliveTimeoutMs;
    this.server.headersTimeout = opts.config.server.keepAliveTimeoutMs + 1_000;
    this.server.requestTimeout = 0; // streams may legitimately run for minutes
    this.config = opts.config;
    this.scalerHost = {
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      pool: (name) => this.runtime?.byModel.get(name),
      replicasChanged: () => this.rebuild(),
      retired: (pool, url) => this.retiring.get(retireKey(pool, url)) ?? Promise.resolve(),
    };
  }

  /**
   * Builds the runtime (starting emulated engines), listens, and starts health checks and the
   * autoscaled pools' scalers.
   */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    gw.tenancy = await Tenancy.open(opts.config, gw.clock, gw.log);
    gw.admin = new AdminApi(gw.tenancy, gw.log);
    let created: PoolScaler[] = [];
    try {
      const next = await gw.scalersFor(opts.config);
      created = next.created;
      gw.runtime = await buildRuntime(
        gw.effective(opts.config, next.scalers),
        null,
        gw.runtimeDeps(next.scalers),
      );
      gw.scalers = next.scalers;
    } catch (err) {
      await Promise.all(created.map((s) => s.close()));
      await gw.tenancy.close();
      throw err;
    }
    gw.runtime.activate(null);
    const { host, port } = opts.config.server;
    await new Promise<void>((resolve, reject) => {
      gw.server.once('error', reject);
      gw.server.listen(port, host, () => resolve());
    });
    gw.collector.start();
    gw.startScalers(created);
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
    return this.serial(() => this.applyConfig(config));
  }

  /** Current scalers by pool (read-only; for tests and the metrics endpoint). */
  get poolScalers(): ReadonlyMap<string, PoolScaler> {
    return this.scalers;
  }

  /**
   * A reload: a pool whose `scaling` block is unchanged keeps its scaler and replicas; a new or
   * changed block gets a new scaler, started once the new runtime serves; a replaced or removed
   * scaler drains its replicas in the background.
   */
  private async applyConfig(config: Readonly<SwitchyardConfig>): Promise<void> {
    let created: PoolScaler[] = [];
    try {
      const next = await this.scalersFor(config);
      created = next.created;
      await this.swap(this.effective(config, next.scalers), next.scalers);
      const dropped = [...this.scalers.values()].filter((s) => next.scalers.get(s.pool) !== s);
      this.config = config;
      this.tenancy.reconfigure(config);
      this.scalers = next.scalers;
      created = [];
      this.startScalers(next.created);
      for (const s of dropped) this.retireScaler(s);
      this.metrics.configReloads.inc({ result: 'ok' });
      this.log.info(
        { version: this.runtime.version, pools: Object.keys(config.pools).join(', ') },
        'configuration reloaded',
      );
    } catch (err) {
      await Promise.all(created.map((s) => s.close()));
      this.metrics.configReloads.inc({ result: 'error' });
      throw err;
    }
  }

  /** The scalers `config` needs: the current ones whose block is unchanged, new ones (not started) for the rest. */
  private async scalersFor(
    config: Readonly<SwitchyardConfig>,
  ): Promise<{ scalers: Map<string, PoolScaler>; created: PoolScaler[] }> {
    const scalers = new Map<string, PoolScaler>();
    const created: PoolScaler[] = [];
    try {
      for (const [name, def] of Object.entries(config.pools)) {
        if (def.scaling === undefined) continue;
        const kept = this.scalers.get(name);
        if (kept !== undefined && kept.key === scalingPlan(def.scaling).key) {
          scalers.set(name, kept);
          continue;
        }
        const s = await PoolScaler.create(name, def.scaling, this.scalerHost);
        created.push(s);
        scalers.set(name, s);
      }
    } catch (err) {
      await Promise.all(created.map((s) => s.close()));
      throw err;
    }
    return { scalers, created };
  }

  private startScalers(scalers: readonly PoolScaler[]): void {
    for (const s of scalers) {
      s.start().catch((err: Error) =>
        this.log.error({ pool: s.pool, err: err.message }, 'scaler failed to start'),
      );
    }
  }

  private retireScaler(s: PoolScaler): void {
    const closing = s
      .close()
      .catch((err: Error) => this.log.error({ pool: s.pool, err: err.message }, 'scaler failed to close'))
      .finally(() => this.closingScalers.delete(closing));
    this.closingScalers.add(closing);
  }

  /** `config` with each autoscaled pool's endpoints extended by its registered replicas. */
  private effective(
    config: Readonly<SwitchyardConfig>,
    scalers: ReadonlyMap<string, PoolScaler>,
  ): Readonly<SwitchyardConfig> {
    let pools: SwitchyardConfig['pools'] | null = null;
    for (const [name, s] of scalers) {
      const replicas = s.endpoints();
      const def = config.pools[name];
      if (replicas.length === 0 || def === undefined) continue;
      pools ??= { ...config.pools };
      pools[name] = { ...def, endpoints: [...def.endpoints, ...replicas] };
    }
    return pools === null ? config : { ...config, pools };
  }

  /**
   * The registered replicas changed: rebuild from the current config. Calls made before a queued
   * rebuild starts join it; a failure is logged (the config itself was accepted before).
   */
  private rebuild(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.pendingRebuild ??= this.serial(async () => {
      this.pendingRebuild = null;
      if (this.stopped) return;
      try {
        await this.swap(this.effective(this.config, this.scalers), this.scalers);
        this.log.debug({ version: this.runtime.version }, 'replicas changed; runtime rebuilt');
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'runtime rebuild for replicas failed');
      }
    });
    return this.pendingRebuild;
  }

  /** Runs `fn` after every rebuild queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    this.queuedChanges++;
    const run = this.chain.then(fn).finally(() => this.queuedChanges--);
    this.chain = run.catch(() => {});
    return run;
  }

  /**
   * Background work under way: health and metrics rounds, runtime rebuilds, replicas starting or
   * stopping. A host that drives the gateway on virtual time lets it reach zero before moving on.
   */
  get backgroundWork(): number {
    let n = this.collector.pending + this.queuedChanges;
    for (const s of this.scalers.values()) n += s.pending;
    return n;
  }

  /** Builds and activates the runtime of `effective`; engines it drops are retired. Throws before swapping on failure. */
  private async swap(
    effective: Readonly<SwitchyardConfig>,
    scalers: ReadonlyMap<string, PoolScaler>,
  ): Promise<void> {
    const prev = this.runtime;
    const next = await buildRuntime(effective, prev, this.runtimeDeps(scalers));
    this.runtime = next;
    next.activate(prev);
    const kept = new Set(next.engines());
    for (const e of prev.engines()) if (!kept.has(e)) this.retire(e);
    const emulated = new Set(
      Object.values(effective.pools).flatMap((p) =>
        p.endpoints.filter((e) => e.kind === 'emulated').map((e) => e.name),
      ),
    );
    await this.fleet.retain(emulated);
  }

  /**
   * Closes a dropped engine once no request holds a slot on it (a request may have reserved one
   * and not yet sent); {@link ScalerHost.retired} waits for this before a replica is stopped.
   */
  private retire(e: HttpEngine): void {
    const key = retireKey(e.state.pool, e.options.url);
    this.retiringEngines.add(e);
    const done: Promise<void> = this.whenIdle(e)
      .then(() => e.close())
      .catch((err: Error) => this.log.warn({ endpoint: e.name, err: err.message }, 'engine close failed'))
      .finally(() => {
        this.retiringEngines.delete(e);
        if (this.retiring.get(key) === done) this.retiring.delete(key);
      });
    this.retiring.set(key, done);
  }

  private async whenIdle(e: HttpEngine): Promise<void> {
    while (e.state.inFlight > 0 && !this.stopped) {
      await new Promise<void>((resolve) => this.clock.setTimer(RETIRE_POLL_MS, resolve));
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
    this.stopped = true;
    this.collector.stop();
    // Scalers stop their replicas (process: SIGTERM, then SIGKILL after the grace).
    await Promise.all([...[...this.scalers.values()].map((s) => s.close()), ...this.closingScalers]);
    await Promise.all([...this.runtime.engines(), ...this.retiringEngines].map((e) => e.destroy()));
    await this.fleet.closeAll();
    this.server.closeAllConnections();
    await closed;
    // Last: the ledger's final batch includes the requests cut above.
    await this.tenancy.close();
    return { cut };
  }

  private runtimeDeps(scalers: ReadonlyMap<string, PoolScaler>): Parameters<typeof buildRuntime>[2] {
    return { clock: this.clock, fleet: this.fleet, metrics: this.metrics, scalers };
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
      ['/v1/models', new Map([['GET', (req, res) => void this.models(req, res)]])],
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
    if (path.startsWith('/admin/')) {
      void this.admin.handle(req, res, path, q === -1 ? '' : url.slice(q + 1));
      return;
    }
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
    handler(req, res, id);
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
    const ctx = new RequestContext(
      id,
      rt,
      this.log,
      this.clock,
      this.metrics,
      (c) => this.done(c),
      this.tenancy,
    );
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

  /** The models the caller may use. */
  private async models(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let allowed: readonly string[] | null;
    try {
      allowed = (await this.tenancy.principal(req.headers)).models;
    } catch (err) {
      writeError(res, asSwitchyardError(err));
      return;
    }
    const created = epochSeconds();
    const names = [...this.runtime.byModel.keys(), ...this.runtime.tiers.keys()];
    const data = names
      .filter((id) => allowed === null || allowed.includes(id))
      .map((id) => ({
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
    m.modelCorrection.reset();
    for (const p of this.runtime.pools) {
      for (const [c, n] of Object.entries(p.driver.waitingByClass()))
        m.queueLength.set({ model: p.name, class: c }, n);
      for (const { endpoint, factors } of p.driver.corrections())
        for (const phase of MODEL_PHASES)
          m.modelCorrection.set({ model: p.name, endpoint, phase }, factors[phase]);
    }
    m.poolReplicas.reset();
    m.poolDesiredReplicas.reset();
    for (const [model, s] of this.scalers) {
      for (const [phase, n] of Object.entries(s.counts())) m.poolReplicas.set({ model, phase }, n);
      m.poolDesiredReplicas.set({ model }, s.autoscaler.target);
    }
    const body = await m.registry.metrics();
    res.writeHead(200, { 'content-type': m.registry.contentType });
    res.end(body);
  }
}

function retireKey(pool: string, url: string): string {
  return `${pool}\u0000${url}`;
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
