/**
 * @module gateway/runtime
 * A versioned runtime built from one frozen config: pools, their endpoints (http engines with
 * data-layer state) and compiled routers. A reload builds a new runtime and swaps it in atomically;
 * requests in flight keep the runtime they started with. Endpoints whose config did not change are
 * carried over with their state (in-flight counts, breaker, health), so a reload loses nothing.
 * So is each pool's admission queue while the pool's scheduling config is unchanged; a changed one
 * hands its waiting requests to the new queue, and a removed pool's waiting requests get 503.
 * An autoscaled pool's replicas arrive here as ordinary `http` endpoints: the gateway rebuilds the
 * runtime from its effective config (the file's endpoints plus the registered replicas) whenever
 * they change, through this same path.
 */
import type { Clock } from '../core/clock.js';
import { type Rng, SeededRng } from '../core/rng.js';
import { getProfile } from '../engine-model/profiles.js';
import { HttpEngine } from '../adapters/engines/http-engine.js';
import { schedulingFor } from '../config/load.js';
import type { EndpointConfig, SwitchyardConfig } from '../config/schema.js';
import { EndpointState } from '../datalayer/endpoint-state.js';
import type { EmulatorFleet } from '../emulator/fleet.js';
import type { EndpointInfo } from '../framework/endpoint.js';
import { builtinRoutingRegistry } from '../plugins/routing/register.js';
import { routingSpec } from '../router/presets.js';
import { Router } from '../router/router.js';
import { type TierAlias, compileTiers } from '../tiers/plan.js';
import type { GatewayMetrics } from '../obs/metrics.js';
import { type PoolActivator, PoolAdmission } from './admission.js';

/** One pool: the endpoints serving a client model name, its router and its admission queue. */
export interface PoolRuntime {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly engines: readonly HttpEngine[];
  readonly router: Router;
  readonly admission: PoolAdmission;
  /** The pool's autoscaler (its activator and metrics window); null for fixed endpoints. */
  readonly scaler: PoolActivator | null;
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
   * Makes this version the one that serves: kept queues route over this version's endpoints, a
   * replaced queue hands its waiting requests over, a removed pool's queue answers them 503.
   */
  activate(prev: GatewayRuntime | null): void {
    const kept = new Set<PoolAdmission>();
    for (const p of this.pools) {
      const old = prev?.pools.find((q) => q.name === p.name)?.admission;
      if (old === p.admission) {
        p.admission.retarget(p);
        kept.add(old);
      } else if (old !== undefined) {
        old.handOver(p.admission);
        kept.add(old);
      }
    }
    for (const q of prev?.pools ?? []) if (!kept.has(q.admission)) q.admission.close();
  }

  /** Capacity may have freed outside the request path (health, scrapes): start who fits. */
  pumpQueues(): void {
    for (const p of this.pools) p.admission.pump();
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
 * Builds the runtime for `cfg`, reusing unchanged engines of `prev`. Emulated endpoints are started
 * through `fleet`. Throws (and starts nothing that stays) when a plugin type is unknown.
 */
export async function buildRuntime(
  cfg: Readonly<SwitchyardConfig>,
  prev: GatewayRuntime | null,
  deps: {
    clock: Clock;
    fleet: EmulatorFleet;
    metrics: GatewayMetrics;
    /** Pool name → its autoscaler, for pools with a `scaling` block. */
    scalers?: ReadonlyMap<string, PoolActivator>;
  },
): Promise<GatewayRuntime> {
  const registry = builtinRoutingRegistry();
  const rng = new SeededRng(cfg.router.seed);
  const reusable = new Map<string, HttpEngine>();
  for (const e of prev?.engines() ?? []) reusable.set(engineKey(e.state.pool, e.options), e);

  // Compile every pool's router before any engine starts, so an unknown policy or plugin starts nothing.
  const routers = new Map(
    Object.entries(cfg.pools).map(([name, def]) => [
      name,
      new Router(
        routingSpec(def.routing ?? cfg.router.profile, cfg.router.profiles),
        registry,
        def.endpoints.map(endpointInfo),
        rng,
      ),
    ]),
  );
  const pools: PoolRuntime[] = [];
  for (const [name, def] of Object.entries(cfg.pools)) {
    const engines: HttpEngine[] = [];
    for (const ep of def.endpoints) {
      const options = await engineOptions(name, ep, deps.fleet);
      const existing = reusable.get(engineKey(name, options));
      const info = endpointInfo(ep);
      if (existing) {
        existing.state.maxConcurrency = ep.maxConcurrency;
        existing.state.info = info;
      }
      engines.push(
        existing ??
          new HttpEngine(
            options,
            new EndpointState(
              ep.name,
              name,
              ep.maxConcurrency,
              deps.clock,
              { failureThreshold: cfg.health.failureThreshold, openMs: cfg.health.openMs },
              info,
            ),
          ),
      );
    }
    const router = routers.get(name)!;
    const scheduling = schedulingFor(cfg, name);
    const key = JSON.stringify(scheduling);
    const prevAdmission = prev?.byModel.get(name)?.admission;
    const scaler = deps.scalers?.get(name) ?? null;
    // A queue is only built here; it starts routing over these engines when the version activates.
    const admission =
      prevAdmission?.name === name && prevAdmission.configKey === key
        ? prevAdmission
        : new PoolAdmission({ name, engines, router, scaler }, key, scheduling, deps.clock, deps.metrics);
    pools.push({ name, aliases: def.aliases, engines, router, admission, scaler });
  }
  return new GatewayRuntime((prev?.version ?? 0) + 1, cfg, pools, rng);
}

function endpointInfo(ep: EndpointConfig): EndpointInfo {
  const info: EndpointInfo = {
    profile: ep.profile === undefined ? null : getProfile(ep.profile),
    weight: ep.weight,
    labels: ep.labels,
  };
  if (ep.maxEngineWaiting === undefined && ep.maxKvUsage === undefined && ep.maxPrefilling === undefined)
    return info;
  return {
    ...info,
    gate: {
      maxEngineWaiting: ep.maxEngineWaiting ?? null,
      maxKvUsage: ep.maxKvUsage ?? null,
      ...(ep.maxPrefilling !== undefined ? { maxPrefilling: ep.maxPrefilling } : {}),
    },
  };
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
