/** The static actuator: the configured fleet, all ready; apply records the target and changes nothing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StaticActuator } from '../../src/actuators/static.js';

describe('StaticActuator', () => {
  it('lists the configured replicas as ready and only records what it is asked', () => {
    const a = new StaticActuator({
      replicas: [
        { id: 'a', type: 'h100' },
        { id: 'b', type: 'a10g', tier: 'spot' },
      ],
      sinceMs: 7,
    });
    const before = a.replicas();
    assert.deepEqual(before, [
      { id: 'a', type: 'h100', tier: 'on-demand', phase: 'ready', sinceMs: 7 },
      { id: 'b', type: 'a10g', tier: 'spot', phase: 'ready', sinceMs: 7 },
    ]);
    assert.equal(a.pending, null);
    a.apply([{ type: 'h100', tier: 'on-demand', count: 5 }]);
    assert.deepEqual(a.pending, [{ type: 'h100', tier: 'on-demand', count: 5 }]);
    assert.equal(a.replicas(), before);
    assert.throws(
      () =>
        new StaticActuator({
          replicas: [
            { id: 'a', type: 'x' },
            { id: 'a', type: 'y' },
          ],
        }),
      /replicas\[1\]\.id: "a"/,
    );
  });
});
