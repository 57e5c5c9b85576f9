/**
 * @module router/prefix-index
 * An approximate index of what each endpoint of a pool holds in its prefix cache, learned from what
 * the router sent where. Each endpoint's share is bounded to its KV capacity (in prefix blocks) and
 * aged LRU, as the engine's own free-block queue is. One global table maps a block hash to the set
 * of endpoints holding it (a bitset), so "longest cached prefix on every endpoint" costs
 * O(prompt blocks × ⌈endpoints/32⌉), independent of how full the index is.
 *
 * Storage is typed arrays with free lists and an open-addressing hash table: no per-block objects,
 * so a full index costs about 40 bytes per (block, endpoint) pair and makes no garbage.
 */

import { HashIndex } from '../core/hash-index.js';

const NONE = -1;

/** Prefix-cache knowledge of one pool, endpoints 0..n-1. */
export class PrefixIndex {
  private words: number;
  /** hash → entry slot. */
  private readonly entries = new HashIndex(4096);
  // Entry slab: the endpoints holding a hash, and the chain of their nodes.
  private entryBits: Uint32Array;
  private entryHash: Float64Array;
  private entryFirst: Int32Array;
  private entryFree: number[] = [];
  private entryTop = 0;
  // Node slab: one (entry, endpoint) pair, linked into the endpoint's LRU list and the entry's chain.
  private nodeEndpoint: Int32Array;
  private nodeEntry: Int32Array;
  private nodePrev: Int32Array;
  private nodeNext: Int32Array;
  private nodeChain: Int32Array;
  private nodeFree: number[] = [];
  private nodeTop = 0;
  // Per endpoint: LRU list (head = most recent) and bounds.
  private head: Int32Array;
  private tail: Int32Array;
  private size: Int32Array;
  private capacity: Float64Array;
  private nominal: Float64Array;
  private alive: Uint32Array;

  /** `capacityBlocks[e]`: how many prefix blocks endpoint e can hold (its KV cache ÷ block size). */
  constructor(capacityBlocks: readonly number[]) {
    const n = capacityBlocks.length;
    this.words = Math.max(1, Math.ceil(n / 32));
    this.head = new Int32Array(n).fill(NONE);
    this.tail = new Int32Array(n).fill(NONE);
    this.size = new Int32Array(n);
    this.capacity = Float64Array.from(capacityBlocks, (c) => Math.max(1, Math.floor(c)));
    this.nominal = Float64Array.from(this.capacity);
    this.alive = new Uint32Array(this.words);
    const initial = 1024;
    this.entryBits = new Uint32Array(initial * this.words);
    this.entryHash = new Float64Array(initial);
    this.entryFirst = new Int32Array(initial);
    this.nodeEndpoint = new Int32Array(initial);
    this.nodeEntry = new Int32Array(initial);
    this.nodePrev = new Int32Array(initial);
    this.nodeNext = new Int32Array(initial);
    this.nodeChain = new Int32Array(initial);
  }

  /** Endpoints covered. */
  get endpoints(): number {
    return this.head.length;
  }

  /** Blocks endpoint `e` is believed to hold. */
  blocks(e: number): number {
    return this.size[e]!;
  }

  /** The endpoint's current capacity bound (blocks), after corrections. */
  capacityOf(e: number): number {
    return this.capacity[e]!;
  }

  /** Distinct hashes held anywhere. */
  get distinctBlocks(): number {
    return this.entries.size;
  }

  /**
   * For each endpoint, how many leading blocks of `hashes` it holds, into `out[e]`. Walks the chain
   * once, intersecting holder sets, and stops when no endpoint still matches.
   */
  match(hashes: readonly number[], out: Int32Array | Float64Array): void {
    const n = this.head.length;
    const W = this.words;
    const alive = this.alive;
    out.fill(0, 0, n);
    if (hashes.length === 0) return;
    alive.fill(0xffffffff);
    let i = 0;
    for (; i < hashes.length; i++) {
      const slot = this.entries.get(hashes[i]!);
      let any = 0;
      if (slot !== -1) {
        const base = slot * W;
        for (let w = 0; w < W; w++) {
          const before = alive[w]!;
          const now = before & this.entryBits[base + w]!;
          let dropped = (before & ~now) >>> 0;
          // Endpoints that matched blocks 0..i-1 but not block i: their match is i blocks.
          while (dropped !== 0) {
            const bit = 31 - Math.clz32(dropped);
            const e = w * 32 + bit;
            if (e < n) out[e] = i;
            dropped = (dropped & ~(1 << bit)) >>> 0;
          }
          alive[w] = now;
          any |= now;
        }
      }
      if (slot === -1 || any === 0) {
        if (slot === -1) this.dropAll(i, out);
        return;
      }
    }
    this.dropAll(i, out);
  }

