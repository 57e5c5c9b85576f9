/**
 * @module actuators/process
 * The actuator of a fleet of local processes: one child process per replica (an emulated engine,
 * `vllm serve`, …), each on a free loopback port.
 *
 * ```
 * apply(target) ─► per (type, tier): too few ─► spawn ─► starting ─► GET {url}{healthPath} = 200 ─► ready
 *                                                            │ (every healthIntervalMs,      (onReady)
 *                                                            │  for at most readyTimeoutMs)
 *                                                            └─ timeout ─► kill ─► onStartFailed, onStopped
 *                  too many ─► newest starting first, else newest ready ─► draining
 *                              ─► drain(id) (ready ones; ≤ drainTimeoutMs) ─► SIGTERM
 *                              ─► SIGKILL to its process group after killGraceMs ─► onStopped
 * a process that exits on its own ─► onExit (removed; the next apply replaces it)
 * ```
 *
 * Every replica ends with exactly one of `onStopped` (this actuator stopped it) or `onExit` (it
 * died). `apply` is idempotent and serialised: a call made while one runs queues its target, and
 * only the latest queued target is carried out. `apply` resolves once the spawns and removals it
 * needs have begun; cold starts and drains go on in the background (they show as `starting` and
 * `draining` in {@link ProcessActuator.replicas}).
 */
import { LatestTarget } from './latest-target.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import type { Actuator, InstanceType, Placement, PriceTier, ReplicaStatus } from '../autoscaler/types.js';
import { reconcile } from '../autoscaler/reconcile.js';
import { type Clock, LiveClock, type TimerHandle } from '../core/clock.js';
import { ENGINE_PROFILES } from '../engine-model/profiles.js';
import type { Logger } from '../obs/logger.js';

/** A replica process as the host sees it. */
export interface ProcessEndpoint extends ReplicaStatus {
  /** Origin of its server, e.g. `http://127.0.0.1:41234` (an OpenAI engine serves under `/v1`). */
  readonly url: string;
  readonly port: number;
  /** Process id (undefined if the spawn itself failed). */
  readonly pid: number | undefined;
}

export interface ProcessActuatorOptions {
  /**
   * argv of a replica, for types without an entry in {@link commands}. Placeholders: `{port}`,
   * `{host}`, `{name}` (the replica id), `{profile}` (the type's engine profile, from
   * {@link catalog}), `{model}` ({@link model}, else the profile's model id).
   */
  readonly command?: readonly string[];
  /** argv per instance type name (same placeholders). */
  readonly commands?: Readonly<Record<string, readonly string[]>>;
  /** Instance types, for `{profile}`. */
  readonly catalog?: readonly InstanceType[];
  /** Served model name for `{model}`. */
  readonly model?: string;
  /** Address the replicas listen on and are reached at (default 127.0.0.1). */
  readonly host?: string;
  /** Health path polled until it answers 200 (default `/health`, as vLLM and the emulator). */
  readonly healthPath?: string;
  /** Health poll period, ms (default 250). */
  readonly healthIntervalMs?: number;
  /** A replica not healthy this long after its spawn is killed, ms (default 600 000). */
  readonly readyTimeoutMs?: number;
  /** Longest wait for {@link drain}, ms (default 120 000). */
  readonly drainTimeoutMs?: number;
  /** Wait between SIGTERM and SIGKILL, ms (default 5 000). */
  readonly killGraceMs?: number;
  readonly cwd?: string;
  /** Added to the parent's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** The children's stdout/stderr: discarded (default) or the parent's. */
  readonly stdio?: 'ignore' | 'inherit';
  readonly clock?: Clock;
  readonly logger?: Logger;

  /** A replica answers its health check: register `url` with the router. */
  onReady?(replica: ProcessEndpoint, url: string): void;
  /**
   * A ready replica is being removed: stop routing to it and resolve once its in-flight requests
   * have finished. Bounded by `drainTimeoutMs`; a rejection is logged and the stop goes on.
   */
  drain?(id: string): Promise<void>;
  /** This actuator stopped the replica (removed, failed start, or close): it is gone. */
  onStopped?(id: string): void;
  /** The replica's process exited on its own (code null: killed by a signal). It is gone. */
  onExit?(id: string, code: number | null): void;
  /** A replica did not become healthy in time (or could not be spawned); `onStopped` follows. */
  onStartFailed?(id: string, reason: string): void;
}

