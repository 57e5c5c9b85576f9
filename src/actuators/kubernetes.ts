/**
 * @module actuators/kubernetes
 * The actuator of a Kubernetes fleet: one Deployment per (instance type, price tier), scaled
 * through its `scale` subresource (as `kubectl scale` and the HPA do), and replicas discovered
 * from the EndpointSlices of each Deployment's Service.
 *
 * ```
 * apply(target) ─► per Deployment: GET …/deployments/{name}/scale
 *                  ─► spec.replicas ≠ wanted? PATCH …/scale  {"spec":{"replicas":n}}
 *                                                 (application/merge-patch+json)
 * poll (every pollIntervalMs) ─► GET /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices
 *                                    ?labelSelector=kubernetes.io/service-name={service}
 *      endpoint conditions ─► phase: terminating ─► draining; ready (nil = true) ─► ready;
 *                                    otherwise ─► starting
 *      differences since the last poll ─► onChange({ added, changed, removed })
 * ```
 *
 * Removal and draining are Kubernetes': on a scale-down the ReplicaSet controller deletes pods
 * (not-ready ones first), each pod's endpoint turns `terminating` (here: `draining`) and the pod
 * gets SIGTERM after its preStop hook; the engine finishes its in-flight requests within
 * `terminationGracePeriodSeconds`. The host stops routing to an endpoint once it is not `ready`.
 * Pods asked for but not yet in any EndpointSlice (unscheduled, no IP yet) appear in
 * {@link KubernetesActuator.replicas} as `starting` placeholders, so the autoscaler counts them.
 */
