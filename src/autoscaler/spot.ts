/**
 * @module autoscaler/spot
 * A seeded model of spot preemptions, for the simulator: when does a spot replica get its notice,
 * and when is it taken.
 *
 * Model, per instance type T with λ = `spotPreemptionsPerHour` (notices per replica-hour) and
 * w = `waveShare`, p = `waveHitProbability`:
 *
 * - **Solo notices.** Each replica gets notices of its own as a Poisson process of rate (1 − w) λ.
 * - **Waves.** Preemptions of one type in one zone come together (the market reclaims capacity in
 *   bulk): waves arrive per type as a Poisson process of rate Λ = w λ / p, on the simulator's
 *   absolute clock, and each wave takes each spot replica of T running at that moment with
 *   probability p, independently.
 *
 * A replica started at `startMs` gets its notice at the first of its solo notice and the first wave
 * after `startMs` that takes it. The wave hits on one replica form a thinning of a Poisson process,
 * of rate Λ p = w λ, so its notice time is exponential with rate λ whatever w and p: the
 * configured rate holds per replica, and w only moves how correlated the notices are (w = 0:
 * independent; w = 1, p = 1: every spot replica of the type goes at once). It is stopped
 * `spotNoticeMs` after the notice (default 120 s, AWS's two-minute interruption notice: AWS EC2 User
 * Guide, "Spot Instance interruption notices"). The defaults w = 0.5 and p = 0.5 are ours: no source
 * we know of publishes how correlated preemptions are, only that they come in bursts (SpotHedge's
 * placement across zones: Mao et al., arXiv 2411.01438; skypilot-org/skypilot `sky/serve/spot_placer.py`).
 *
 * Determinism. The {@link Rng} given is read once, for the market's seed. Each type's wave times
 * come from a stream seeded by (seed, type); each replica's draws (its solo notice, then one
 * uniform per wave it lives through) from a stream seeded by (seed, type, replica id). So
 * {@link SpotMarket.preemption} is a pure function of (seed, replica id, type, start): the same
 * answer however often, and in whatever order, the simulator asks. Wave times are generated
 * lazily and kept (memory: one number per wave generated, Λ × horizon per type).
 */
import { assert } from '../core/assert.js';
import { fnv1a, mix32 } from '../core/hash.js';
import { type Rng, SeededRng } from '../core/rng.js';
import type { InstanceType } from './types.js';

/**
 * AWS's spot interruption notice, ms: two minutes
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html).
 */
export const SPOT_NOTICE_MS_DEFAULT = 120_000;

export interface SpotMarketOptions {
  /** Share w of each type's preemptions that come in waves, 0..1 (ours: 0.5). */
  readonly waveShare?: number;
  /** Chance p that a wave takes a given running replica of its type, (0, 1] (ours: 0.5). */
  readonly waveHitProbability?: number;
}

export const SPOT_MARKET_DEFAULTS: Readonly<Required<SpotMarketOptions>> = Object.freeze({
  waveShare: 0.5,
  waveHitProbability: 0.5,
});

/** One replica's preemption. */
export interface SpotPreemption {
  /** When the notice arrives (ms, the simulator's clock): stop routing to it, start its replacement. */
  readonly noticeMs: number;
  /** When the replica is taken away: `noticeMs` + the type's `spotNoticeMs`. */
  readonly stopMs: number;
  /** `wave` when a wave of its type took it (other replicas of the type go at the same `noticeMs`). */
  readonly cause: 'solo' | 'wave';
}

const MS_PER_HOUR = 3_600_000;

interface TypeMarket {
  readonly salt: number;
  readonly soloPerMs: number;
  readonly wavesPerMs: number;
  readonly noticeMs: number;
  readonly waveRng: SeededRng;
  /** Wave times generated so far, ascending. */
  readonly waves: number[];
}

/** The spot market of a catalog; see the module comment. */
export class SpotMarket {
  private readonly types = new Map<string, TypeMarket>();
  private readonly hitProbability: number;

