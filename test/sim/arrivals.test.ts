/** The oracle's view of the future: arrivals counted in half-open ranges. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arrivalCounter } from '../../src/sim/arrivals.js';
import type { TraceRecord } from '../../src/traces/record.js';

async function* records(times: number[]): AsyncGenerator<TraceRecord> {
  for (const arrivalMs of times) yield { arrivalMs, inputTokens: 1, outputTokens: 1 };
}

describe('arrivalCounter', () => {
  it('counts arrivals in [from, to), ties included, past a growth of its buffer', async () => {
    const times = [0, 10, 10, 20, ...Array.from({ length: 70_000 }, (_, i) => 1000 + i)];
    const count = await arrivalCounter(records(times));
    assert.equal(count(0, 10), 1);
    assert.equal(count(10, 11), 2);
    assert.equal(count(10, 20), 2);
    assert.equal(count(0, 21), 4);
    assert.equal(count(21, 1000), 0);
    assert.equal(count(1000, 71_000), 70_000);
    assert.equal(count(-Infinity, Infinity), 70_004);
  });
});
