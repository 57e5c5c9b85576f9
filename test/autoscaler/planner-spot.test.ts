/** SpotMarket: determinism per seed, waves, and the long-run preemption rate. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SPOT_NOTICE_MS_DEFAULT, SpotMarket } from '../../src/autoscaler/spot.js';
import type { InstanceType } from '../../src/autoscaler/types.js';
import { AssertionError } from '../../src/core/assert.js';
import { SeededRng } from '../../src/core/rng.js';

const HOUR = 3_600_000;

function spotType(name: string, perHour: number, extra: Partial<InstanceType> = {}): InstanceType {
  return {
    name,
    profile: 'ref',
    capacity: 1,
    onDemandUsdPerHour: 4,
    spotUsdPerHour: 1,
    spotPreemptionsPerHour: perHour,
    ...extra,
  };
}

describe('SpotMarket', () => {
  const catalog = [spotType('a', 0.5), spotType('b', 2, { spotNoticeMs: 30_000 })];

  it('is a pure function of the seed and the replica, in any query order', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `r${i}`);
    const m1 = new SpotMarket(catalog, new SeededRng(7));
    const m2 = new SpotMarket(catalog, new SeededRng(7));
    const forward = ids.map((id, i) => m1.preemption(id, i % 2 ? 'a' : 'b', i * 60_000));
    const backward = [...ids].reverse().map((id) => {
      const i = ids.indexOf(id);
      return m2.preemption(id, i % 2 ? 'a' : 'b', i * 60_000);
    });
    assert.deepEqual(forward, backward.reverse());
    assert.deepEqual(m1.preemption('r3', 'a', 180_000), forward[3]); // asked again: the same
    const other = new SpotMarket(catalog, new SeededRng(8));
    const differs = ids.some(
      (id, i) => other.preemption(id, i % 2 ? 'a' : 'b', i * 60_000)?.noticeMs !== forward[i]?.noticeMs,
    );
    assert.ok(differs);
  });

  it('stops a replica its type’s notice after the notice (AWS: 2 minutes)', () => {
    const m = new SpotMarket(catalog, new SeededRng(1));
    const a = m.preemption('x', 'a', 0)!;
    const b = m.preemption('x', 'b', 0)!;
    assert.equal(a.stopMs - a.noticeMs, SPOT_NOTICE_MS_DEFAULT);
    assert.equal(SPOT_NOTICE_MS_DEFAULT, 120_000);
    assert.equal(b.stopMs - b.noticeMs, 30_000);
    assert.ok(a.noticeMs > 0 && b.noticeMs > 0);
  });

  it('with waveShare 1 and hit probability 1, takes every running replica of a type at its next wave', () => {
    const m = new SpotMarket(catalog, new SeededRng(3), { waveShare: 1, waveHitProbability: 1 });
    const wave = m.nextWaveAfter('a', 0);
    assert.ok(wave > 0 && Number.isFinite(wave));
    for (const [i, start] of [0, wave / 3, wave / 2, wave - 1].entries()) {
      assert.deepEqual(m.preemption(`r${i}`, 'a', start), {
        noticeMs: wave,
        stopMs: wave + 120_000,
        cause: 'wave',
      });
    }
    // A replica started at the wave is not in it: it goes at the next one.
    const next = m.nextWaveAfter('a', wave);
    assert.equal(m.preemption('late', 'a', wave)!.noticeMs, next);
    assert.deepEqual(m.wavesBetween('a', 0, next), [wave, next]);
    assert.notEqual(m.nextWaveAfter('b', 0), wave); // waves are per type
  });

  it('has no waves with waveShare 0, and no preemptions at rate 0', () => {
    const m = new SpotMarket([...catalog, spotType('c', 0)], new SeededRng(5), { waveShare: 0 });
    assert.equal(m.nextWaveAfter('a', 0), Number.POSITIVE_INFINITY);
    assert.deepEqual(m.wavesBetween('a', 0, 1e12), []);
    for (let i = 0; i < 100; i++) assert.equal(m.preemption(`r${i}`, 'a', 0)!.cause, 'solo');
    assert.equal(m.preemption('r', 'c', 0), null);
    assert.throws(() => m.preemption('r', 'nope', 0), AssertionError);
    const od: InstanceType = { name: 'od', profile: 'ref', capacity: 1, onDemandUsdPerHour: 1 };
    assert.throws(() => new SpotMarket([od], new SeededRng(1)).preemption('r', 'od', 0), AssertionError);
    assert.throws(() => new SpotMarket(catalog, new SeededRng(1), { waveHitProbability: 0 }), AssertionError);
  });

  it('matches the configured rate over 20 000 lives of one replica slot (within 3 %)', () => {
    // Each life is exponential with rate λ, so the estimate's relative standard error is
    // 1/√20 000 ≈ 0.7 %: 3 % is over 4 standard errors.
    const m = new SpotMarket(catalog, new SeededRng(11));
    let t = 0;
    let waves = 0;
    const lives = 20_000;
    for (let i = 0; i < lives; i++) {
      const p = m.preemption(`life${i}`, 'a', t)!;
      if (p.cause === 'wave') waves++;
      t = p.noticeMs;
    }
    const rate = lives / (t / HOUR);
    assert.ok(Math.abs(rate - 0.5) / 0.5 < 0.03, `rate ${rate}`);
    // Half of them come in waves (default waveShare 0.5); binomial SE 0.35 %.
    assert.ok(Math.abs(waves / lives - 0.5) < 0.02, `wave share ${waves / lives}`);
  });

  it('matches the rate with 20 replicas side by side, hit together by waves', () => {
    // λ = 2/h, w = p = 0.5: waves at Λ = 2/h over 1 000 h, each taking Binomial(20, 0.5) replicas.
    const m = new SpotMarket(catalog, new SeededRng(13));
    const horizon = 1_000 * HOUR;
    let notices = 0;
    let exposure = 0;
    const byWave = new Map<number, number>();
    for (let slot = 0; slot < 20; slot++) {
      let t = 0;
      for (let life = 0; ; life++) {
        const p = m.preemption(`s${slot}-${life}`, 'b', t)!;
        if (p.noticeMs > horizon) {
          exposure += horizon - t;
          break;
        }
        notices++;
        exposure += p.noticeMs - t;
        if (p.cause === 'wave') byWave.set(p.noticeMs, (byWave.get(p.noticeMs) ?? 0) + 1);
        t = p.noticeMs;
      }
    }
    const rate = notices / (exposure / HOUR);
    assert.ok(Math.abs(rate - 2) / 2 < 0.05, `rate ${rate}`);
    // Every slot runs at every wave, so a wave takes 20 × 0.5 = 10 on average (SE ≈ 0.05).
    const waves = m.wavesBetween('b', 0, horizon).length;
    const taken = [...byWave.values()].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(taken / waves - 10) < 0.5, `per wave ${taken / waves}`);
    assert.ok(byWave.size <= waves);
  });
});
