/**
 * @module fidelity/replay
 * Replays one measured experiment through the simulator (one replica of its engine profile with
 * the experiment's batch limits and KV blocks, the workload as inference-perf generated it) and
 * sets the simulated latencies per stage beside the measured ones.
 */
import { percentile } from '../core/quantile.js';
import { getProfile } from '../engine-model/profiles.js';
import type { EngineProfile } from '../engine-model/types.js';
import { routingSpec } from '../router/presets.js';
import { Simulation } from '../sim/simulator.js';
import type { FidelityData, FidelityExperiment, PredictedMetrics } from './data.js';
import { inferencePerfRequests } from './workload.js';

/** Latencies of one stage as compared: TPOT is (E2E mean − TTFT mean) / (out − 1) for both sides. */
export interface ComparedMetrics {
  readonly ttft_mean: number;
  readonly ttft_p90: number;
  readonly ttft_p99: number;
  readonly tpot: number;
  readonly e2e_mean: number;
  readonly e2e_p99: number;
}

export const METRIC_KEYS = ['ttft_mean', 'ttft_p90', 'ttft_p99', 'tpot', 'e2e_mean', 'e2e_p99'] as const;

export interface StageResult {
  readonly experiment: string;
  readonly stage: string;
  readonly rate: number;
  readonly real: ComparedMetrics;
  readonly sim: ComparedMetrics;
  /** Other simulators' predictions of this stage, by name. */
  readonly others: Readonly<Record<string, ComparedMetrics>>;
  /**
   * The model could not serve the stage in time: at its end, more than 5 s worth of its arrivals
   * (or a tenth of them, in a short stage) had not yet produced a first token; a stable engine
   * holds about rate × mean TTFT of them.
   */
  readonly saturated: boolean;
  readonly requests: number;
}

/** The experiment's engine: its profile with the run's batch limits, KV blocks and context. */
export function experimentProfile(
  e: FidelityExperiment,
  base: EngineProfile = getProfile(e.profile),
): EngineProfile {
  return {
    ...base,
    maxNumBatchedTokens: e.mbt,
    maxNumSeqs: e.seqs,
    numKvBlocks: e.kvBlocks ?? base.numKvBlocks,
    maxModelLen: e.maxModelLen ?? base.maxModelLen,
  };
}

/** Replays experiment `e` of `data`; `profile` overrides the engine (a calibration candidate). */
export async function replayExperiment(
  data: FidelityData,
  e: FidelityExperiment,
  options: { seed?: number; profile?: EngineProfile; freshQuestions?: boolean } = {},
): Promise<StageResult[]> {
  const w = data.workloads[e.workload]!;
  const profile = experimentProfile(e, options.profile);
  const seed = options.seed ?? 1;
  const reqs = inferencePerfRequests(w, profile.blockSize, seed, options.freshQuestions);
  const n = reqs.records.length;
  const ttft = new Float64Array(n).fill(Number.NaN);
  const e2e = new Float64Array(n).fill(Number.NaN);
  const sim = new Simulation({
    pools: [{ name: 'engine', endpoints: [{ name: 'replica', profile, maxConcurrency: 1 << 30 }] }],
    routing: routingSpec('default'),
    seed,
    maxWaitingPerEngine: 1 << 30,
  });
  await sim.run(reqs.records, (r) => {
    const i = Number(r.id.slice(1)); // the simulator names requests r0, r1, … in record order
    if (r.status !== 'ok') return;
    ttft[i] = r.ttft_ms;
    e2e[i] = r.e2e_ms;
  });
  const measured = data.metrics[e.id]!;
  return reqs.stages.map((st, s) => {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (reqs.stageOf[i] === s) idx.push(i);
    const key = String(s);
    const real = measured.real[key];
    let late = 0;
    for (const i of idx) if (!(reqs.records[i]!.arrivalMs + ttft[i]! <= st.endMs)) late++;
    return {
      experiment: e.id,
      stage: key,
      rate: st.rate,
      real: real === undefined ? nanMetrics() : compared(real, w.out),
      sim: simulated(idx, ttft, e2e, w.out),
      others: Object.fromEntries(
        Object.entries(measured.others).flatMap(([name, byStage]) => {
          const m = byStage[key];
          return m === undefined ? [] : [[name, compared(m, w.out)]];
        }),
      ),
      saturated: late > Math.min(st.rate * 5, 0.1 * idx.length),
      requests: idx.length,
    };
  });
}

function compared(m: PredictedMetrics, out: number): ComparedMetrics {
  return {
    ttft_mean: m.ttft_mean,
    ttft_p90: m.ttft_p90 ?? Number.NaN,
    ttft_p99: m.ttft_p99 ?? Number.NaN,
    tpot: (m.e2e_mean - m.ttft_mean) / (out - 1),
    e2e_mean: m.e2e_mean,
    e2e_p99: m.e2e_p99 ?? Number.NaN,
  };
}

function simulated(
  idx: readonly number[],
  ttft: Float64Array,
  e2e: Float64Array,
  out: number,
): ComparedMetrics {
  const t = idx.map((i) => ttft[i]!).filter((x) => !Number.isNaN(x));
  const e = idx.map((i) => e2e[i]!).filter((x) => !Number.isNaN(x));
  const ttftMean = mean(t);
  const e2eMean = mean(e);
  return {
    ttft_mean: ttftMean,
    ttft_p90: percentile(t, 0.9),
    ttft_p99: percentile(t, 0.99),
    tpot: (e2eMean - ttftMean) / (out - 1),
    e2e_mean: e2eMean,
    e2e_p99: percentile(e, 0.99),
  };
}

function nanMetrics(): ComparedMetrics {
  return { ttft_mean: NaN, ttft_p90: NaN, ttft_p99: NaN, tpot: NaN, e2e_mean: NaN, e2e_p99: NaN };
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