  /** Every endpoint still alive matched `blocks` blocks. */
  private dropAll(blocks: number, out: Int32Array | Float64Array): void {
    const n = this.head.length;
    for (let w = 0; w < this.words; w++) {
      let bits = this.alive[w]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        const e = w * 32 + bit;
        if (e < n) out[e] = blocks;
        bits = (bits & ~(1 << bit)) >>> 0;
      }
      this.alive[w] = 0;
    }
  }

  /**
   * Records that endpoint `e` now holds every block of `hashes`. Blocks are touched from the last
   * to the first, so a prompt's first blocks are the most recent and evicted last, as in the engine
   * (a shared system prompt outlives the conversations built on it).
   */
  insert(e: number, hashes: readonly number[]): void {
    for (let i = hashes.length - 1; i >= 0; i--) this.touch(e, hashes[i]!);
    this.evictOver(e);
  }

  /**
   * Feedback from the engine: it reported `actualBlocks` cached where the index predicted
   * `predictedBlocks`. A shortfall means the endpoint keeps less than its nominal capacity (other
   * traffic, a smaller cache than configured): the bound shrinks by 10%; an exact hit lets it grow
   * back by 1% of nominal. (Multiplicative decrease, additive increase, as in congestion control.)
   */
  correct(e: number, predictedBlocks: number, actualBlocks: number): void {
    if (predictedBlocks <= 0) return;
    const nominal = this.nominal[e]!;
    if (actualBlocks < predictedBlocks) {
      this.capacity[e] = Math.max(Math.ceil(nominal / 16), Math.floor(this.capacity[e]! * 0.9));
      this.evictOver(e);
    } else if (this.capacity[e]! < nominal) {
      this.capacity[e] = Math.min(nominal, this.capacity[e]! + Math.max(1, Math.floor(nominal / 100)));
    }
  }

  /**
   * Adds endpoints n, n+1, … with these capacities (blocks), keeping what the others hold: a pool
   * that grows keeps its cache knowledge.
   */
  addEndpoints(capacityBlocks: readonly number[]): void {
    const n = this.head.length + capacityBlocks.length;
    const words = Math.max(1, Math.ceil(n / 32));
    if (words !== this.words) {
      const bits = new Uint32Array((this.entryBits.length / this.words) * words);
      for (let s = 0; s < this.entryTop; s++)
        for (let w = 0; w < this.words; w++) bits[s * words + w] = this.entryBits[s * this.words + w]!;
      this.entryBits = bits;
      this.words = words;
      this.alive = new Uint32Array(words);
    }
    const caps = Float64Array.from(capacityBlocks, (c) => Math.max(1, Math.floor(c)));
    this.head = concat(this.head, new Int32Array(caps.length).fill(NONE));
    this.tail = concat(this.tail, new Int32Array(caps.length).fill(NONE));
    this.size = concat(this.size, new Int32Array(caps.length));
    this.capacity = concat(this.capacity, caps);
    this.nominal = concat(this.nominal, Float64Array.from(caps));
  }

  /** Endpoint `e` now has room for `capacityBlocks` blocks (another engine took its place). */
  setCapacity(e: number, capacityBlocks: number): void {
    const c = Math.max(1, Math.floor(capacityBlocks));
    this.capacity[e] = c;
    this.nominal[e] = c;
    this.evictOver(e);
  }

  /** Forgets everything endpoint `e` holds (it restarted or was removed). */
  clear(e: number): void {
    while (this.tail[e]! !== NONE) this.evictTail(e);
  }

  private touch(e: number, hash: number): void {
    let slot = this.entries.get(hash);
    if (slot === -1) {
      slot = this.newEntry(hash);
    } else {
      for (let nd = this.entryFirst[slot]!; nd !== NONE; nd = this.nodeChain[nd]!) {
        if (this.nodeEndpoint[nd] === e) {
          this.moveToHead(e, nd);
          return;
        }
      }
    }
    const nd = this.newNode();
    this.nodeEndpoint[nd] = e;
    this.nodeEntry[nd] = slot;
    this.nodeChain[nd] = this.entryFirst[slot]!;
    this.entryFirst[slot] = nd;
    this.entryBits[slot * this.words + (e >>> 5)]! |= 1 << (e & 31);
    this.pushHead(e, nd);
    this.size[e]!++;
  }

  private evictOver(e: number): void {
    while (this.size[e]! > this.capacity[e]!) this.evictTail(e);
  }

  private evictTail(e: number): void {
    const nd = this.tail[e]!;
    this.unlink(e, nd);
    this.size[e]!--;
    const slot = this.nodeEntry[nd]!;
    // Unchain the node from its entry.
    let prev = NONE;
    for (let x = this.entryFirst[slot]!; x !== NONE; prev = x, x = this.nodeChain[x]!) {
      if (x !== nd) continue;
      if (prev === NONE) this.entryFirst[slot] = this.nodeChain[x]!;
      else this.nodeChain[prev] = this.nodeChain[x]!;
      break;
    }
    this.entryBits[slot * this.words + (e >>> 5)]! &= ~(1 << (e & 31));
    this.nodeFree.push(nd);
    if (this.entryFirst[slot] === NONE) {
      this.entries.delete(this.entryHash[slot]!);
      this.entryFree.push(slot);
    }
  }

  private pushHead(e: number, nd: number): void {
    const h = this.head[e]!;
    this.nodePrev[nd] = NONE;
    this.nodeNext[nd] = h;
    if (h !== NONE) this.nodePrev[h] = nd;
    else this.tail[e] = nd;
    this.head[e] = nd;
  }

  private unlink(e: number, nd: number): void {
    const p = this.nodePrev[nd]!;
    const n = this.nodeNext[nd]!;
    if (p !== NONE) this.nodeNext[p] = n;
    else this.head[e] = n;
    if (n !== NONE) this.nodePrev[n] = p;
    else this.tail[e] = p;
  }

  private moveToHead(e: number, nd: number): void {
    if (this.head[e] === nd) return;
    this.unlink(e, nd);
    this.pushHead(e, nd);
  }

  private newEntry(hash: number): number {
    let slot = this.entryFree.pop();
    if (slot === undefined) {
      slot = this.entryTop++;
      if (slot >= this.entryHash.length) this.growEntries();
    }
    this.entryHash[slot] = hash;
    this.entryFirst[slot] = NONE;
    this.entryBits.fill(0, slot * this.words, (slot + 1) * this.words);
    this.entries.add(hash, slot);
    return slot;
  }

  private newNode(): number {
    const nd = this.nodeFree.pop();
    if (nd !== undefined) return nd;
    const top = this.nodeTop++;
    if (top >= this.nodeEndpoint.length) this.growNodes();
    return top;
  }

  private growEntries(): void {
    const cap = this.entryHash.length * 2;
    this.entryHash = grow(this.entryHash, cap);
    this.entryFirst = grow(this.entryFirst, cap);
    this.entryBits = grow(this.entryBits, cap * this.words);
  }

  private growNodes(): void {
    const cap = this.nodeEndpoint.length * 2;
    this.nodeEndpoint = grow(this.nodeEndpoint, cap);
    this.nodeEntry = grow(this.nodeEntry, cap);
    this.nodePrev = grow(this.nodePrev, cap);
    this.nodeNext = grow(this.nodeNext, cap);
    this.nodeChain = grow(this.nodeChain, cap);
  }
}

function concat<T extends Int32Array | Float64Array>(a: T, b: T): T {
  const c = new (a.constructor as new (n: number) => T)(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}

function grow<T extends Int32Array | Uint32Array | Float64Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}
