/** Tagging records with a tenant and a priority class, and merging streams into one workload. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TraceRecord } from '../../src/traces/record.js';
import { type Tagging, merge, tag } from '../../src/traces/transform.js';

const records = (n: number, extra: Partial<TraceRecord> = {}): TraceRecord[] =>
  Array.from({ length: n }, (_, i) => ({ arrivalMs: i, inputTokens: 1, outputTokens: 1, ...extra }));

async function collect(it: AsyncIterable<TraceRecord>): Promise<TraceRecord[]> {
  const out: TraceRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

const batchIds = async (t: Tagging): Promise<number[]> =>
  (await collect(tag(records(1000), t))).filter((r) => r.priority === 'batch').map((r) => r.arrivalMs);

describe('tag', () => {
  it('sets the tenant and class of every record, leaving the other fields', async () => {
    const out = await collect(tag(records(2, { session: 's' }), { tenant: 'a', priority: 'high' }));
    assert.deepEqual(out, [
      { arrivalMs: 0, inputTokens: 1, outputTokens: 1, session: 's', tenant: 'a', priority: 'high' },
      { arrivalMs: 1, inputTokens: 1, outputTokens: 1, session: 's', tenant: 'a', priority: 'high' },
    ]);
    const kept = await collect(tag(records(1, { tenant: 't', priority: 'low' }), {}));
    assert.deepEqual(kept, [{ arrivalMs: 0, inputTokens: 1, outputTokens: 1, tenant: 't', priority: 'low' }]);
  });

  it('marks a seeded share as batch: the same seed the same records, a larger share a superset', async () => {
    assert.deepEqual(await batchIds({ batchShare: 0 }), []);
    assert.equal((await batchIds({ batchShare: 1 })).length, 1000);
    const third = await batchIds({ batchShare: 0.3, seed: 7 });
    assert.deepEqual(await batchIds({ batchShare: 0.3, seed: 7 }), third);
    const twoThirds = new Set(await batchIds({ batchShare: 0.6, seed: 7 }));
    for (const id of third) assert.ok(twoThirds.has(id), `record ${id} stays batch at a larger share`);
    assert.notDeepEqual(await batchIds({ batchShare: 0.3, seed: 8 }), third);
    // 1000 fair-ish coins at 0.3: 300 ± 4.6 standard deviations.
    assert.ok(third.length > 235 && third.length < 365, `${third.length} of 1000`);
    await assert.rejects(collect(tag(records(1), { batchShare: 1.5 })), /batch share/);
  });
});

describe('merge', () => {
  it('interleaves streams by arrival; on a tie the earlier stream goes first', async () => {
    const a = [0, 10, 20].map((t) => ({ arrivalMs: t, inputTokens: 1, outputTokens: 1, tenant: 'a' }));
    async function* b(): AsyncGenerator<TraceRecord> {
      for (const t of [5, 10, 30]) yield { arrivalMs: t, inputTokens: 1, outputTokens: 1, tenant: 'b' };
    }
    const out = await collect(merge(a, b(), []));
    assert.deepEqual(
      out.map((r) => `${r.tenant}${r.arrivalMs}`),
      ['a0', 'b5', 'a10', 'b10', 'a20', 'b30'],
    );
  });
});