import { LatestTarget } from './latest-target.js';
import {
  AppsV1Api,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  type V1EndpointSlice,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { Actuator, Placement, PriceTier, ReplicaStatus } from '../autoscaler/types.js';
import { type Clock, LiveClock, type TimerHandle } from '../core/clock.js';
import type { Logger } from '../obs/logger.js';

/** The Deployment that runs one (instance type, price tier). */
export interface KubeDeploymentRef {
  readonly type: string;
  readonly tier: PriceTier;
  readonly namespace: string;
  /** Deployment name. */
  readonly name: string;
  /** Service whose EndpointSlices list its pods (default: the Deployment's name). One per Deployment. */
  readonly service?: string;
}

/** One pod endpoint, as discovered. */
export interface KubeEndpoint {
  /** `{namespace}/{pod}` (or `{namespace}/{slice}/{address}` for an endpoint without a Pod ref). */
  readonly id: string;
  /** `{scheme}://{address}:{port}`; an OpenAI engine serves under `/v1`. */
  readonly url: string;
  readonly type: string;
  readonly tier: PriceTier;
  readonly phase: ReplicaStatus['phase'];
  /** When this actuator first saw it (host clock, ms). */
  readonly sinceMs: number;
  /** `{namespace}/{deployment}`. */
  readonly deployment: string;
}

/** What changed between two polls. `changed` holds endpoints whose phase or URL moved. */
export interface KubeEndpointChange {
  readonly added: readonly KubeEndpoint[];
  readonly changed: readonly KubeEndpoint[];
  readonly removed: readonly KubeEndpoint[];
}

export interface KubernetesActuatorOptions {
  readonly deployments: readonly KubeDeploymentRef[];
  /** Credentials and server; default `KubeConfig.loadFromDefault()` (KUBECONFIG, ~/.kube/config, in-cluster). */
  readonly kubeConfig?: KubeConfig;
  /** EndpointSlice poll period, ms (default 5 000). */
  readonly pollIntervalMs?: number;
  /** EndpointSlice port to use, by name (default: each slice's first port). */
  readonly portName?: string;
  /** URL scheme of the endpoints (default `http`). */
  readonly scheme?: 'http' | 'https';
  /** Field manager recorded on the scale patches (default `switchyard`). */
  readonly fieldManager?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Endpoints appeared, changed phase or URL, or disappeared. */
  onChange?(change: KubeEndpointChange): void;
  /** A poll or scale call failed (the last known state is kept). */
  onError?(err: Error): void;
}

interface DeploymentState {
  readonly ref: KubeDeploymentRef;
  readonly service: string;
  readonly label: string;
  /** spec.replicas as last read or written (undefined: not read yet). */
  specReplicas: number | undefined;
  /** When spec.replicas was last raised (sinceMs of the pending placeholders). */
  raisedAtMs: number;
}

/** Scales Deployments and discovers their pods. */
export class KubernetesActuator implements Actuator {
  readonly kind = 'kubernetes';
  private readonly apps: AppsV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly clock: Clock;
  private readonly pollIntervalMs: number;
  private readonly deps: DeploymentState[];
  private known = new Map<string, KubeEndpoint>();
  /** Serialised applies: only the latest queued target runs. */
  private readonly applies = new LatestTarget<readonly Placement[]>(
    (t) => this.reconcileTo(t),
    () => this.closed,
  );
  private pollTimer: TimerHandle | null = null;
  private polling: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly o: KubernetesActuatorOptions) {
    let kc = o.kubeConfig;
    if (!kc) {
      kc = new KubeConfig();
      kc.loadFromDefault();
    }
    this.apps = kc.makeApiClient(AppsV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.clock = o.clock ?? new LiveClock();
    this.pollIntervalMs = o.pollIntervalMs ?? 5_000;
    if (!(this.pollIntervalMs > 0)) throw new Error('KubernetesActuator: pollIntervalMs must be positive');
    this.deps = o.deployments.map((ref, i) => {
      const clash = o.deployments.findIndex((d) => d.type === ref.type && d.tier === ref.tier);
      if (clash !== i)
        throw new Error(`deployments[${i}]: (${ref.type}, ${ref.tier}) already has a Deployment`);
      const service = ref.service ?? ref.name;
      return {
        ref,
        service,
        label: `kubernetes.io/service-name=${service}`,
        specReplicas: undefined,
        raisedAtMs: 0,
      };
    });
  }

  /** Sets each Deployment's replicas to its (type, tier) count (0 if the target omits it). Serialised like the process actuator: only the latest queued target runs. */
  apply(target: readonly Placement[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('KubernetesActuator: closed'));
    try {
      this.wantedPerDeployment(target); // an invalid target fails here, before anything changes
    } catch (err) {
      return Promise.reject(err);
    }
    return this.applies.submit(target);
  }

  /** Discovered endpoints plus a `starting` placeholder per pod asked for and not yet discovered. */
  replicas(): readonly ReplicaStatus[] {
    const out: ReplicaStatus[] = [];
    for (const d of this.deps) {
      const dep = `${d.ref.namespace}/${d.ref.name}`;
      let live = 0;
      for (const e of this.known.values()) {
        if (e.deployment !== dep) continue;
        out.push({ id: e.id, type: e.type, tier: e.tier, phase: e.phase, sinceMs: e.sinceMs });
        if (e.phase !== 'draining') live++;
      }
      for (let i = live; i < (d.specReplicas ?? 0); i++) {
        out.push({
          id: `${dep}#pending-${i - live + 1}`,
          type: d.ref.type,
          tier: d.ref.tier,
          phase: 'starting',
          sinceMs: d.raisedAtMs,
        });
      }
    }
    return out;
  }

  /** The pod endpoints found by the last poll. */
  endpoints(): readonly KubeEndpoint[] {
    return [...this.known.values()];
  }

  /** Polls now, then every `pollIntervalMs` until {@link close}. */
  start(): Promise<void> {
    return this.poll();
  }

  /** One poll of every Deployment's scale and EndpointSlices; `onChange` fires if anything moved. */
  async refresh(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  /** Stops polling. The Deployments keep their size. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer !== null) this.clock.clearTimer(this.pollTimer);
    this.pollTimer = null;
    await Promise.allSettled([this.applies.settle(), this.polling]);
  }

  private async poll(): Promise<void> {
    this.pollTimer = null;
    if (this.closed) return;
    await this.refresh();
    if (!this.closed) this.pollTimer = this.clock.setTimer(this.pollIntervalMs, () => void this.poll());
  }

  /** One apply, run by {@link LatestTarget}. */
  private async reconcileTo(target: readonly Placement[]): Promise<void> {
    await this.scaleAll(this.wantedPerDeployment(target));
  }

  /** Wanted replicas per Deployment (index-aligned with `deps`); throws on a (type, tier) without one. */
  private wantedPerDeployment(target: readonly Placement[]): number[] {
    const wanted = this.deps.map(() => 0);
    target.forEach((p, i) => {
      if (!Number.isInteger(p.count) || p.count < 0)
        throw new Error(`target[${i}].count: ${p.count} is not a whole number ≥ 0`);
      const at = this.deps.findIndex((d) => d.ref.type === p.type && d.ref.tier === p.tier);
      if (at < 0) {
        if (p.count === 0) return;
        throw new Error(`target[${i}]: no Deployment for (${p.type}, ${p.tier})`);
      }
      wanted[at] = (wanted[at] ?? 0) + p.count;
    });
    return wanted;
  }

  private async scaleAll(wanted: readonly number[]): Promise<void> {
    const results = await Promise.allSettled(this.deps.map((d, i) => this.scaleOne(d, wanted[i] ?? 0)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async scaleOne(d: DeploymentState, replicas: number): Promise<void> {
    const { name, namespace } = d.ref;
    try {
      const current = await this.apps.readNamespacedDeploymentScale({ name, namespace });
      d.specReplicas = current.spec?.replicas ?? 0;
      if (d.specReplicas === replicas) return;
      const body = { spec: { replicas } };
      const fieldManager = this.o.fieldManager ?? 'switchyard';
      const scaled = await this.apps.patchNamespacedDeploymentScale(
        { name, namespace, body, fieldManager },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      if (replicas > d.specReplicas) d.raisedAtMs = this.clock.now();
      d.specReplicas = scaled.spec?.replicas ?? replicas;
      this.o.logger?.info({ deployment: `${namespace}/${name}`, replicas }, 'deployment scaled');
    } catch (err) {
      throw this.failed(`scale ${namespace}/${name} to ${replicas}`, err);
    }
  }

  private async pollOnce(): Promise<void> {
    const next = new Map<string, KubeEndpoint>();
    for (const d of this.deps) {
      try {
        const [scale, slices] = await Promise.all([
          this.apps.readNamespacedDeploymentScale({ name: d.ref.name, namespace: d.ref.namespace }),
          this.discovery.listNamespacedEndpointSlice({ namespace: d.ref.namespace, labelSelector: d.label }),
        ]);
        const spec = scale.spec?.replicas ?? 0;
        if (spec > (d.specReplicas ?? 0)) d.raisedAtMs = this.clock.now(); // scaled by someone else
        d.specReplicas = spec;
        for (const e of this.endpointsOf(d, slices.items)) {
          if (!next.has(e.id) || e.phase === 'ready') next.set(e.id, e); // a pod in two slices: prefer ready
        }
      } catch (err) {
        const e = this.failed(`poll ${d.ref.namespace}/${d.ref.name}`, err);
        this.o.onError?.(e);
        // Keep what we knew of this Deployment rather than report its pods gone.
        const dep = `${d.ref.namespace}/${d.ref.name}`;
        for (const k of this.known.values()) if (k.deployment === dep) next.set(k.id, k);
      }
    }
    this.publish(next);
  }

  private endpointsOf(d: DeploymentState, slices: readonly V1EndpointSlice[]): KubeEndpoint[] {
    const out: KubeEndpoint[] = [];
    const scheme = this.o.scheme ?? 'http';
    for (const slice of slices) {
      const port = (this.o.portName ? slice.ports?.find((p) => p.name === this.o.portName) : slice.ports?.[0])
        ?.port;
      if (port === undefined) continue; // no usable port: nothing to route to
      for (const ep of slice.endpoints ?? []) {
        const address = ep.addresses[0];
        if (address === undefined) continue;
        const pod = ep.targetRef?.kind === 'Pod' ? ep.targetRef.name : undefined;
        const id = pod
          ? `${d.ref.namespace}/${pod}`
          : `${d.ref.namespace}/${slice.metadata?.name}/${address}`;
        const host = slice.addressType === 'IPv6' ? `[${address}]` : address;
        out.push({
          id,
          url: `${scheme}://${host}:${port}`,
          type: d.ref.type,
          tier: d.ref.tier,
          phase: phaseOf(ep.conditions),
          sinceMs: this.known.get(id)?.sinceMs ?? this.clock.now(),
          deployment: `${d.ref.namespace}/${d.ref.name}`,
        });
      }
    }
    return out;
  }

  private publish(next: Map<string, KubeEndpoint>): void {
    const added: KubeEndpoint[] = [];
    const changed: KubeEndpoint[] = [];
    const removed: KubeEndpoint[] = [];
    for (const [id, e] of next) {
      const was = this.known.get(id);
      if (!was) added.push(e);
      else if (was.phase !== e.phase || was.url !== e.url) changed.push(e);
    }
    for (const [id, e] of this.known) if (!next.has(id)) removed.push(e);
    this.known = next;
    if (added.length + changed.length + removed.length > 0) this.o.onChange?.({ added, changed, removed });
  }

  private failed(what: string, err: unknown): Error {
    const e = err as Error & { code?: number };
    const out = new Error(`kubernetes: ${what}: ${e.code ? `HTTP ${e.code}: ` : ''}${e.message}`, {
      cause: err,
    });
    this.o.logger?.warn({ err: out.message }, 'kubernetes call failed');
    return out;
  }
}

/**
 * EndpointSlice conditions → phase. Per discovery.k8s.io/v1 EndpointConditions: a nil `ready`
 * means true, a nil `terminating` false. A terminating pod that still serves is draining.
 */
export function phaseOf(
  c: { ready?: boolean; serving?: boolean; terminating?: boolean } | undefined,
): ReplicaStatus['phase'] {
  if (c?.terminating === true) return 'draining';
  return c?.ready === false ? 'starting' : 'ready';
}
