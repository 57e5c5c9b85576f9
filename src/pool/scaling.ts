/**
 * @module pool/scaling
 * The autoscaler's loop for one pool, the same in the gateway and the simulator: every second the
 * pool's state is sampled into its {@link MetricsWindow}; every `policy.intervalMs` the policy
 * decides; a request that finds the pool with no usable endpoint wakes it at once (the activator),
 * and while requests wait, no decision takes the pool below one replica (a policy that asks for
 * zero then would cancel the cold start they wait for, again at every tick). Timers go through
 * the host's {@link Clock}: live timers in the gateway, the event queue in the simulator.
 */
import { type AutoscalerSpec, PoolAutoscaler, type ScaleEvent } from '../autoscaler/controller.js';
import { MetricsWindow, type PoolSample } from '../autoscaler/metrics-window.js';
import type { Actuator, ScalingPolicy } from '../autoscaler/types.js';
import type { Clock, TimerHandle } from '../core/clock.js';

/** How often the pool's state is sampled into its window, ms (Knative's 1 s scrape). */
export const SAMPLE_INTERVAL_MS = 1000;

/** What the loop reads from its pool (the driver binds it). */
export interface PoolSource {
  /** The pool's state now (its driver's `sample`). */
  sample(): PoolSample;
  /** Requests waiting in the pool's queue now. */
  waiting(): number;
  /** A decision changed (or re-applied) the target. */
  onEvent?(ev: ScaleEvent): void;
}

/** What the loop tells its host. */
export interface ScalingHooks {
  /** A decision changed (or re-applied) the target. */
  onEvent?(ev: ScaleEvent): void;
  /** Whether periodic work goes on (the simulator stops once its replay is over and empty). */
  active?(): boolean;
  /** A decision threw; without this hook the error propagates (the simulator stops on it). */
  onError?(err: Error): void;
}

/** One pool's autoscaling loop; see the module comment. */
export class ScalingLoop {
  readonly window = new MetricsWindow();
  readonly autoscaler: PoolAutoscaler;
  private started = false;
  private sampleTimer: TimerHandle | null = null;
  private tickTimer: TimerHandle | null = null;
  private source: PoolSource | null = null;

  constructor(
    spec: AutoscalerSpec,
    readonly policy: ScalingPolicy,
    actuator: Actuator,
    private readonly clock: Clock,
    private readonly hooks: ScalingHooks = {},
  ) {
    this.autoscaler = new PoolAutoscaler(spec, policy, this.window, actuator);
  }

  /** Connects the loop to its pool (the driver does, when the loop is attached to it). */
  bind(source: PoolSource): void {
    this.source = source;
  }

  /** Applies the initial target (the minimum, or `replicas` of a fleet taken over) and starts the timers. */
  start(replicas?: number): ScaleEvent {
    const now = this.clock.now();
    this.started = true;
    this.sample(now);
    const ev = this.autoscaler.start(now, replicas);
    this.report(ev);
    this.sampleTimer = this.clock.setTimer(SAMPLE_INTERVAL_MS, () => this.sampleLoop());
    this.tickTimer = this.clock.setTimer(this.policy.intervalMs, () => this.tickLoop());
    return ev;
  }

  /** Stops deciding (the scaler closes or the pool is gone). */
  stop(): void {
    this.started = false;
    if (this.sampleTimer !== null) this.clock.clearTimer(this.sampleTimer);
    if (this.tickTimer !== null) this.clock.clearTimer(this.tickTimer);
    this.sampleTimer = null;
    this.tickTimer = null;
  }

  /** A request reached the pool. */
  arrival(nowMs: number): void {
    this.window.arrival(nowMs);
  }

  /** Requests wait for a pool with no usable endpoint: ask for a replica now (Knative's poke). */
  wake(nowMs: number): void {
    if (this.started) this.report(this.autoscaler.wake(nowMs));
  }

  /** A spot replica got its notice and no longer takes requests: its replacement starts now. */
  preempted(nowMs: number): void {
    if (this.started) this.report(this.autoscaler.preempted(nowMs));
  }

  private sample(now: number): void {
    if (this.source !== null) this.window.sample(now, this.source.sample());
  }

  private running(): boolean {
    return this.started && (this.hooks.active?.() ?? true);
  }

  private sampleLoop(): void {
    this.sampleTimer = null;
    if (!this.running()) return;
    this.sample(this.clock.now());
    if (this.running()) this.sampleTimer = this.clock.setTimer(SAMPLE_INTERVAL_MS, () => this.sampleLoop());
  }

  private tickLoop(): void {
    this.tickTimer = null;
    if (!this.running()) return;
    const now = this.clock.now();
    try {
      this.window.at(now); // the policy's windows end now
      // Requests waiting for the pool hold it at one replica at least (see PoolAutoscaler.tick).
      this.report(this.autoscaler.tick(now, (this.source?.waiting() ?? 0) > 0 ? 1 : 0));
    } catch (err) {
      if (this.hooks.onError === undefined) throw err;
      this.hooks.onError(err as Error);
    }
    if (this.running()) this.tickTimer = this.clock.setTimer(this.policy.intervalMs, () => this.tickLoop());
  }

  private report(ev: ScaleEvent | null): void {
    if (ev === null) return;
    this.hooks.onEvent?.(ev);
    this.source?.onEvent?.(ev);
  }
}
