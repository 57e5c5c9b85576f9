/**
 * The activator's floor (PoolAutoscaler.tick): while requests wait for the pool, a policy that sees
 * no load yet and asks for zero must not cancel the replica that is starting for them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PoolAutoscaler } from '../../src/autoscaler/controller.js';
import { MetricsWindow } from '../../src/autoscaler/metrics-window.js';
import { reconcile } from '../../src/autoscaler/reconcile.js';
import type { Actuator, Placement, ReplicaStatus } from '../../src/autoscaler/types.js';

/** An actuator that starts replicas by the shared rule and records what it was asked to do. */
class RecordingActuator implements Actuator {
  readonly kind = 'recording';
  readonly fleet: ReplicaStatus[] = [];
  readonly stopped: string[] = [];
  private seq = 0;
  apply(target: readonly Placement[]): void {
    const plan = reconcile(target, this.fleet);
    for (const id of plan.stop) {
      this.stopped.push(id);
      this.fleet.splice(
        this.fleet.findIndex((r) => r.id === id),
        1,
      );
    }
    for (const s of plan.start)
      this.fleet.push({
        id: `r${++this.seq}`,
        type: s.type,
        tier: s.tier,
        phase: 'starting',
        sinceMs: this.seq,
      });
  }
  replicas(): readonly ReplicaStatus[] {
    return this.fleet;
  }
}

describe('the activator floor', () => {
  const spec = {
    minReplicas: 0,
    maxReplicas: 4,
    catalog: [{ name: 'gpu', profile: 'qwen2.5-1.5b-h100', capacity: 1, onDemandUsdPerHour: 1 }],
    replicaRps: 1,
    coldStartMs: 60_000,
    slo: { ttftMs: 2000, tpotMs: 100, quantile: 0.9 },
  };
  const zero = { name: 'zero', intervalMs: 15_000, decide: () => ({ desired: 0, reason: 'idle' }) };

  it('keeps the starting replica while requests wait, and lets the policy have its way after', () => {
    const a = new RecordingActuator();
    const s = new PoolAutoscaler(spec, zero, new MetricsWindow(), a);
    s.start(0);
    assert.equal(s.wake(10)?.to, 1);
    assert.deepEqual(
      a.fleet.map((r) => r.id),
      ['r1'],
    );
    for (let t = 15_000; t <= 45_000; t += 15_000) {
      s.tick(t, 1);
      assert.equal(s.target, 1);
    }
    assert.deepEqual(a.stopped, [], 'the cold start the requests wait for goes on');
    assert.deepEqual(
      a.fleet.map((r) => r.id),
      ['r1'],
      'and no second one is started',
    );
    const ev = s.tick(60_000, 0);
    assert.equal(ev?.to, 0);
    assert.deepEqual(a.stopped, ['r1']);
  });
});
