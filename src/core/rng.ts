/**
 * @module core/rng
 * Seeded pseudo-random numbers (mulberry32). Decision code takes an {@link Rng}; it never calls
 * `Math.random`, so a run is defined by its seed.
 */

/** A seeded source of uniform numbers in [0, 1). */
export interface Rng {
  next(): number;
}

/** mulberry32: small, fast, and good enough for load balancing and workload generation. */
export class SeededRng implements Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
