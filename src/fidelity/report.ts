/**
 * @module fidelity/report
 * Replays every experiment of a fidelity directory and sums up how far the engine model is from
 * the measurements: per stage, signed relative errors; over all stages, the median absolute
 * relative error of each metric, for the model and for each other simulator in the data.
 */
import type { EngineProfile } from '../engine-model/types.js';
import { median } from '../core/quantile.js';
import type { FidelityData } from './data.js';
import { type ComparedMetrics, METRIC_KEYS, type StageResult, replayExperiment } from './replay.js';

/** The medians the issue's targets are stated on (0.1 = 10 %). */
export const MEDIAN_KEYS = ['ttft_mean', 'ttft_p99', 'tpot', 'e2e_mean', 'e2e_p99'] as const;
export type Medians = Record<(typeof MEDIAN_KEYS)[number], number>;

export interface FidelityReport {
  readonly stages: readonly (StageResult & { readonly error: ComparedMetrics })[];
  /** Median absolute relative error over every stage with a measurement. */
  readonly medians: Medians;
  /** Ids (`experiment/stage`) of stages the model could not serve in time. */
  readonly saturated: readonly string[];
  /** The same medians for each other simulator, over the stages it predicted. */
  readonly others: Readonly<Record<string, Medians & { readonly stages: number }>>;
}

export interface FidelityOptions {
  readonly seed?: number;
  /** Only these experiment ids. */
  readonly only?: readonly string[];
  /** Replaces an experiment's profile (by the profile's name): calibration candidates. */
  readonly profiles?: Readonly<Record<string, EngineProfile>>;
  /** Called as each experiment is done (progress). */
  readonly onExperiment?: (id: string, stages: readonly StageResult[]) => void;
}

/** Relative error (sim − real) / real. */
function errors(sim: ComparedMetrics, real: ComparedMetrics): ComparedMetrics {
  const out = {} as Record<(typeof METRIC_KEYS)[number], number>;
  for (const k of METRIC_KEYS) out[k] = (sim[k] - real[k]) / real[k];
  return out;
}

function medians(errs: readonly ComparedMetrics[]): Medians {
  const out = {} as Medians;
  for (const k of MEDIAN_KEYS) out[k] = median(errs.map((e) => Math.abs(e[k])));
  return out;
}

/** Replays `data` (every experiment, or `only`) and reports; deterministic for a seed. */
export async function runFidelity(
  data: FidelityData,
  options: FidelityOptions = {},
): Promise<FidelityReport> {
  const stages: FidelityReport['stages'][number][] = [];
  for (const e of data.experiments) {
    if (options.only !== undefined && !options.only.includes(e.id)) continue;
    const profile = options.profiles?.[e.profile];
    const results = await replayExperiment(data, e, {
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(profile !== undefined ? { profile } : {}),
    });
    options.onExperiment?.(e.id, results);
    for (const r of results) stages.push({ ...r, error: errors(r.sim, r.real) });
  }
  const measured = stages.filter((s) => Number.isFinite(s.real.e2e_mean));
  const names = [...new Set(measured.flatMap((s) => Object.keys(s.others)))].sort();
  const others = Object.fromEntries(
    names.map((name) => {
      const errs = measured.flatMap((s) => (s.others[name] ? [errors(s.others[name], s.real)] : []));
      return [name, { ...medians(errs), stages: errs.length }];
    }),
  );
  return {
    stages,
    medians: medians(measured.map((s) => s.error)),
    saturated: stages.filter((s) => s.saturated).map((s) => `${s.experiment}/${s.stage}`),
    others,
  };
}

const pct = (x: number): string =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : '–';
const ms = (x: number): string => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');
const abs = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');

/** Markdown: one row per experiment and stage (real / simulated / error), then the medians. */
export function formatFidelityReport(r: FidelityReport): string {
  const lines = [
    '| experiment | stage | rate | TTFT mean real / sim (err) | TTFT p90 | TTFT p99 | TPOT real / sim (err) | E2E mean | E2E p99 | saturated |',
    '|---|---:|---:|---|---|---|---|---|---|---|',
  ];
  const cell = (s: FidelityReport['stages'][number], k: (typeof METRIC_KEYS)[number]) =>
    `${ms(s.real[k])} / ${ms(s.sim[k])} (${pct(s.error[k])})`;
  for (const s of r.stages) {
    lines.push(
      `| ${s.experiment} | ${s.stage} | ${s.rate} | ${cell(s, 'ttft_mean')} | ${cell(s, 'ttft_p90')} | ${cell(s, 'ttft_p99')} | ${cell(s, 'tpot')} | ${cell(s, 'e2e_mean')} | ${cell(s, 'e2e_p99')} | ${s.saturated ? '**yes**' : ''} |`,
    );
  }
  lines.push(
    '',
    '| median absolute error | stages | TTFT mean | TTFT p99 | TPOT | E2E mean | E2E p99 |',
    '|---|---:|---:|---:|---:|---:|---:|',
    `| **this engine model** | ${r.stages.filter((s) => Number.isFinite(s.real.e2e_mean)).length} | ${MEDIAN_KEYS.map((k) => `**${abs(r.medians[k])}**`).join(' | ')} |`,
  );
  for (const [name, m] of Object.entries(r.others)) {
    lines.push(`| ${name} | ${m.stages} | ${MEDIAN_KEYS.map((k) => abs(m[k])).join(' | ')} |`);
  }
  lines.push(
    '',
    `Saturated stages (the model could not serve them in time): ${r.saturated.length === 0 ? 'none' : r.saturated.join(', ')}.`,
  );
  return lines.join('\n');
}

/** The JSON written by `--json`: every stage, and at the top level `medians` and `saturated`. */
export function fidelityJson(r: FidelityReport): unknown {
  return { medians: r.medians, saturated: r.saturated, others: r.others, stages: r.stages };
}
