/**
 * The router's prefix index: exact leading-block counts on constructed inserts, LRU eviction order
 * at capacity, the capacity correction (multiplicative decrease, additive increase), clear(), and a
 * seeded random run over 40 endpoints (two bitset words) checked against a brute-force model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng } from '../../src/core/rng.js';
import { PrefixIndex } from '../../src/router/prefix-index.js';

/** match() as a plain array. */
function matchOf(index: PrefixIndex, hashes: readonly number[]): number[] {
  const out = new Int32Array(index.endpoints);
  index.match(hashes, out);
  return [...out];
}

/**
 * The brute-force model: per endpoint, an array of hashes, most recently touched first, cut to the
 * capacity from the tail; the same correction arithmetic as the index's documented contract.
 */
class ModelIndex {
  readonly lists: number[][];
  readonly capacity: number[];
  readonly nominal: number[];

  constructor(capacityBlocks: readonly number[]) {
    this.lists = capacityBlocks.map(() => []);
    this.capacity = capacityBlocks.map((c) => Math.max(1, Math.floor(c)));
    this.nominal = [...this.capacity];
  }

  insert(e: number, hashes: readonly number[]): void {
    const list = this.lists[e]!;
    for (let i = hashes.length - 1; i >= 0; i--) {
      const at = list.indexOf(hashes[i]!);
      if (at !== -1) list.splice(at, 1);
      list.unshift(hashes[i]!);
    }
    list.length = Math.min(list.length, this.capacity[e]!);
  }

  match(hashes: readonly number[]): number[] {
    return this.lists.map((list) => {
      let k = 0;
      while (k < hashes.length && list.includes(hashes[k]!)) k++;
      return k;
    });
  }

  correct(e: number, predicted: number, actual: number): void {
    if (predicted <= 0) return;
    const nominal = this.nominal[e]!;
    if (actual < predicted) {
      this.capacity[e] = Math.max(Math.ceil(nominal / 16), Math.floor(this.capacity[e]! * 0.9));
      const list = this.lists[e]!;
      list.length = Math.min(list.length, this.capacity[e]!);
    } else if (this.capacity[e]! < nominal) {
      this.capacity[e] = Math.min(nominal, this.capacity[e]! + Math.max(1, Math.floor(nominal / 100)));
    }
  }

  clear(e: number): void {
    this.lists[e]!.length = 0;
  }

  distinct(): number {
    return new Set(this.lists.flat()).size;
  }
}

describe('PrefixIndex.match', () => {
  it('counts, per endpoint, only the leading run of blocks it holds', () => {
    const index = new PrefixIndex([100, 100, 100, 100, 100]);
    index.insert(0, [1, 2, 3, 4]);
    index.insert(1, [1, 2, 9]); // diverges from endpoint 0 at block 2
    index.insert(2, [2, 3, 4]); // holds later blocks of [1, 2, 3, 4] but not block 0
    index.insert(3, [1]);
    index.insert(3, [5, 6, 3]); // holds blocks 0 and 2 of [1, 2, 3, 4], not block 1
    // Endpoint 4 holds nothing.
    assert.deepEqual(matchOf(index, [1, 2, 3, 4]), [4, 2, 0, 1, 0]);
    assert.deepEqual(matchOf(index, [1, 2, 9, 10]), [2, 3, 0, 1, 0]);
    assert.deepEqual(matchOf(index, [1, 2, 3, 4, 11]), [4, 2, 0, 1, 0]);
    // The index knows hashes, not positions (chained hashes carry the position): a query that starts
    // at hash 2 counts the run of 2, 3, 4 wherever each endpoint holds it.
    assert.deepEqual(matchOf(index, [2, 3, 4]), [3, 1, 3, 0, 0]);
    assert.deepEqual(matchOf(index, [5, 6, 3, 4]), [0, 0, 0, 3, 0]);
    assert.deepEqual(matchOf(index, [77, 1, 2]), [0, 0, 0, 0, 0], 'an unknown first block matches nothing');
    assert.deepEqual(matchOf(index, []), [0, 0, 0, 0, 0]);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((e) => index.blocks(e)),
      [4, 3, 3, 4, 0],
    );
    // Distinct hashes: 1 2 3 4 9 5 6.
    assert.equal(index.distinctBlocks, 7);
  });

  it('overwrites every entry of the output, including stale values from a previous call', () => {
    const index = new PrefixIndex([10, 10]);
    index.insert(1, [7, 8]);
    const out = new Float64Array([99, 99]);
    index.match([7, 8], out);
    assert.deepEqual([...out], [0, 2]);
    index.match([9, 7], out);
    assert.deepEqual([...out], [0, 0]);
    out.fill(99);
    index.match([7], out);
    assert.deepEqual([...out], [0, 1]);
  });

  it('spans bitset words: endpoints 31, 32 and 39 of 40', () => {
    const index = new PrefixIndex(Array.from({ length: 40 }, () => 50));
    index.insert(31, [1, 2, 3]);
    index.insert(32, [1, 2]);
    index.insert(39, [1, 2, 3, 4, 5]);
    index.insert(0, [1]);
    const expected = new Array<number>(40).fill(0);
    expected[0] = 1;
    expected[31] = 3;
    expected[32] = 2;
    expected[39] = 5;
    assert.deepEqual(matchOf(index, [1, 2, 3, 4, 5, 6]), expected);
    // After endpoint 39 forgets everything, the longest match left is endpoint 31's.
    index.clear(39);
    expected[39] = 0;
    assert.deepEqual(matchOf(index, [1, 2, 3, 4, 5, 6]), expected);
  });
});

