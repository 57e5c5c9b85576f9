/**
 * @module sim/capacity
 * SLO capacity search: the highest replay rate (as a multiple of the trace's own rate) at which SLO
 * attainment stays at or above a target, found by bracketing then bisection. It assumes attainment
 * falls as the rate rises, which holds for the engine model's FCFS queues.
 */
import type { SimSummary } from './simulator.js';

export interface CapacityResult {
  /** The highest rate scale found that meets the target (0 when even the lowest tried fails). */
  readonly rate_scale: number;
  /** Arrival rate at that scale, requests per simulated second. */
  readonly requests_per_s: number;
  readonly slo_attainment: number;
  readonly slo_target: number;
  /** Every scale tried, in order, with its attainment. */
  readonly probes: readonly { readonly rate_scale: number; readonly slo_attainment: number }[];
}

export interface CapacityOptions {
  readonly target: number;
  /** Bisection steps after bracketing (each halves the interval). */
  readonly iterations?: number;
  /** First scale tried. */
  readonly start?: number;
  /** Lowest scale worth trying: below it the search stops and reports 0. */
  readonly min?: number;
}

/** `simulate(k)` runs the whole trace at rate scale k. */
export async function capacitySearch(
  simulate: (rateScale: number) => Promise<SimSummary>,
  opts: CapacityOptions,
): Promise<CapacityResult> {
  const probes: { rate_scale: number; slo_attainment: number }[] = [];
  const passes = new Map<number, SimSummary>();
  const probe = async (k: number): Promise<boolean> => {
    const s = await simulate(k);
    probes.push({ rate_scale: k, slo_attainment: s.slo_attainment });
    const ok = s.slo_attainment >= opts.target;
    if (ok) passes.set(k, s);
    return ok;
  };
  let lo = 0;
  let hi = opts.start ?? 1;
  // Bracket: double while passing, halve while failing (at most 12 steps each way).
  if (await probe(hi)) {
    lo = hi;
    for (let i = 0; i < 12; i++) {
      hi = lo * 2;
      if (!(await probe(hi))) break;
      lo = hi;
    }
  } else {
    for (let i = 0; i < 12; i++) {
      const k = hi / 2;
      if (k < (opts.min ?? 0)) break;
      if (await probe(k)) {
        lo = k;
        break;
      }
      hi = k;
    }
  }
  if (lo === 0) return result(0, undefined, opts.target, probes);
  if (passes.has(hi)) return result(hi, passes.get(hi), opts.target, probes); // never failed within 12 doublings
  for (let i = 0; i < (opts.iterations ?? 8); i++) {
    const mid = (lo + hi) / 2;
    if (await probe(mid)) lo = mid;
    else hi = mid;
  }
  return result(lo, passes.get(lo), opts.target, probes);
}

function result(
  k: number,
  s: SimSummary | undefined,
  target: number,
  probes: CapacityResult['probes'],
): CapacityResult {
  return {
    rate_scale: k,
    requests_per_s: s?.arrival_rate_rps ?? 0,
    slo_attainment: s?.slo_attainment ?? Number.NaN,
    slo_target: target,
    probes,
  };
}
