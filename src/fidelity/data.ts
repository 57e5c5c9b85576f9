/**
 * @module fidelity/data
 * A directory of real engine measurements, laid out as `fidelity/` in this repository: an
 * `experiments.json` (each experiment's engine settings and workload template) and a
 * `real_metrics.json` (measured latencies per stage, and other simulators' predictions of them).
 * Read and validated strictly, so that a directory we have never seen either replays unchanged or
 * fails with an error that names the file and the key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** inference-perf's `shared_prefix` template with its load stages. */
const workloadSchema = z.object({
  /** Distinct system prompts (`num_unique_system_prompts`). */
  groups: z.number().int().positive(),
  /** Users (prompts) per system prompt (`num_users_per_system_prompt`); the campaigns used 5. */
  users: z.number().int().positive().default(5),
  /** System prompt tokens. */
  sys: z.number().int().nonnegative(),
  /** Question tokens. */
  q: z.number().int().nonnegative(),
  /** Output tokens, exact (`ignore_eos`). */
  out: z.number().int().positive(),
  /** [rate req/s, duration s], in order. */
  stages: z.array(z.tuple([z.number().positive(), z.number().positive()])).min(1),
});

const experimentSchema = z.object({
  id: z.string().min(1),
  /** The engine profile that matches the experiment's model and GPU. */
  profile: z.string().min(1),
  /** A key of `workloads`. */
  workload: z.string().min(1),
  /** `max_num_batched_tokens`. */
  mbt: z.number().int().positive(),
  /** `max_num_seqs`. */
  seqs: z.number().int().positive(),
  /** The server's KV-cache blocks (of the profile's block size), where the source gives it. */
  kvBlocks: z.number().int().positive().optional(),
  /** `max_model_len`, where it differs from the profile's. */
  maxModelLen: z.number().int().positive().optional(),
  note: z.string().optional(),
});

const stageMetricsSchema = z.object({
  ttft_mean: z.number(),
  ttft_p90: z.number(),
  ttft_p99: z.number(),
  e2e_mean: z.number(),
  e2e_p90: z.number().optional(),
  e2e_p99: z.number(),
  itl_mean: z.number().optional(),
});

/** Another simulator's prediction: some give means only (a missing figure is not compared). */
const predictedMetricsSchema = stageMetricsSchema.partial().required({ ttft_mean: true, e2e_mean: true });

const realMetricsSchema = z.record(
  z.string(),
  z.object({
    real: z.record(z.string(), stageMetricsSchema),
    others: z.record(z.string(), z.record(z.string(), predictedMetricsSchema)).default({}),
  }),
);

const experimentsFileSchema = z.object({
  experiments: z.array(experimentSchema).min(1),
  workloads: z.record(z.string(), workloadSchema),
});

export type FidelityWorkload = z.infer<typeof workloadSchema>;
export type FidelityExperiment = z.infer<typeof experimentSchema>;
/** Latencies of one stage, ms. */
export type StageMetrics = z.infer<typeof stageMetricsSchema>;
export type PredictedMetrics = z.infer<typeof predictedMetricsSchema>;

export interface FidelityData {
  readonly dir: string;
  readonly experiments: readonly FidelityExperiment[];
  readonly workloads: Readonly<Record<string, FidelityWorkload>>;
  /** Per experiment id: measured metrics by stage ("0", "1", …; "-1" the whole run) and other simulators'. */
  readonly metrics: Readonly<Record<string, z.infer<typeof realMetricsSchema>[string]>>;
}

/** A fidelity directory that cannot be read as one. */
export class FidelityDataError extends Error {}

function readJson<T>(dir: string, file: string, schema: z.ZodType<T>): T {
  const path = join(dir, file);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new FidelityDataError(`${path}: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FidelityDataError(`${path}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Reads and checks `dir`: every experiment names a known workload and has measured metrics. */
export function loadFidelityData(dir: string): FidelityData {
  const { experiments, workloads } = readJson(dir, 'experiments.json', experimentsFileSchema);
  const metrics = readJson(dir, 'real_metrics.json', realMetricsSchema);
  for (const [i, e] of experiments.entries()) {
    const at = `${join(dir, 'experiments.json')}: experiments.${i}`;
    if (workloads[e.workload] === undefined)
      throw new FidelityDataError(`${at}.workload: unknown workload '${e.workload}'`);
    if (metrics[e.id] === undefined)
      throw new FidelityDataError(`${at}: no measured metrics for '${e.id}' in real_metrics.json`);
  }
  return { dir, experiments, workloads, metrics };
}
