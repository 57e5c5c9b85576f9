/**
 * @module gateway/runtime
 * A versioned runtime built from one frozen config: pools and their endpoints (http engines with
 * data-layer state). A reload builds a new runtime and swaps it in atomically; requests in flight
 * keep the runtime they started with. Endpoints whose config did not change are carried over with
 * their state (in-flight counts, breaker, health), and so is each pool's {@link PoolDriver}: its
 * routing knowledge (load ledger, prefix index, and plugin state while the profile is unchanged),
 * its queue while the pool's scheduling config is unchanged (a changed one takes the waiting
 * requests over), and its autoscaling loop. A removed pool's waiting requests get 503.
 * An autoscaled pool's replicas arrive here as ordinary `http` endpoints: the gateway rebuilds the
 * runtime from its effective config (the file's endpoints plus the registered replicas) whenever
 * they change, through this same path, so a replica change keeps what the pool has learnt.
 */
import type { Clock } from '../core/clock.js';
import { type Rng, SeededRng } from '../core/rng.js';
import { HttpEngine } from '../adapters/engines/http-engine.js';
import type { EndpointConfig, SwitchyardConfig } from '../config/schema.js';
import { EndpointState } from '../datalayer/endpoint-state.js';
import type { EmulatorFleet } from '../emulator/fleet.js';
import { builtinRoutingRegistry } from '../plugins/routing/register.js';
import { type DriverEndpoint, PoolDriver } from '../pool/driver.js';
import { type PoolPlan, compilePools } from '../pool/plan.js';
import type { Router } from '../router/router.js';
import { type TierAlias, compileTiers } from '../tiers/plan.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import { type GatewayDriver, driverHost } from './admission.js';
import type { PoolScaler } from './autoscaling.js';

/**
 * One pool in one config version: the endpoints serving a client model name, and its driver (the
 * router's knowledge, the queue, the autoscaling loop), which outlives the version.
 */
export interface PoolRuntime {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly engines: readonly HttpEngine[];
  readonly driver: GatewayDriver;
  /** The pool's autoscaler; null for fixed endpoints. */
  readonly scaler: PoolScaler | null;
  /** What this version sets on the driver when it activates. */
  readonly plan: PoolPlan;
  readonly router: Router;
  readonly endpoints: readonly DriverEndpoint<HttpEngine>[];
}

/** Everything request handling needs from one config version. */
export class GatewayRuntime {
  /** Client model name (pool name or alias) → pool. */
  readonly byModel: ReadonlyMap<string, PoolRuntime>;
  /** Tier alias → its compiled rules; alias names never collide with pool names (config cross-check). */
  readonly tiers: ReadonlyMap<string, TierAlias>;
  /** Seeded randomness shared by the pools' routers, so a decision sequence can be replayed. */
  readonly rng: Rng;

  constructor(
    readonly version: number,
    readonly config: Readonly<SwitchyardConfig>,
    readonly pools: readonly PoolRuntime[],
    rng: Rng = new SeededRng(config.router.seed),
  ) {
    const byModel = new Map<string, PoolRuntime>();
    for (const p of pools) for (const name of [p.name, ...p.aliases]) byModel.set(name, p);
    this.byModel = byModel;
    this.tiers = compileTiers(config);
    this.rng = rng;
  }

  /** Every engine of every pool. */
  engines(): HttpEngine[] {
    return this.pools.flatMap((p) => p.engines);
  }

  /**
   * Makes this version the one that serves: each pool's driver routes over this version's
   * endpoints with this version's profile and queue (an unchanged profile keeps its plugins, the
   * ledger is kept either way), and a removed pool's driver answers its waiting requests 503.
   */
  activate(prev: GatewayRuntime | null): void {
    for (const p of this.pools) {
      p.driver.useRouter(p.router, p.plan.routing);
      p.driver.setScaling(p.scaler?.loop ?? null);
      p.driver.setQueue(p.plan.queue);
      p.driver.setEndpoints(p.endpoints);
    }
    const kept = new Set(this.pools.map((p) => p.driver));
    for (const q of prev?.pools ?? []) if (!kept.has(q.driver)) q.driver.close();
  }

  /** Capacity may have freed outside the request path (health, scrapes): start who fits. */
  pumpQueues(): void {
    for (const p of this.pools) p.driver.pump();
  }

