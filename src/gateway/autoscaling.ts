/**
 * @module gateway/autoscaling
 * The autoscaler in the live gateway: one {@link PoolScaler} per pool with a `scaling` block. It
 * owns the pool's metrics window, its {@link PoolAutoscaler} (policy, planner) and its actuator,
 * and keeps the set of replicas that serve; the gateway turns that set into `kind: http` endpoints
 * of the pool by rebuilding its runtime (the reload path), so routing, queues and the collector see
 * replicas exactly as configured endpoints.
 *
 * ```
 *  the pool's driver (pool/driver.ts, pool/scaling.ts; the simulator runs the same loop):
 *    arrival, no usable endpoint ─► wake, first token, completion, every 1 s a sample ─► MetricsWindow
 *    every policy.intervalMs ─► PoolAutoscaler.tick ─► target ─► planner ─► actuator.apply
 *  actuator hooks:  ready  ─► register ─► host rebuilds (the pool's queue is pumped) ─► serving
 *                   drain  ─► unregister ─► rebuild ─► resolves once the dropped engine is idle
 *                   stopped / exited ─► unregister if still registered ─► rebuild
 * ```
 *
 * A scaler lives across config reloads while its pool's `scaling` block is unchanged (its key is
 * the block's JSON); a changed block gets a new scaler (from its minimum) and the old one drains.
 */
import { fileURLToPath } from 'node:url';
import { ProcessActuator, type ProcessActuatorOptions, type ProcessEndpoint } from '../actuators/process.js';
import { EmulatedActuator } from '../actuators/emulated.js';
import type { EmulatedEngineServer } from '../emulator/server.js';
import type { KubeEndpoint } from '../actuators/kubernetes.js';
import { type PoolAutoscaler, type ScaleEvent, describePlacements } from '../autoscaler/controller.js';
import { createPolicy } from '../autoscaler/policies/index.js';
import type { Actuator, Placement, ReplicaStatus } from '../autoscaler/types.js';
import type { Clock } from '../core/clock.js';
import { loadedProfile } from '../engine-model/profile-registry.js';
import { type EndpointConfig, type ScalingConfig, endpointSchema } from '../config/schema.js';
import type { Logger } from '../obs/logger.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import { EMULATED_COLD_START_MS, type ScalingPlan, scalingPlan } from '../pool/plan.js';
import { ScalingLoop } from '../pool/scaling.js';
import type { PoolRuntime } from './runtime.js';

/** The `switchyard` CLI next to this module (dist/src/cli/main.js). */
const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** What a scaler needs from the gateway that hosts it. */
export interface ScalerHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  /** The pool as it serves now (undefined while there is no runtime, or once the pool is gone). */
  pool(name: string): PoolRuntime | undefined;
  /** The registered replicas changed: rebuild the runtime (coalesced); resolves once the new one serves. */
  replicasChanged(): Promise<void>;
  /** Resolves once the engine at `url` that a rebuild dropped from `pool` has no request left (at once if none). */
  retired(pool: string, url: string): Promise<void>;
}

/** The actuators a live pool can run: the {@link Actuator} plus their lifecycle. */
interface LiveActuator extends Actuator {
  /** Kubernetes: the first poll (discovers running pods). */
  start?(): Promise<void>;
  /** Stops the replicas (process) or the polling (Kubernetes). */
  close(): Promise<void>;
  /** Starts and stops under way, where the actuator counts them (emulated). */
  readonly pending?: number;
}