describe('PrefixIndex LRU', () => {
  it("evicts a prompt's last blocks first and the least recently touched prompt first", () => {
    const index = new PrefixIndex([6]);
    index.insert(0, [1, 2, 3, 4]);
    assert.equal(index.blocks(0), 4);
    // LRU (most recent first): 5 6 7 1 2 3 4 → 7 blocks, over 6: evict 4.
    index.insert(0, [5, 6, 7]);
    assert.equal(index.blocks(0), 6);
    assert.deepEqual(matchOf(index, [1, 2, 3, 4]), [3]);
    assert.deepEqual(matchOf(index, [5, 6, 7]), [3]);
    // 8 9 5 6 7 1 2 3 → evict 3, then 2: prompt [1, 2, 3, 4] keeps only its first block.
    index.insert(0, [8, 9]);
    assert.equal(index.blocks(0), 6);
    assert.deepEqual(matchOf(index, [1, 2, 3, 4]), [1]);
    // Touching [1] makes it the most recent: 1 8 9 5 6 7, then 10 11 1 8 9 5 after evicting 7, 6.
    index.insert(0, [1]);
    index.insert(0, [10, 11]);
    assert.equal(index.blocks(0), 6);
    assert.deepEqual(matchOf(index, [1]), [1]);
    assert.deepEqual(matchOf(index, [5, 6, 7]), [1]);
    assert.deepEqual(matchOf(index, [8, 9]), [2]);
    assert.deepEqual(matchOf(index, [10, 11]), [2]);
    assert.equal(index.distinctBlocks, 6);
  });

  it('a prompt longer than the capacity keeps its first blocks', () => {
    const index = new PrefixIndex([3, 10]);
    index.insert(0, [1, 2, 3, 4, 5]);
    index.insert(1, [1, 2, 3, 4, 5]);
    assert.deepEqual(matchOf(index, [1, 2, 3, 4, 5]), [3, 5]);
    assert.deepEqual([index.blocks(0), index.blocks(1)], [3, 5]);
    // Endpoint 0 evicting 4 and 5 leaves them held by endpoint 1 only: still 5 distinct hashes.
    assert.equal(index.distinctBlocks, 5);
  });

  it('capacities are floored and at least one block', () => {
    const index = new PrefixIndex([2.9, 0.2]);
    assert.deepEqual([index.capacityOf(0), index.capacityOf(1)], [2, 1]);
    index.insert(1, [1, 2]);
    assert.deepEqual(matchOf(index, [1, 2]), [0, 1]);
  });
});