  /**
   * True when every pool has at least one endpoint that is healthy with its circuit not open, or is
   * autoscaled and has no endpoint at all (at zero it serves through the activator).
   */
  ready(): { ready: boolean; pools: Record<string, number> } {
    const pools: Record<string, number> = {};
    let ready = true;
    for (const p of this.pools) {
      const usable = p.engines.filter((e) => e.state.healthy && e.state.breaker.state() !== 'open').length;
      pools[p.name] = usable;
      if (usable === 0 && !(p.scaler !== null && p.engines.length === 0)) ready = false;
    }
    return { ready, pools };
  }
}

/**
 * Builds the runtime for `cfg`, reusing unchanged engines and every pool's driver of `prev`.
 * Emulated endpoints are started through `fleet`. Throws (and starts nothing that stays) when a
 * plugin type is unknown.
 */
export async function buildRuntime(
  cfg: Readonly<SwitchyardConfig>,
  prev: GatewayRuntime | null,
  deps: {
    clock: Clock;
    fleet: EmulatorFleet;
    metrics: GatewayMetrics;
    /** Pool name → its autoscaler, for pools with a `scaling` block. */
    scalers?: ReadonlyMap<string, PoolScaler>;
  },
): Promise<GatewayRuntime> {
  const registry = builtinRoutingRegistry();
  const rng = prev?.rng ?? new SeededRng(cfg.router.seed);
  const reusable = new Map<string, HttpEngine>();
  for (const e of prev?.engines() ?? []) reusable.set(engineKey(e.state.pool, e.options), e);
  const plans = compilePools(cfg);
  const drivers = new Map<string, GatewayDriver>();
  for (const plan of plans) {
    const name = plan.name;
    const driver =
      prev?.pools.find((p) => p.name === name)?.driver ??
      new PoolDriver<HttpEngine>(name, deps.clock, rng, registry, driverHost(name, deps.metrics));
    drivers.set(name, driver);
  }
  // Compile every pool's router before any engine starts, so an unknown policy or plugin starts nothing.
  const routers = new Map(plans.map((p) => [p.name, drivers.get(p.name)!.prepareRouting(p.routing)]));
  const pools: PoolRuntime[] = [];
  for (const plan of plans) {
    const { name } = plan;
    const engines: HttpEngine[] = [];
    const endpoints: DriverEndpoint<HttpEngine>[] = [];
    for (const { config: ep, info } of plan.endpoints) {
      const options = await engineOptions(name, ep, deps.fleet);
      const key = engineKey(name, options);
      const existing = reusable.get(key);
      if (existing) {
        existing.state.maxConcurrency = ep.maxConcurrency;
        existing.state.info = info;
      }
      const engine =
        existing ??
        new HttpEngine(
          options,
          new EndpointState(ep.name, name, ep.maxConcurrency, deps.clock, plan.breaker, info),
        );
      engines.push(engine);
      endpoints.push({ id: key, state: engine.state, ref: engine });
    }
    pools.push({
      name,
      aliases: plan.aliases,
      engines,
      driver: drivers.get(name)!,
      scaler: deps.scalers?.get(name) ?? null,
      plan,
      router: routers.get(name)!,
      endpoints,
    });
  }
  return new GatewayRuntime((prev?.version ?? 0) + 1, cfg, pools, rng);
}

async function engineOptions(
  pool: string,
  ep: EndpointConfig,
  fleet: EmulatorFleet,
): Promise<HttpEngine['options']> {
  const upstreamModel = ep.model ?? pool;
  if (ep.kind === 'http') {
    return {
      name: ep.name,
      url: ep.url,
      upstreamModel,
      apiKey: ep.apiKey,
      engine: ep.engine,
      healthPath: ep.healthPath,
      connections: ep.connections ?? ep.maxConcurrency,
      timeouts: ep.timeouts,
    };
  }
  const url = await fleet.ensure({
    name: ep.name,
    profile: ep.profile,
    servedModelName: upstreamModel,
    port: ep.port,
  });
  return {
    name: ep.name,
    url,
    upstreamModel,
    engine: 'vllm',
    connections: Math.min(ep.maxConcurrency, 512),
    timeouts: ep.timeouts,
  };
}

function engineKey(pool: string, o: HttpEngine['options']): string {
  return JSON.stringify([
    pool,
    o.name,
    o.url,
    o.upstreamModel,
    o.apiKey,
    o.engine,
    o.healthPath,
    o.connections,
    o.timeouts,
  ]);
}