/** One autoscaled pool's scaler; see the module comment. */
export class PoolScaler {
  readonly plan: ScalingPlan;
  /** The loop the pool's driver runs (window, policy, wake rule). */
  readonly loop: ScalingLoop;
  private readonly log: Logger;
  private started = false;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly pool: string,
    cfg: ScalingConfig,
    private readonly host: ScalerHost,
    private readonly replicas: ReplicaSet,
    private readonly actuator: LiveActuator,
  ) {
    this.plan = scalingPlan(cfg);
    this.log = replicas.log;
    const policy = createPolicy(cfg.policy, cfg.options);
    this.loop = new ScalingLoop(this.plan.spec, policy, guarded(actuator, this.log), host.clock, {
      onEvent: (ev) => this.report(ev),
      onError: (err) => this.log.error({ err: err.message }, 'scaling decision failed'),
    });
  }

  /** The `scaling` block's identity: a reload with an equal one keeps the scaler and its replicas. */
  get key(): string {
    return this.plan.key;
  }

  get autoscaler(): PoolAutoscaler {
    return this.loop.autoscaler;
  }

  /**
   * Builds the scaler of `pool` (nothing starts until {@link start}). Throws on a bad policy or
   * options, so a reload that carries one is rejected whole.
   */
  static async create(pool: string, cfg: ScalingConfig, host: ScalerHost): Promise<PoolScaler> {
    const log = host.log.child({ pool });
    const replicas = new ReplicaSet(pool, cfg, host, log);
    const actuator = await createActuator(pool, cfg, host, replicas, log);
    try {
      return new PoolScaler(pool, cfg, host, replicas, actuator);
    } catch (err) {
      await actuator.close();
      throw err;
    }
  }

  /** The replicas serving now, as endpoints of the pool. */
  endpoints(): readonly EndpointConfig[] {
    return this.replicas.endpoints();
  }

  /** A process actuator's replicas with their URLs and pids (empty for Kubernetes). */
  processes(): readonly ProcessEndpoint[] {
    return this.actuator instanceof ProcessActuator ? this.actuator.endpoints() : [];
  }

  /** The emulated actuator's replica engines by replica id (empty for other actuators). */
  emulatedEngines(): Map<string, EmulatedEngineServer> {
    return this.actuator instanceof EmulatedActuator ? this.actuator.fleet.servers() : new Map();
  }

  /** Actuator work under way (emulated replicas starting or stopping); 0 where not counted. */
  get pending(): number {
    return this.actuator.pending ?? 0;
  }

  /** Replica counts by phase, as the actuator reports them. */
  counts(): ReturnType<PoolAutoscaler['counts']> {
    return this.loop.autoscaler.counts();
  }

  /**
   * Applies the initial target and starts the loop's timers. A Kubernetes fleet is polled first and
   * taken over at its running size, so a gateway restart scales nothing down.
   */
  async start(): Promise<void> {
    if (this.started || this.closing !== null) return;
    this.started = true;
    let running: number | undefined;
    if (this.actuator.start !== undefined) {
      await this.actuator
        .start()
        .catch((err: Error) => this.log.warn({ err: err.message }, 'first poll failed'));
      running = this.actuator.replicas().filter((r) => r.phase !== 'draining').length;
    }
    if (this.closing !== null) return;
    this.loop.start(running);
  }

  /** Stops deciding and closes the actuator (process: drains and stops every replica). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.replicas.closing = true;
    this.loop.stop();
    await this.actuator.close();
  }

  /** Logs and counts a change of the target (an event that changes nothing is not reported). */
  private report(ev: ScaleEvent): void {
    if (ev.from === ev.to) return;
    const placements = describePlacements(ev.plan.placements);
    this.log.info({ from: ev.from, to: ev.to, reason: ev.reason, placements }, 'scale target changed');
    this.host.metrics.scaleEvents.inc({ model: this.pool, reason: ev.reason });
  }
}

/**
 * The replicas of one pool that serve (registered with the router), by replica id, and the hooks
 * the actuators call. Changes ask the host for a rebuild.
 */
class ReplicaSet {
  private readonly serving = new Map<string, EndpointConfig>();
  /** Set when the scaler closes: late readiness reports are ignored. */
  closing = false;

  constructor(
    private readonly pool: string,
    private readonly cfg: ScalingConfig,
    private readonly host: ScalerHost,
    readonly log: Logger,
  ) {}

  endpoints(): EndpointConfig[] {
    return [...this.serving.values()];
  }

  /** A replica answers its health check: it becomes an endpoint of the pool. */
  ready(id: string, type: string, origin: string, engine: string): void {
    if (this.closing) return;
    const profile = this.cfg.catalog.find((t) => t.name === type)?.profile;
    const ep = endpointSchema.parse({
      kind: 'http',
      name: id.replace(/[^A-Za-z0-9._-]/g, '-'),
      url: `${origin}/v1`,
      engine,
      profile,
      maxConcurrency: this.cfg.maxConcurrency,
      ...(this.cfg.actuator.kind === 'process' ? { healthPath: this.cfg.actuator.healthPath } : {}),
    });
    this.serving.set(id, ep);
    this.changed();
  }

  /** Stops routing to the replica; resolves once the requests it had have finished. */
  async drain(id: string): Promise<void> {
    const ep = this.serving.get(id);
    if (ep === undefined || ep.kind !== 'http') return;
    this.serving.delete(id);
    await this.host.replicasChanged();
    await this.host.retired(this.pool, ep.url);
  }

