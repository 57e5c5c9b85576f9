/** Policies by name: every name the config accepts creates that policy, and the lists agree. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIVE_POLICIES, SCALING_POLICY_NAMES, createPolicy } from '../../src/autoscaler/policies/index.js';
import { validateConfig } from '../../src/config/load.js';

describe('scaling policies by name', () => {
  it('the config accepts exactly the policies a gateway can run', () => {
    const config = (policy: string) => ({
      pools: {
        m: {
          scaling: {
            policy,
            // static keeps a count the config must give; the others run on their defaults.
            options: policy === 'static' ? { replicas: 1 } : {},
            catalog: [{ name: 't', profile: 'qwen2.5-1.5b-h100', onDemandUsdPerHour: 1 }],
            actuator: { kind: 'process' },
          },
        },
      },
    });
    for (const name of LIVE_POLICIES)
      assert.equal(validateConfig(config(name)).pools.m!.scaling!.policy, name);
    assert.throws(() => validateConfig(config('oracle')), /policy/);
  });

  it('each name creates the policy of that name', () => {
    for (const name of SCALING_POLICY_NAMES) {
      const p = createPolicy(name, {}, { replicas: 2, arrivals: () => 0 });
      assert.equal(p.name, name);
      assert.ok(p.intervalMs > 0, `${name} has a decision interval`);
    }
  });

  it('refuses unknown names and an oracle without the future', () => {
    assert.throws(() => createPolicy('nope'), /unknown scaling policy 'nope'; known: kpa, hpa/);
    assert.throws(() => createPolicy('oracle'), /needs the future arrivals/);
    assert.throws(() => createPolicy('static'), /needs a replica count/);
  });
});
