/**
 * @module core/hash-index
 * Block hash → block id, as an open-addressing table in typed arrays (linear probing, backward-shift
 * deletion). The prefix cache looks up, registers and evicts a block hash on every step; a `Map` keyed
 * by 32-bit hashes boxes half of them (V8 small integers are 31-bit) and was most of the simulator's
 * time. Keys are normalised with `| 0`, a bijection on 32-bit values, so no two hashes collide.
 */

const EMPTY = -1;

export class HashIndex {
  private keys: Int32Array;
  private vals: Int32Array;
  private mask: number;
  /** 32 − log2(capacity): the home slot is the top bits of a Fibonacci-hashed key. */
  private shift: number;
  private count = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity) cap *= 2;
    this.keys = new Int32Array(cap);
    this.vals = new Int32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
  }

  get size(): number {
    return this.count;
  }

  /** The value stored under `hash`, or -1. */
  get(hash: number): number {
    const key = hash | 0;
    for (let i = this.slot(key); ; i = (i + 1) & this.mask) {
      const v = this.vals[i]!;
      if (v === EMPTY || this.keys[i] === key) return v;
    }
  }

  /** Stores `value` (≥ 0) under `hash` unless the hash is present; returns whether it stored. */
  add(hash: number, value: number): boolean {
    if ((this.count + 1) * 2 > this.vals.length) this.grow();
    const key = hash | 0;
    let i = this.slot(key);
    for (; this.vals[i] !== EMPTY; i = (i + 1) & this.mask) if (this.keys[i] === key) return false;
    this.keys[i] = key;
    this.vals[i] = value;
    this.count++;
    return true;
  }

  /** Removes `hash`; returns whether it was present. */
  delete(hash: number): boolean {
    const key = hash | 0;
    let i = this.slot(key);
    for (;;) {
      if (this.vals[i] === EMPTY) return false;
      if (this.keys[i] === key) break;
      i = (i + 1) & this.mask;
    }
    // Backward-shift: move later entries of the probe run into the hole when their home allows it.
    for (let j = (i + 1) & this.mask; this.vals[j] !== EMPTY; j = (j + 1) & this.mask) {
      const home = this.slot(this.keys[j]!);
      const movable = i <= j ? home <= i || home > j : home <= i && home > j;
      if (movable) {
        this.keys[i] = this.keys[j]!;
        this.vals[i] = this.vals[j]!;
        i = j;
      }
    }
    this.vals[i] = EMPTY;
    this.count--;
    return true;
  }

  private slot(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  private grow(): void {
    const { keys, vals } = this;
    this.keys = new Int32Array(keys.length * 2);
    this.vals = new Int32Array(vals.length * 2).fill(EMPTY);
    this.mask = this.vals.length - 1;
    this.shift = 32 - Math.log2(this.vals.length);
    this.count = 0;
    for (let i = 0; i < vals.length; i++) if (vals[i] !== EMPTY) this.add(keys[i]!, vals[i]!);
  }
}
