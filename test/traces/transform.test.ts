/** Replay shaping: window, rate scale, and spreading requests that share a rounded timestamp. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TraceRecord } from '../../src/traces/record.js';
import { type ReplayShape, reshape } from '../../src/traces/transform.js';

async function arrivals(times: number[], shape: ReplayShape): Promise<number[]> {
  async function* source(): AsyncGenerator<TraceRecord> {
    for (const t of times) yield { arrivalMs: t, inputTokens: 1, outputTokens: 1 };
  }
  const out: number[] = [];
  for await (const r of reshape(source(), shape)) out.push(r.arrivalMs);
  return out;
}

describe('reshape', () => {
  it('spreads a tick’s requests evenly over the gap to the next tick; the last tick stays a burst', async () => {
    assert.deepEqual(
      await arrivals([0, 0, 0, 3000, 3000, 6000, 6000], { spreadTies: true }),
      [0, 1000, 2000, 3000, 4500, 6000, 6000],
    );
  });

  it('spreads before the window and the rate scale apply', async () => {
    assert.deepEqual(
      await arrivals([0, 0, 4000, 4000, 8000], {
        spreadTies: true,
        rateScale: 2,
        window: { startS: 1, endS: 8 },
      }),
      [(2000 - 1000) / 2, (4000 - 1000) / 2, (6000 - 1000) / 2],
    );
  });

  it('leaves distinct timestamps alone, and ties too without the option', async () => {
    assert.deepEqual(await arrivals([0, 10, 20], { spreadTies: true }), [0, 10, 20]);
    assert.deepEqual(await arrivals([0, 0, 10], {}), [0, 0, 10]);
  });
});
