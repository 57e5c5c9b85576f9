/**
 * The Kubernetes actuator against a FAKE API server (test/fakes/kube-api-server.ts) answering with
 * recorded responses: the scale subresource calls it sends (verb, path, content type, body), the
 * EndpointSlice queries, the condition → phase mapping and the change callback.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  type KubeEndpointChange,
  type KubernetesActuatorOptions,
  KubernetesActuator,
  phaseOf,
} from '../../src/actuators/kubernetes.js';
import { VirtualClock } from '../../src/core/virtual-clock.js';
import { FakeKubeApiServer } from '../fakes/kube-api-server.js';

const DEPLOYMENTS: KubernetesActuatorOptions['deployments'] = [
  { type: 'h100', tier: 'on-demand', namespace: 'llm', name: 'qwen-h100-od', service: 'qwen-h100-od-svc' },
  { type: 'h100', tier: 'spot', namespace: 'llm', name: 'qwen-h100-spot' },
];
const SCALE_OD = '/apis/apps/v1/namespaces/llm/deployments/qwen-h100-od/scale';
const SCALE_SPOT = '/apis/apps/v1/namespaces/llm/deployments/qwen-h100-spot/scale';

describe('KubernetesActuator', () => {
  let fake: FakeKubeApiServer;
  let clock: VirtualClock;
  let changes: KubeEndpointChange[];
  const make = (extra: Partial<KubernetesActuatorOptions> = {}) =>
    new KubernetesActuator({
      deployments: DEPLOYMENTS,
      kubeConfig: fake.kubeConfig(),
      clock,
      onChange: (c) => changes.push(c),
      ...extra,
    });
  const calls = () => fake.requests.map((r) => `${r.method} ${r.path}`);

  before(async () => {
    fake = await FakeKubeApiServer.start();
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.requests.length = 0;
    fake.failWith = null;
    fake.addDeployment('llm', 'qwen-h100-od', 1);
    fake.addDeployment('llm', 'qwen-h100-spot', 0);
    fake.setEndpoints('llm', 'qwen-h100-od-svc', []);
    fake.setEndpoints('llm', 'qwen-h100-spot', []);
    clock = new VirtualClock(1_000);
    changes = [];
  });

  it('scales each Deployment through its scale subresource with a merge patch', async () => {
    const a = make();
    await a.apply([
      { type: 'h100', tier: 'on-demand', count: 2 },
      { type: 'h100', tier: 'spot', count: 3 },
    ]);
    const sorted = [...fake.requests].sort((x, y) => (x.path + x.method).localeCompare(y.path + y.method));
    assert.deepEqual(
      sorted.map((r) => [r.method, r.path, r.contentType, r.body]),
      [
        ['GET', SCALE_OD, undefined, ''],
        ['PATCH', SCALE_OD, 'application/merge-patch+json', { spec: { replicas: 2 } }],
        ['GET', SCALE_SPOT, undefined, ''],
        ['PATCH', SCALE_SPOT, 'application/merge-patch+json', { spec: { replicas: 3 } }],
      ],
    );
    assert.equal(fake.requests.find((r) => r.method === 'PATCH')?.query.fieldManager, 'switchyard');
    assert.deepEqual(fake.scaleOf('llm', 'qwen-h100-od'), { spec: 2, status: 2 });
    assert.deepEqual(fake.scaleOf('llm', 'qwen-h100-spot'), { spec: 3, status: 3 });

    // Idempotent: the same target reads the scales and writes nothing.
    fake.requests.length = 0;
    await a.apply([
      { type: 'h100', tier: 'spot', count: 3 },
      { type: 'h100', tier: 'on-demand', count: 2 },
    ]);
    assert.deepEqual(calls().sort(), [`GET ${SCALE_OD}`, `GET ${SCALE_SPOT}`]);

    // A (type, tier) the target leaves out goes to zero.
    fake.requests.length = 0;
    await a.apply([{ type: 'h100', tier: 'spot', count: 3 }]);
    assert.deepEqual(fake.scaleOf('llm', 'qwen-h100-od'), { spec: 0, status: 0 });
    assert.deepEqual(calls().sort(), [`GET ${SCALE_OD}`, `GET ${SCALE_SPOT}`, `PATCH ${SCALE_OD}`]);
    await a.close();
  });

  it('rejects a target with no Deployment or a bad count, sending nothing', async () => {
    const a = make();
    await assert.rejects(
      a.apply([{ type: 'a100', tier: 'spot', count: 1 }]),
      /no Deployment for \(a100, spot\)/,
    );
    await assert.rejects(a.apply([{ type: 'h100', tier: 'spot', count: -1 }]), /count: -1/);
    assert.deepEqual(fake.requests, []);
    assert.throws(
      () =>
        new KubernetesActuator({
          deployments: [DEPLOYMENTS[0]!, DEPLOYMENTS[0]!],
          kubeConfig: fake.kubeConfig(),
        }),
      /already has a Deployment/,
    );
    await a.close();
  });

  it('reports an API error from the scale call', async () => {
    const a = make();
    fake.failWith = 500;
    await assert.rejects(
      a.apply([{ type: 'h100', tier: 'spot', count: 1 }]),
      /kubernetes: scale llm\/qwen-h100-\S+ to \d: HTTP 500/,
    );
    await a.close();
  });

  it('discovers endpoints from EndpointSlices and maps their conditions to phases', async () => {
    const a = make();
    fake.setEndpoints(
      'llm',
      'qwen-h100-od-svc',
      [
        { pod: 'od-a', ip: '10.0.0.1', ready: true, serving: true, terminating: false },
        { pod: 'od-b', ip: '10.0.0.2', ready: false, serving: false, terminating: false },
        { pod: 'od-c', ip: '10.0.0.3', ready: false, serving: true, terminating: true },
        { pod: 'od-d', ip: '10.0.0.4' }, // no conditions: nil ready means ready
      ],
      8000,
    );
    fake.addDeployment('llm', 'qwen-h100-od', 3);
    await a.refresh();
    const slicesCall = fake.requests.find(
      (r) => r.path.endsWith('/endpointslices') && r.path.includes('/llm/'),
    );
    assert.equal(slicesCall?.path, '/apis/discovery.k8s.io/v1/namespaces/llm/endpointslices');
    assert.deepEqual(
      fake.requests
        .filter((r) => r.path.endsWith('/endpointslices'))
        .map((r) => r.query.labelSelector)
        .sort(),
      ['kubernetes.io/service-name=qwen-h100-od-svc', 'kubernetes.io/service-name=qwen-h100-spot'],
    );
    assert.deepEqual(
      a.endpoints().map((e) => [e.id, e.url, e.phase, e.type, e.tier, e.sinceMs, e.deployment]),
      [
        ['llm/od-a', 'http://10.0.0.1:8000', 'ready', 'h100', 'on-demand', 1_000, 'llm/qwen-h100-od'],
        ['llm/od-b', 'http://10.0.0.2:8000', 'starting', 'h100', 'on-demand', 1_000, 'llm/qwen-h100-od'],
        ['llm/od-c', 'http://10.0.0.3:8000', 'draining', 'h100', 'on-demand', 1_000, 'llm/qwen-h100-od'],
        ['llm/od-d', 'http://10.0.0.4:8000', 'ready', 'h100', 'on-demand', 1_000, 'llm/qwen-h100-od'],
      ],
    );
    assert.equal(changes.length, 1);
    assert.deepEqual(
      changes[0]!.added.map((e) => e.id),
      ['llm/od-a', 'llm/od-b', 'llm/od-c', 'llm/od-d'],
    );
    // spec 3; three non-draining endpoints: no placeholder.
    assert.deepEqual(
      a.replicas().map((r) => `${r.id}:${r.phase}`),
      ['llm/od-a:ready', 'llm/od-b:starting', 'llm/od-c:draining', 'llm/od-d:ready'],
    );
    await a.close();
  });

  it('reports phase changes and removals, keeping first-seen times', async () => {
    const a = make();
    fake.setEndpoints('llm', 'qwen-h100-od-svc', [
      { pod: 'od-a', ip: '10.0.0.1', ready: true },
      { pod: 'od-b', ip: '10.0.0.2', ready: false },
    ]);
    await a.refresh();
    clock.runUntil(clock.now() + 5_000);
    fake.setEndpoints('llm', 'qwen-h100-od-svc', [
      { pod: 'od-b', ip: '10.0.0.2', ready: true },
      { pod: 'od-e', ip: '10.0.0.5', ready: false },
    ]);
    await a.refresh();
    const last = changes.at(-1)!;
    assert.deepEqual(
      [last.added, last.changed, last.removed].map((l) => l.map((e) => `${e.id}:${e.phase}:${e.sinceMs}`)),
      [['llm/od-e:starting:6000'], ['llm/od-b:ready:1000'], ['llm/od-a:ready:1000']],
    );
    await a.refresh(); // nothing moved: no callback
    assert.equal(changes.length, 2);
    await a.close();
  });

  it('counts pods asked for but not yet discovered as starting placeholders', async () => {
    const a = make();
    fake.setEndpoints('llm', 'qwen-h100-spot', [{ pod: 'spot-a', ip: '10.0.1.1', ready: true }]);
    await a.apply([
      { type: 'h100', tier: 'on-demand', count: 1 },
      { type: 'h100', tier: 'spot', count: 3 },
    ]);
    await a.refresh();
    assert.deepEqual(
      a.replicas().map((r) => `${r.id}:${r.tier}:${r.phase}:${r.sinceMs}`),
      [
        'llm/qwen-h100-od#pending-1:on-demand:starting:0',
        'llm/spot-a:spot:ready:1000',
        'llm/qwen-h100-spot#pending-1:spot:starting:1000',
        'llm/qwen-h100-spot#pending-2:spot:starting:1000',
      ],
    );
    await a.close();
  });

  it('reads the recorded EndpointSlice list as served by a real cluster', async () => {
    fake.addDeployment('kube-system', 'coredns', 1);
    const ref = {
      type: 'dns',
      tier: 'on-demand',
      namespace: 'kube-system',
      name: 'coredns',
      service: 'kube-dns',
    } as const;
    const metrics = make({ deployments: [ref] });
    await metrics.refresh();
    assert.deepEqual(
      metrics.endpoints().map((e) => [e.id, e.url, e.phase]),
      [['kube-system/coredns-66bff467f8-z8czk', 'http://10.244.0.3:9153', 'ready']],
    );
    const dns = make({ deployments: [ref], portName: 'dns', scheme: 'https' });
    await dns.refresh();
    assert.equal(dns.endpoints()[0]?.url, 'https://10.244.0.3:53');
    await Promise.all([metrics.close(), dns.close()]);
  });

  it('polls on its clock and keeps the last state when a poll fails', async () => {
    const errors: string[] = [];
    const a = make({ pollIntervalMs: 5_000, onError: (e) => errors.push(e.message) });
    fake.setEndpoints('llm', 'qwen-h100-od-svc', [{ pod: 'od-a', ip: '10.0.0.1', ready: true }]);
    await a.start();
    const polls = () => fake.requests.filter((r) => r.path.endsWith('/endpointslices')).length;
    assert.equal(polls(), 2); // one per Deployment
    fake.failWith = 503;
    clock.runUntil(clock.now() + 5_000); // fires the next poll
    await until(() => errors.length === 2);
    assert.match(errors[0]!, /poll llm\/qwen-h100-od: HTTP 503/);
    assert.deepEqual(
      a.endpoints().map((e) => e.id),
      ['llm/od-a'],
    );
    await a.close();
    const before = fake.requests.length;
    clock.runUntil(clock.now() + 60_000); // closed: no more polls
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(fake.requests.length, before);
  });

  it('maps conditions per discovery.k8s.io/v1 (nil ready = true, nil terminating = false)', () => {
    assert.equal(phaseOf(undefined), 'ready');
    assert.equal(phaseOf({}), 'ready');
    assert.equal(phaseOf({ ready: true, serving: true, terminating: false }), 'ready');
    assert.equal(phaseOf({ ready: false }), 'starting');
    assert.equal(phaseOf({ ready: false, serving: false, terminating: false }), 'starting');
    assert.equal(phaseOf({ ready: false, serving: true, terminating: true }), 'draining');
    assert.equal(phaseOf({ ready: false, serving: false, terminating: true }), 'draining');
  });
});

/** Waits (real time, bounded) until `cond` holds: the fake answers over real sockets. */
async function until(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