  /** The replica is gone (stopped, crashed, or no longer ready): it must not be routed to. */
  gone(id: string): void {
    if (this.serving.delete(id)) this.changed();
  }

  private changed(): void {
    this.host.replicasChanged().catch((err: Error) => this.log.error({ err: err.message }, 'rebuild failed'));
  }
}

/** The actuator of a `scaling.actuator` block, wired to `replicas`. */
async function createActuator(
  pool: string,
  cfg: ScalingConfig,
  host: ScalerHost,
  replicas: ReplicaSet,
  log: Logger,
): Promise<LiveActuator> {
  const a = cfg.actuator;
  if (a.kind === 'process') {
    const options: ProcessActuatorOptions = {
      command: a.command ?? defaultCommand(cfg),
      catalog: cfg.catalog,
      model: pool,
      healthPath: a.healthPath,
      readyTimeoutMs: a.readyTimeoutMs,
      drainTimeoutMs: a.drainTimeoutMs,
      clock: host.clock,
      logger: log,
      onReady: (r, url) => {
        // The cold start as measured live: from the spawn to the first healthy answer.
        host.metrics.coldStart.observe({ model: pool, type: r.type }, (host.clock.now() - r.sinceMs) / 1000);
        replicas.ready(r.id, r.type, url, a.engine);
      },
      drain: (id) => replicas.drain(id),
      onStopped: (id) => replicas.gone(id),
      onExit: (id) => replicas.gone(id),
    };
    return new ProcessActuator(options);
  }
  if (a.kind === 'emulated') {
    const coldStartMs = scalingPlan(cfg).replicaColdStartMs;
    return new EmulatedActuator({
      catalog: cfg.catalog,
      model: pool,
      clock: host.clock,
      coldStartMs,
      onReady: (r, url) => {
        host.metrics.coldStart.observe({ model: pool, type: r.type }, (host.clock.now() - r.sinceMs) / 1000);
        replicas.ready(r.id, r.type, url.replace(/\/v1$/, ''), 'vllm');
      },
      drain: (id) => replicas.drain(id),
      onStopped: (id) => replicas.gone(id),
    });
  }
  // Loaded only when a pool uses it: the Kubernetes client takes most of a second to import, and
  // every `switchyard engine` a process actuator spawns loads this module.
  const { KubernetesActuator } = await import('../actuators/kubernetes.js');
  const seen = (e: KubeEndpoint): void => {
    if (e.phase === 'ready') replicas.ready(e.id, e.type, e.url, a.engine);
    else replicas.gone(e.id); // starting again or terminating: Kubernetes drains the pod itself
  };
  return new KubernetesActuator({
    deployments: a.deployments.map(({ type, tier, namespace, name, service }) => ({
      type,
      tier,
      namespace,
      name,
      service,
    })),
    pollIntervalMs: a.pollMs,
    clock: host.clock,
    logger: log,
    onChange: ({ added, changed, removed }) => {
      for (const e of added) seen(e);
      for (const e of changed) seen(e);
      for (const e of removed) replicas.gone(e.id);
    },
    onError: (err) => log.warn({ err: err.message }, 'kubernetes actuator call failed'),
  });
}

/** An emulated engine of the type's profile serving the pool's name (`switchyard engine`). */
function defaultCommand(cfg: ScalingConfig): string[] {
  // A profile loaded from a file is unknown to the child until it reads the same file.
  const files = new Set(cfg.catalog.flatMap((t) => loadedProfile(t.profile)?.source ?? []));
  return [
    process.execPath,
    CLI_MAIN,
    'engine',
    ...[...files].flatMap((f) => ['--profile-file', f]),
    '--host',
    '{host}',
    '--port',
    '{port}',
    '--profile',
    '{profile}',
    '--model',
    '{model}',
    '--cold-start-ms',
    String(cfg.coldStartMs ?? EMULATED_COLD_START_MS),
  ];
}

/**
 * The actuator as the controller calls it: `apply` never rejects (the controller does not await
 * it), a failure is logged and the next decision applies again.
 */
function guarded(a: LiveActuator, log: Logger): Actuator {
  return {
    kind: a.kind,
    apply: (target: readonly Placement[]) => {
      const failed = (err: Error): void => log.warn({ err: err.message }, 'actuator apply failed');
      try {
        return Promise.resolve(a.apply(target)).catch(failed);
      } catch (err) {
        failed(err as Error);
      }
    },
    replicas: (): readonly ReplicaStatus[] => a.replicas(),
  };
}
