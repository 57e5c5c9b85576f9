/**
 * @module engine-model/kv-cache
 * Paged KV cache with automatic prefix caching, as in vLLM V1: a fixed pool of blocks, each holding
 * `blockSize` tokens; a full prompt block that has been computed is registered under its chained
 * hash and can be shared by later requests. Blocks no request references stay cached in a free
 * queue ordered for eviction: least recently freed first, and within one request its last block
 * first (so a shared prefix outlives its tail). Allocation takes from the head of that queue and
 * evicts whatever cached content the block held.
 */

import { HashIndex } from '../core/hash-index.js';

const NONE = -1;

/** The block pool of one replica. Block ids are 0..numBlocks-1. */
export class KvCache {
  readonly numBlocks: number;
  /** Requests referencing each block. */
  private readonly refs: Int32Array;
  /** Chained hash of the block's content, valid where {@link hashed} is 1 (a registered full prompt block). */
  private readonly hashOf: Int32Array;
  private readonly hashed: Uint8Array;
  private readonly byHash = new HashIndex();
  // Free queue: a doubly linked list over block ids (NONE-terminated).
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = NONE;
  private tail = NONE;
  private freeCount = 0;

  constructor(numBlocks: number) {
    this.numBlocks = numBlocks;
    this.refs = new Int32Array(numBlocks);
    this.hashOf = new Int32Array(numBlocks);
    this.hashed = new Uint8Array(numBlocks);
    this.prev = new Int32Array(numBlocks).fill(NONE);
    this.next = new Int32Array(numBlocks).fill(NONE);
    for (let b = 0; b < numBlocks; b++) this.append(b);
  }

  /** Blocks no request references (empty or cached-evictable). */
  get free(): number {
    return this.freeCount;
  }

  /** Blocks referenced by at least one request. */
  get used(): number {
    return this.numBlocks - this.freeCount;
  }

  /** Whether a block holding content `hash` is cached (referenced or not). */
  has(hash: number): boolean {
    return this.byHash.get(hash) !== -1;
  }

  /**
   * The leading blocks of `hashes` (at most `maxBlocks`) that are cached: the prefix hit.
   * Returns their block ids without taking references.
   */
  lookup(hashes: readonly number[] | undefined, maxBlocks: number): number[] {
    const hit: number[] = [];
    if (hashes === undefined) return hit;
    const n = Math.min(hashes.length, maxBlocks);
    for (let i = 0; i < n; i++) {
      const b = this.byHash.get(hashes[i]!);
      if (b === -1) break;
      hit.push(b);
    }
    return hit;
  }

  /** How many of `blocks` are unreferenced (taking them would shrink the free pool). */
  countFree(blocks: readonly number[]): number {
    let n = 0;
    for (const b of blocks) if (this.refs[b] === 0) n++;
    return n;
  }

  /** Takes a reference on each of `blocks` (cache hits), removing unreferenced ones from the free queue. */
  acquire(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (this.refs[b] === 0) this.unlink(b);
      this.refs[b]!++;
    }
  }

  /**
   * Allocates `count` fresh blocks from the head of the free queue, evicting their cached content.
   * The caller checks {@link free} first; running out is a bug.
   */
  allocate(count: number, into: number[]): void {
    if (count > this.freeCount)
      throw new Error(`KV cache: ${count} blocks requested, ${this.freeCount} free`);
    for (let i = 0; i < count; i++) {
      const b = this.head;
      this.unlink(b);
      if (this.hashed[b] === 1) {
        this.byHash.delete(this.hashOf[b]!); // a registered block is always the one its hash maps to
        this.hashed[b] = 0;
      }
      this.refs[b] = 1;
      into.push(b);
    }
  }

  /** Registers a computed full block under `hash` so later requests can share it. */
  register(block: number, hash: number): void {
    if (this.hashed[block] === 1) return;
    // Computed twice concurrently: the first copy stays the shared one and this block stays private.
    if (!this.byHash.add(hash, block)) return;
    this.hashOf[block] = hash | 0;
    this.hashed[block] = 1;
  }

  /** Drops one reference on each of a request's blocks; unreferenced ones join the free queue tail-first. */
  release(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i]!;
      if (--this.refs[b]! === 0) this.append(b);
    }
  }

  private append(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = NONE;
    if (this.tail === NONE) this.head = b;
    else this.next[this.tail] = b;
    this.tail = b;
    this.freeCount++;
  }

  private unlink(b: number): void {
    const p = this.prev[b]!;
    const n = this.next[b]!;
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
    this.prev[b] = NONE;
    this.next[b] = NONE;
    this.freeCount--;
  }
}