const DEFAULTS = {
  host: '127.0.0.1',
  healthPath: '/health',
  healthIntervalMs: 250,
  readyTimeoutMs: 600_000,
  drainTimeoutMs: 120_000,
  killGraceMs: 5_000,
};

interface Replica {
  readonly id: string;
  readonly seq: number;
  readonly type: string;
  readonly tier: PriceTier;
  readonly sinceMs: number;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  phase: ReplicaStatus['phase'];
  /** Set once this actuator decided to stop it (its exit is then expected). */
  stopping: Promise<void> | null;
  healthTimer: TimerHandle | null;
  exited: boolean;
  readonly exit: Promise<void>;
  markExited: () => void;
}

/** Runs each replica as a local child process. */
export class ProcessActuator implements Actuator {
  readonly kind = 'process';
  private readonly o: ProcessActuatorOptions & typeof DEFAULTS;
  private readonly clock: Clock;
  private readonly fleet = new Map<string, Replica>();
  private seq = 0;
  /** Serialised applies: only the latest queued target runs. */
  private readonly applies = new LatestTarget<readonly Placement[]>(
    (t) => this.reconcileTo(t),
    () => this.closed,
  );
  private closed = false;
  private readonly killAllOnExit = (): void => {
    for (const r of this.fleet.values()) signalGroup(r, 'SIGKILL');
  };

  constructor(options: ProcessActuatorOptions) {
    this.o = { ...DEFAULTS, ...stripUndefined(options) };
    this.clock = options.clock ?? new LiveClock();
    if (!options.command && !options.commands)
      throw new Error('ProcessActuator: give `command` or `commands` (argv per instance type)');
    for (const k of ['healthIntervalMs', 'readyTimeoutMs', 'drainTimeoutMs', 'killGraceMs'] as const) {
      const v = this.o[k];
      if (!(Number.isFinite(v) && v > 0)) throw new Error(`ProcessActuator: ${k} must be a positive number`);
    }
  }

  /** Reconciles the fleet toward `target` (see the module doc for ordering and serialisation). */
  apply(target: readonly Placement[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('ProcessActuator: closed'));
    try {
      this.countTarget(target); // an invalid target fails here, before anything changes
    } catch (err) {
      return Promise.reject(err);
    }
    return this.applies.submit(target);
  }

  replicas(): readonly ReplicaStatus[] {
    return [...this.fleet.values()].map(({ id, type, tier, phase, sinceMs }) => ({
      id,
      type,
      tier,
      phase,
      sinceMs,
    }));
  }

  /** The replicas with their URLs, ports and pids. */
  endpoints(): readonly ProcessEndpoint[] {
    return [...this.fleet.values()].map(toEndpoint);
  }

  /** Stops every replica (ready ones drained first) and refuses further applies. */
  async close(): Promise<void> {
    this.closed = true;
    await this.applies.settle();
    await Promise.all([...this.fleet.values()].map((r) => this.stop(r)));
    process.off('exit', this.killAllOnExit);
  }

  /** One apply, run by {@link LatestTarget}. */
  private async reconcileTo(target: readonly Placement[]): Promise<void> {
    this.countTarget(target);
    await this.reconcile(target);
  }

  /** Wanted count per `type\ttier`; throws on a type without a command or a bad count. */
  private countTarget(target: readonly Placement[]): Map<string, number> {
    const wanted = new Map<string, number>();
    target.forEach((p, i) => {
      if (!Number.isInteger(p.count) || p.count < 0)
        throw new Error(`target[${i}].count: ${p.count} is not a whole number ≥ 0`);
      if (!this.o.commands?.[p.type] && !this.o.command)
        throw new Error(`target[${i}].type: no command for instance type "${p.type}"`);
      const k = key(p.type, p.tier);
      wanted.set(k, (wanted.get(k) ?? 0) + p.count);
    });
    return wanted;
  }

