/** The prefix cache's hash index against a Map, under random adds and deletes with growth. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng } from '../../src/core/rng.js';
import { HashIndex } from '../../src/core/hash-index.js';

describe('HashIndex', () => {
  it('behaves like a Map of 32-bit hashes under random adds, deletes and growth', () => {
    const rng = new SeededRng(5);
    const index = new HashIndex(16);
    const ref = new Map<number, number>();
    // A small key space forces long probe runs, collisions of home slots and many deletions.
    const keyOf = () => (Math.floor(rng.next() * 3000) * 0x9e3779b9) >>> 0;
    for (let step = 0; step < 200_000; step++) {
      const key = keyOf();
      const r = rng.next();
      if (r < 0.5) {
        const value = step % 1_000_000;
        assert.equal(index.add(key, value), !ref.has(key));
        if (!ref.has(key)) ref.set(key, value);
      } else if (r < 0.8) {
        assert.equal(index.delete(key), ref.delete(key));
      } else {
        assert.equal(index.get(key), ref.get(key) ?? -1);
      }
      assert.equal(index.size, ref.size);
    }
    for (const [k, v] of ref) assert.equal(index.get(k), v);
  });

  it('keeps hashes that differ only above bit 31 apart (no folding)', () => {
    const index = new HashIndex();
    assert.ok(index.add(0x80000001, 1));
    assert.ok(index.add(0x00000001, 2));
    assert.equal(index.get(0x80000001), 1);
    assert.equal(index.get(1), 2);
  });
});