  constructor(catalog: readonly InstanceType[], rng: Rng, opts: SpotMarketOptions = {}) {
    const { waveShare, waveHitProbability } = { ...SPOT_MARKET_DEFAULTS, ...opts };
    assert(waveShare >= 0 && waveShare <= 1, 'waveShare must lie in [0, 1]');
    assert(waveHitProbability > 0 && waveHitProbability <= 1, 'waveHitProbability must lie in (0, 1]');
    this.hitProbability = waveHitProbability;
    const seed = Math.floor(rng.next() * 2 ** 32) >>> 0;
    for (const t of catalog) {
      if (t.spotUsdPerHour === undefined) continue;
      const rate = t.spotPreemptionsPerHour ?? 0;
      assert(Number.isFinite(rate) && rate >= 0, `${t.name}: spotPreemptionsPerHour must be ≥ 0`);
      const noticeMs = t.spotNoticeMs ?? SPOT_NOTICE_MS_DEFAULT;
      assert(Number.isFinite(noticeMs) && noticeMs >= 0, `${t.name}: spotNoticeMs must be ≥ 0`);
      const salt = mix32(seed, fnv1a(t.name));
      this.types.set(t.name, {
        salt,
        soloPerMs: ((1 - waveShare) * rate) / MS_PER_HOUR,
        wavesPerMs: (waveShare * rate) / waveHitProbability / MS_PER_HOUR,
        noticeMs,
        waveRng: new SeededRng(mix32(salt, 0x57a7e5)),
        waves: [],
      });
    }
  }

  /**
   * The preemption of spot replica `replicaId` of `type`, started at `startMs`; null when the type
   * is never preempted (rate 0). Pure in its arguments for a given seed (see the module comment).
   */
  preemption(replicaId: string, type: string, startMs: number): SpotPreemption | null {
    assert(Number.isFinite(startMs), 'startMs must be finite');
    const m = this.market(type);
    const own = new SeededRng(mix32(m.salt, fnv1a(replicaId)));
    const u = own.next(); // drawn even at rate 0, so the stream's layout never depends on the rates
    const solo = m.soloPerMs > 0 ? startMs + -Math.log(1 - u) / m.soloPerMs : Number.POSITIVE_INFINITY;
    let wave = Number.POSITIVE_INFINITY;
    if (m.wavesPerMs > 0) {
      for (let k = this.firstWaveAfter(m, startMs); ; k++) {
        const at = this.waveAt(m, k);
        if (at >= solo) break;
        if (own.next() < this.hitProbability) {
          wave = at;
          break;
        }
      }
    }
    const noticeMs = Math.min(solo, wave);
    if (noticeMs === Number.POSITIVE_INFINITY) return null;
    return { noticeMs, stopMs: noticeMs + m.noticeMs, cause: wave < solo ? 'wave' : 'solo' };
  }

  /** The first wave of `type` strictly after `afterMs` (+∞: the type has no waves). */
  nextWaveAfter(type: string, afterMs: number): number {
    const m = this.market(type);
    if (m.wavesPerMs === 0) return Number.POSITIVE_INFINITY;
    return this.waveAt(m, this.firstWaveAfter(m, afterMs));
  }

  /** The waves of `type` in (fromMs, toMs], ascending. */
  wavesBetween(type: string, fromMs: number, toMs: number): number[] {
    const m = this.market(type);
    if (m.wavesPerMs === 0) return [];
    const out: number[] = [];
    for (let k = this.firstWaveAfter(m, fromMs); this.waveAt(m, k) <= toMs; k++) out.push(this.waveAt(m, k));
    return out;
  }

  private market(type: string): TypeMarket {
    const m = this.types.get(type);
    assert(m !== undefined, `SpotMarket: ${type} is not a spot instance type of the catalog`);
    return m;
  }

  /** Wave k (0-based), generating waves up to it. */
  private waveAt(m: TypeMarket, k: number): number {
    while (m.waves.length <= k) {
      const last = m.waves.length === 0 ? 0 : m.waves[m.waves.length - 1]!;
      m.waves.push(last + -Math.log(1 - m.waveRng.next()) / m.wavesPerMs);
    }
    return m.waves[k]!;
  }

  /** Index of the first wave strictly after `ms` (binary search over the generated ones). */
  private firstWaveAfter(m: TypeMarket, ms: number): number {
    while (m.waves.length === 0 || m.waves[m.waves.length - 1]! <= ms) this.waveAt(m, m.waves.length);
    let lo = 0;
    let hi = m.waves.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (m.waves[mid]! > ms) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