  private async reconcile(target: readonly Placement[]): Promise<void> {
    const active = [...this.fleet.values()].filter((r) => r.stopping === null);
    const plan = reconcile(target, active);
    for (const id of plan.stop) void this.stop(this.fleet.get(id)!);
    for (const { type, tier } of plan.start) {
      if (this.closed) break;
      await this.spawnReplica(type, tier);
    }
  }

  private async spawnReplica(type: string, tier: PriceTier): Promise<void> {
    const seq = ++this.seq;
    const id = `${type}-${tier}-${seq}`;
    const port = await freePort(this.o.host);
    const argv = this.argv(type, id, port);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.o.cwd,
      env: { ...process.env, ...this.o.env },
      stdio: this.o.stdio ?? 'ignore',
      detached: true, // own process group, so that a stop can reach the engine's workers too
    });
    let markExited = (): void => {};
    const exit = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    const r: Replica = {
      id,
      seq,
      type,
      tier,
      sinceMs: this.clock.now(),
      port,
      url: `http://${urlHost(this.o.host)}:${port}`,
      child,
      phase: 'starting',
      stopping: null,
      healthTimer: null,
      exited: false,
      exit,
      markExited,
    };
    if (this.fleet.size === 0) process.on('exit', this.killAllOnExit);
    this.fleet.set(id, r);
    child.once('exit', (code) => this.exited(r, code, 'exited'));
    // A spawn that failed (ENOENT, EACCES) emits 'error' and has no pid.
    child.on('error', (err) => this.exited(r, null, err.message));
    this.o.logger?.info({ replica: id, pid: child.pid, port, argv }, 'replica spawned');
    this.pollHealth(r);
  }

  private argv(type: string, id: string, port: number): string[] {
    const template = this.o.commands?.[type] ?? this.o.command!;
    const profile = this.o.catalog?.find((t) => t.name === type)?.profile ?? '';
    const model = this.o.model ?? ENGINE_PROFILES[profile]?.model ?? '';
    const values: Record<string, string> = {
      port: String(port),
      host: this.o.host,
      name: id,
      profile,
      model,
    };
    return template.map((arg) =>
      arg.replace(/\{(port|host|name|profile|model)\}/g, (_, k: string) => values[k]!),
    );
  }

  private pollHealth(r: Replica): void {
    r.healthTimer = null;
    if (r.stopping !== null || r.exited) return;
    if (this.clock.now() - r.sinceMs >= this.o.readyTimeoutMs) {
      this.o.logger?.warn(
        { replica: r.id, readyTimeoutMs: this.o.readyTimeoutMs },
        'replica not ready in time',
      );
      this.o.onStartFailed?.(r.id, `not healthy within ${this.o.readyTimeoutMs} ms`);
      void this.stop(r);
      return;
    }
    httpStatus(`${r.url}${this.o.healthPath}`, Math.min(this.o.healthIntervalMs * 4, 5_000)).then(
      (status) => {
        if (r.stopping !== null || r.exited) return;
        if (status === 200) {
          r.phase = 'ready';
          this.o.logger?.info({ replica: r.id, url: r.url }, 'replica ready');
          this.o.onReady?.(toEndpoint(r), r.url);
          return;
        }
        r.healthTimer = this.clock.setTimer(this.o.healthIntervalMs, () => this.pollHealth(r));
      },
    );
  }

  /** Drains (if it serves) and stops `r`; idempotent. */
  private stop(r: Replica): Promise<void> {
    r.stopping ??= this.stopNow(r);
    return r.stopping;
  }

  private async stopNow(r: Replica): Promise<void> {
    const serving = r.phase === 'ready';
    r.phase = 'draining';
    if (r.healthTimer !== null) this.clock.clearTimer(r.healthTimer);
    this.o.logger?.info({ replica: r.id, serving }, 'replica stopping');
    if (serving && this.o.drain && !r.exited) await this.drainBounded(r.id);
    await this.terminate(r);
    this.fleet.delete(r.id);
    if (this.fleet.size === 0) process.off('exit', this.killAllOnExit);
    this.o.logger?.info({ replica: r.id }, 'replica stopped');
    this.o.onStopped?.(r.id);
  }

  private async drainBounded(id: string): Promise<void> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimer(this.o.drainTimeoutMs, () => resolve('timeout'));
    });
    try {
      const how = await Promise.race([this.o.drain!(id).then(() => 'drained' as const), timeout]);
      if (how === 'timeout') this.o.logger?.warn({ replica: id }, 'drain timed out; stopping anyway');
    } catch (err) {
      this.o.logger?.warn({ replica: id, err: (err as Error).message }, 'drain failed; stopping anyway');
    } finally {
      this.clock.clearTimer(timer!);
    }
  }

  /** SIGTERM, then SIGKILL to the whole group after the grace; resolves once it has exited. */
  private async terminate(r: Replica): Promise<void> {
    if (!r.exited) {
      signal(r, 'SIGTERM');
      if (!(await this.exitWithin(r, this.o.killGraceMs))) {
        this.o.logger?.warn(
          { replica: r.id, killGraceMs: this.o.killGraceMs },
          'replica ignored SIGTERM; SIGKILL',
        );
        signalGroup(r, 'SIGKILL');
        await r.exit;
      }
    }
    signalGroup(r, 'SIGKILL'); // children it left behind (an engine's workers)
  }

  private async exitWithin(r: Replica, ms: number): Promise<boolean> {
    let timer: TimerHandle | undefined;
    const late = new Promise<false>((resolve) => {
      timer = this.clock.setTimer(ms, () => resolve(false));
    });
    const done = await Promise.race([r.exit.then(() => true as const), late]);
    this.clock.clearTimer(timer!);
    return done;
  }

  private exited(r: Replica, code: number | null, why: string): void {
    if (r.exited || (why !== 'exited' && r.child.pid !== undefined)) return;
    r.exited = true;
    r.markExited();
    if (r.healthTimer !== null) this.clock.clearTimer(r.healthTimer);
    if (r.stopping !== null) return; // expected: stopNow reports it
    if (r.child.pid === undefined) {
      this.o.logger?.warn({ replica: r.id, err: why }, 'replica could not be spawned');
      this.o.onStartFailed?.(r.id, `spawn failed: ${why}`);
      void this.stop(r);
      return;
    }
    signalGroup(r, 'SIGKILL');
    this.fleet.delete(r.id);
    if (this.fleet.size === 0) process.off('exit', this.killAllOnExit);
    this.o.logger?.warn({ replica: r.id, code, phase: r.phase }, 'replica exited on its own');
    this.o.onExit?.(r.id, code);
  }
}

/** Surplus replicas to remove: the newest starting ones first (a cold start costs less to cancel than a serving replica), then the newest ready ones. */
function toEndpoint(r: Replica): ProcessEndpoint {
  const { id, type, tier, phase, sinceMs, url, port } = r;
  return { id, type, tier, phase, sinceMs, url, port, pid: r.child.pid };
}

function key(type: string, tier: PriceTier): string {
  return `${type}\t${tier}`;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function signal(r: Replica, sig: NodeJS.Signals): void {
  if (r.child.pid === undefined || r.exited) return;
  try {
    process.kill(r.child.pid, sig);
  } catch {
    // already gone
  }
}

/** Signals the replica's process group (it leads one: spawned detached). */
function signalGroup(r: Replica, sig: NodeJS.Signals): void {
  if (r.child.pid === undefined) return;
  try {
    process.kill(-r.child.pid, sig);
  } catch {
    // ESRCH: the group is empty
  }
}

/** A port free right now on `host` (bind port 0, read it, close). Another process may take it before the replica binds; the replica then exits and the next apply replaces it. */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Status of `GET url` (0 on a connection error or timeout). No keep-alive: a probe holds no socket. */
function httpStatus(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end();
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
