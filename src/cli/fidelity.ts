/**
 * @module cli/fidelity
 * `switchyard fidelity --data DIR [--json FILE]`: replays every measured experiment of DIR through
 * the simulator and prints real against simulated latencies per stage, then the median errors of
 * the engine model and of every other simulator in the data.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadFidelityData } from '../fidelity/data.js';
import { fidelityJson, formatFidelityReport, runFidelity } from '../fidelity/report.js';
import { UsageError, intOpt } from './sim-options.js';

export const FIDELITY_HELP = `Usage: switchyard fidelity --data DIR [--json FILE] [--only ID,ID] [--seed N]

Replays every experiment in DIR (experiments.json + real_metrics.json, laid out as the repository's
fidelity/ folder: real vLLM measurements) through the simulator: one replica of the experiment's
engine profile with its max_num_batched_tokens, max_num_seqs and KV blocks, under the workload
inference-perf generated (shared-prefix groups, multi-turn users, constant-rate stages). Prints,
per experiment and stage, real vs simulated TTFT (mean, p90, p99), TPOT and E2E (mean, p99) with
signed errors, then the median absolute errors, for this model and for each other simulator whose
predictions the data carries.

Options:
  --data DIR      the measurements (e.g. fidelity/ in this repository)
  --json FILE     also write every figure as JSON; its top level has "medians" (median absolute
                  relative error: ttft_mean, ttft_p99, tpot, e2e_mean, e2e_p99; 0.1 = 10 %) and
                  "saturated" (the experiment/stage ids the model could not serve in time)
  --only ID,ID    replay only these experiments
  --seed N        workload seed (default 1)
  -h, --help      this help
`;

export async function fidelity(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string' },
      json: { type: 'string' },
      only: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(FIDELITY_HELP);
    return 0;
  }
  if (values.data === undefined) {
    process.stderr.write(`--data is required\n\n${FIDELITY_HELP}`);
    return 2;
  }
  const seed = intOpt(values.seed, 'seed') ?? 1; // as `switchyard sim` reads it
  const data = loadFidelityData(values.data);
  const only = values.only?.split(',').map((s) => s.trim());
  for (const id of only ?? [])
    if (!data.experiments.some((e) => e.id === id))
      throw new UsageError(`--only: no experiment '${id}' in ${values.data}`);
  const started = performance.now();
  const report = await runFidelity(data, {
    seed,
    ...(only ? { only } : {}),
    onExperiment: (id) =>
      process.stderr.write(`replayed ${id} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`),
  });
  process.stdout.write(`${formatFidelityReport(report)}\n`);
  if (values.json !== undefined)
    writeFileSync(values.json, `${JSON.stringify(fidelityJson(report), null, 2)}\n`);
  return 0;
}
