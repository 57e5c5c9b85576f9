/**
 * @module plugins/routing/hash-ring
 * Consistent hash rings over a pool's endpoints, shared by the hashing policies (`chwbl-picker`,
 * `dualmap-picker`). Each endpoint owns `vnodes` points on a 32-bit ring, placed by hashing its id,
 * so adding an endpoint takes about 1/(N+1) of the ring from the others and moves nothing else.
 *
 * Layout: two parallel typed arrays sorted by point, searched by bisection (O(log ring)):
 *
 *     points  [ 0x03a1… | 0x0f7c… | 0x1b02… | … | 0xfe91… ]   ascending
 *     owners  [    2    |    0    |    2    | … |    1    ]   pool index of the point's endpoint
 *
 * A key lands on the first point at or after its hash (wrapping), and a walk goes on clockwise.
 */
import { fnv1a } from '../../core/hash.js';
import type { EndpointView } from '../../framework/endpoint.js';
import type { RoutingRequest } from '../../framework/routing.js';

/** murmur3's 32-bit finaliser: a bijection with full avalanche, so nearby inputs land far apart. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** An immutable ring: `vnodes` points per member, members given by pool index (`null`: none there). */
export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(
    members: readonly (string | null)[],
    vnodes: number,
    private readonly seed: number,
  ) {
    // Sort (point, owner) pairs as one float: point·2^16 + owner is exact below 2^53.
    const packed: number[] = [];
    for (let m = 0; m < members.length; m++) {
      const id = members[m];
      if (id === null || id === undefined) continue;
      const base = fnv1a(id, seed);
      for (let v = 0; v < vnodes; v++) packed.push(fmix32(base ^ Math.imul(v + 1, 0x9e3779b1)) * 65536 + m);
    }
    const sorted = Float64Array.from(packed).sort();
    this.points = new Uint32Array(sorted.length);
    this.owners = new Uint16Array(sorted.length);
    for (let i = 0; i < sorted.length; i++) {
      this.points[i] = Math.floor(sorted[i]! / 65536);
      this.owners[i] = sorted[i]! % 65536;
    }
  }

  /** Points on the ring (members × vnodes). */
  get length(): number {
    return this.points.length;
  }

  /** Ring position where `key` lands: the first point at or after its hash, wrapping to 0. */
  start(key: number): number {
    const h = fmix32(key ^ this.seed);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }

  /** Pool index of the endpoint owning position `pos` (taken modulo the ring's length). */
  owner(pos: number): number {
    return this.owners[pos % this.points.length]!;
  }

  /**
   * The first position from `from` clockwise, within one turn, whose owner is a candidate
   * (`slot[owner] ≥ 0`) other than pool indexes `skipA` and `skipB`; −1 if there is none.
   */
  next(from: number, slot: Int32Array, skipA: number, skipB: number): number {
    const len = this.points.length;
    for (let s = 0; s < len; s++) {
      const pos = (from + s) % len;
      const o = this.owners[pos]!;
      if (o !== skipA && o !== skipB && slot[o]! >= 0) return pos;
    }
    return -1;
  }
}

/**
 * The rings of one plugin instance (one pool), kept in step with the endpoints it is offered.
 * Members are the last id seen at each pool index: an endpoint filtered out of one decision (busy,
 * unhealthy) keeps its points, so its keys wait for it instead of reshuffling, and the rings are
 * rebuilt only when a new id appears. `slot` maps pool index → position among the current
 * candidates (−1: not a candidate), refreshed by {@link prepare} for each decision.
 */
export class EndpointRings {
  readonly rings: HashRing[] = [];
  slot = new Int32Array(0);
  private members: (string | null)[] = [];

  constructor(
    private readonly vnodes: number,
    private readonly seeds: readonly number[],
  ) {}

  /** Brings the rings up to date with `candidates` and fills {@link slot}. O(candidates + pool). */
  prepare(candidates: readonly EndpointView[]): void {
    let changed = this.rings.length === 0;
    for (const c of candidates) {
      if (this.members[c.index] === c.id) continue;
      while (this.members.length <= c.index) this.members.push(null);
      this.members[c.index] = c.id;
      changed = true;
    }
    if (changed) {
      if (this.members.length > 65536) throw new Error('hash rings hold at most 65536 endpoints');
      this.rings.length = 0;
      for (const seed of this.seeds) this.rings.push(new HashRing(this.members, this.vnodes, seed));
      this.slot = new Int32Array(this.members.length);
    }
    this.slot.fill(-1);
    for (let i = 0; i < candidates.length; i++) this.slot[candidates[i]!.index] = i;
  }
}

/**
 * The 32-bit key of a request's prefix: the chained hash of its first ⌈keyTokens / block⌉ prefix
 * blocks (all of them when the prompt is shorter), or −1 when it has no prefix signal. The length
 * is given in tokens because block sizes differ by source (16, 64, Mooncake's 512).
 */
export function prefixKey(req: RoutingRequest, keyTokens: number): number {
  const n = req.prefixHashes.length;
  if (n === 0) return -1;
  const blocks = Math.max(1, Math.round(keyTokens / req.prefixBlockTokens));
  return req.prefixHashes[Math.min(blocks, n) - 1]! >>> 0;
}

/** The 32-bit key of a string (session id, request id). */
export function stringKey(s: string): number {
  return fnv1a(s);
}