describe('PrefixIndex.correct', () => {
  it('shrinks by 10% on a shortfall, down to nominal/16, evicting to the new bound', () => {
    const index = new PrefixIndex([200]);
    index.insert(
      0,
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    assert.equal(index.blocks(0), 200);
    index.correct(0, 10, 9);
    assert.equal(index.capacityOf(0), 180);
    assert.equal(index.blocks(0), 180);
    assert.deepEqual(matchOf(index, [1, 2, 3]), [3], 'the first blocks survive');
    const seen: number[] = [];
    for (let k = 0; k < 30; k++) {
      index.correct(0, 5, 0);
      seen.push(index.capacityOf(0));
    }
    // ⌊180·0.9⌋ = 162, ⌊162·0.9⌋ = 145, …; the floor is ⌈200/16⌉ = 13.
    assert.deepEqual(
      seen.slice(0, 22),
      [162, 145, 130, 117, 105, 94, 84, 75, 67, 60, 54, 48, 43, 38, 34, 30, 27, 24, 21, 18, 16, 14],
    );
    assert.deepEqual(seen.slice(22), new Array<number>(8).fill(13));
    assert.equal(index.blocks(0), 13);
  });

  it('grows back by 1% of nominal on exact hits (at least one block), never above nominal', () => {
    const index = new PrefixIndex([200, 50]);
    for (let k = 0; k < 3; k++) index.correct(0, 4, 3); // 180, 162, 145
    assert.equal(index.capacityOf(0), 145);
    index.correct(0, 4, 4);
    assert.equal(index.capacityOf(0), 147);
    index.correct(0, 4, 9); // more cached than predicted counts as a hit
    assert.equal(index.capacityOf(0), 149);
    for (let k = 0; k < 30; k++) index.correct(0, 1, 1);
    assert.equal(index.capacityOf(0), 200);
    // Nominal 50: 1% is 0.5 blocks, so it grows by 1.
    index.correct(1, 2, 1);
    assert.equal(index.capacityOf(1), 45);
    index.correct(1, 2, 2);
    assert.equal(index.capacityOf(1), 46);
  });

  it('ignores a correction when nothing was predicted', () => {
    const index = new PrefixIndex([100]);
    index.correct(0, 0, 0);
    assert.equal(index.capacityOf(0), 100);
    index.correct(0, 1, 0);
    index.correct(0, 0, 5);
    assert.equal(index.capacityOf(0), 90);
  });
});

describe('PrefixIndex.clear', () => {
  it('forgets one endpoint, keeps the others, and drops hashes nobody holds', () => {
    const index = new PrefixIndex([10, 10]);
    index.insert(0, [1, 2, 3]);
    index.insert(1, [1, 2]);
    index.clear(0);
    assert.equal(index.blocks(0), 0);
    assert.equal(index.distinctBlocks, 2);
    assert.deepEqual(matchOf(index, [1, 2, 3]), [0, 2]);
    // The endpoint can be filled again after a clear.
    index.insert(0, [1, 2, 3, 4]);
    assert.deepEqual(matchOf(index, [1, 2, 3, 4]), [4, 2]);
    index.clear(0);
    index.clear(1);
    assert.equal(index.distinctBlocks, 0);
    assert.deepEqual(matchOf(index, [1]), [0, 0]);
  });
});

describe('PrefixIndex against a brute-force model', () => {
  it('agrees over 4000 seeded random operations on 40 endpoints', () => {
    const seed = 20_240_611;
    const rng = new SeededRng(seed);
    const int = (n: number): number => Math.floor(rng.next() * n);
    const n = 40;
    const capacities = Array.from({ length: n }, () => 4 + int(40));
    const index = new PrefixIndex(capacities);
    const model = new ModelIndex(capacities);
    // Prompts are paths in a tree of families: they share prefixes of any length, like chained hashes.
    const prompt = (): number[] => {
      const family = int(6);
      const length = 1 + int(16);
      const branch = int(length + 1);
      const variant = 1 + int(3);
      return Array.from({ length }, (_, i) =>
        i < branch ? family * 1000 + i : variant * 100_000 + family * 1000 + i,
      );
    };
    const out = new Int32Array(n);
    const ops = { insert: 0, correct: 0, clear: 0 };
    for (let step = 0; step < 4000; step++) {
      const op = rng.next();
      const e = int(n);
      if (op < 0.75) {
        const p = prompt();
        index.insert(e, p);
        model.insert(e, p);
        ops.insert++;
      } else if (op < 0.97) {
        const predicted = int(6);
        const actual = int(6);
        index.correct(e, predicted, actual);
        model.correct(e, predicted, actual);
        ops.correct++;
      } else {
        index.clear(e);
        model.clear(e);
        ops.clear++;
      }
      const query = prompt();
      index.match(query, out);
      assert.deepEqual([...out], model.match(query), `seed=${seed} step=${step}`);
      for (let x = 0; x < n; x++) {
        assert.equal(index.blocks(x), model.lists[x]!.length, `seed=${seed} step=${step} blocks(${x})`);
        assert.equal(index.capacityOf(x), model.capacity[x], `seed=${seed} step=${step} capacityOf(${x})`);
      }
      assert.equal(index.distinctBlocks, model.distinct(), `seed=${seed} step=${step} distinct`);
    }
    // The run exercised every operation and filled endpoints to their bounds.
    assert.ok(ops.insert > 2500 && ops.correct > 500 && ops.clear > 50, JSON.stringify(ops));
    assert.ok(
      model.lists.filter((l, e) => l.length === model.capacity[e]).length > n / 2,
      'most endpoints at capacity',
    );
  });
});
