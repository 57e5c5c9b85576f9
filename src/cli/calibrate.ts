/**
 * @module cli/calibrate
 * `switchyard calibrate`: probes a live OpenAI-compatible engine for a couple of minutes, fits the
 * step-time constants of an engine profile, and writes the profile as YAML for a config's
 * `profileFiles`, `switchyard sim --profile-file` and `switchyard engine --profile-file`.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type ConstantName,
  type StepTimeConstants,
  type StepTimeFit,
  fitStepTime,
} from '../calibrate/fit.js';
import { ProbeError } from '../calibrate/client.js';
import { type ProbeResult, probe } from '../calibrate/probe.js';
import { samplesFromBatches } from '../calibrate/samples.js';
import { formatProfileYaml } from '../engine-model/profile-file.js';
import { ENGINE_PROFILES } from '../engine-model/profiles.js';
import type { EngineProfile } from '../engine-model/types.js';
import { UsageError, numOpt, positiveIntOpt } from './sim-options.js';

export const CALIBRATE_HELP = `Usage: switchyard calibrate --url URL --model NAME --out FILE [options]

Probes a live OpenAI-compatible engine (vLLM, SGLang, the emulated engine) and fits the step-time
constants of an engine profile (docs/engine-model.md): a prompt-length sweep at concurrency 1
(time to first token) and a decode sweep over batch sizes and context lengths (inter-token times),
all streamed, with POST /v1/completions, max_tokens with ignore_eos, and
stream_options.include_usage. The engine must serve nothing else meanwhile. The profile is written
as YAML, with each constant's standard error and where every other value came from.

Options:
  --url URL                   the engine's base URL with its API prefix, e.g. http://10.0.0.5:8000/v1
  --model NAME                the served model name (as /v1/models lists it)
  --out FILE                  where to write the profile
  --name NAME                 the profile's name (default: the model's last path segment + "-calibrated")
  --api-key KEY               bearer token for the engine
  --max-seconds N             wall-clock budget of the probe (default 120)
  --max-concurrency N         requests in flight at most: the largest decode batch (default 64, and
                              never more than --max-num-seqs)
  --decode-tokens N           tokens each decode request streams (default 64)
  --gpu LABEL                 accelerator label for the profile (default "unknown")
  --tp N                      tensor-parallel degree for the profile (default 1); its all-reduce cost
                              cannot be told apart from T0 and b by timing, so it is folded into them

Not probed (a probe cannot find them cheaply; give the engine's values):
  --max-num-batched-tokens N  max_num_batched_tokens (default 8192, vLLM V1 on ≥70 GiB GPUs other than
                              A100; 2048 on A100); also the chunk size the fit assumes for long prompts
  --max-num-seqs N            max_num_seqs (default 1024; 256 on A100)
  --kv-tokens N               KV cache size in tokens (default: vLLM's vllm:cache_config_info on
                              /metrics; vLLM logs it at start as "GPU KV cache size")
  --block-size N              KV block size (default: /metrics, else 16)
  --max-model-len N           max_model_len (default: the model card of /v1/models)
  --cold-start-ms N           time from start to ready (default 20000)
  --cost-per-hour USD         hourly price of the replica (default 0)
  -h, --help                  this help
`;

const OPTIONS = {
  url: { type: 'string' },
  model: { type: 'string' },
  out: { type: 'string' },
  name: { type: 'string' },
  'api-key': { type: 'string' },
  'max-seconds': { type: 'string' },
  'max-concurrency': { type: 'string' },
  'decode-tokens': { type: 'string' },
  gpu: { type: 'string' },
  tp: { type: 'string' },
  'max-num-batched-tokens': { type: 'string' },
  'max-num-seqs': { type: 'string' },
  'kv-tokens': { type: 'string' },
  'block-size': { type: 'string' },
  'max-model-len': { type: 'string' },
  'cold-start-ms': { type: 'string' },
  'cost-per-hour': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

export async function calibrate(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS });
  if (values.help) {
    process.stdout.write(CALIBRATE_HELP);
    return 0;
  }
  const { url, model, out } = values;
  if (url === undefined || model === undefined || out === undefined) {
    process.stderr.write(`--url, --model and --out are required\n\n${CALIBRATE_HELP}`);
    return 2;
  }
  const name = values.name ?? defaultName(model);
  if (name in ENGINE_PROFILES) throw new UsageError(`--name: '${name}' is a shipped profile; choose another`);
  const budget = positiveIntOpt(values['max-num-batched-tokens'], 'max-num-batched-tokens') ?? 8192;
  const log = (line: string) => process.stderr.write(`calibrate: ${line}\n`);
  const maxModelLen = positiveIntOpt(values['max-model-len'], 'max-model-len');
  const kvTokens = positiveIntOpt(values['kv-tokens'], 'kv-tokens');
  const decodeTokens = positiveIntOpt(values['decode-tokens'], 'decode-tokens');
  const maxSeconds = numOpt(values['max-seconds'], 'max-seconds') ?? 120;
  // More requests in flight than max_num_seqs would queue in the engine and leave no pure-decode window.
  const maxConcurrency = Math.min(
    positiveIntOpt(values['max-concurrency'], 'max-concurrency') ?? 64,
    positiveIntOpt(values['max-num-seqs'], 'max-num-seqs') ?? 1024,
  );
  log(`probing ${url} (model ${model}) for up to ${maxSeconds} s`);
  let result: ProbeResult;
  try {
    result = await probe({
      baseUrl: url,
      model,
      ...(values['api-key'] !== undefined ? { apiKey: values['api-key'] } : {}),
      maxSeconds,
      maxConcurrency,
      maxNumBatchedTokens: budget,
      ...(maxModelLen !== undefined ? { maxModelLen } : {}),
      ...(kvTokens !== undefined ? { kvTokens } : {}),
      ...(decodeTokens !== undefined ? { decodeTokens } : {}),
      log,
    });
  } catch (err) {
    if (err instanceof ProbeError) throw new UsageError(err.message);
    throw err;
  }
  const samples = samplesFromBatches(result.batches, { roundTripMs: result.roundTripMs });
  const fit = fitStepTime(samples, { maxNumBatchedTokens: budget });
  const profile = assemble(values, name, model, budget, result, fit.constants);
  writeFileSync(out, formatProfileYaml(profile, header(url, result, fit), notes(values, result, fit)));
  process.stdout.write(summary(profile, fit, out));
  return 0;
}

/** `meta-llama/Llama-3.1-8B-Instruct` → `llama-3.1-8b-instruct-calibrated`. */
function defaultName(model: string): string {
  const last = model.split('/').filter(Boolean).at(-1) ?? 'engine';
  return `${last.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}-calibrated`;
}

/** The profile: fitted constants, the engine's own facts, and the flags for what was not probed. */
function assemble(
  v: Values,
  name: string,
  model: string,
  budget: number,
  r: ProbeResult,
  c: StepTimeConstants,
): EngineProfile {
  const blockSize = positiveIntOpt(v['block-size'], 'block-size') ?? r.facts.blockSize ?? 16;
  const kvTokens = positiveIntOpt(v['kv-tokens'], 'kv-tokens');
  const numKvBlocks =
    kvTokens !== undefined ? Math.floor(kvTokens / blockSize) : (r.facts.numGpuBlocks ?? undefined);
  if (numKvBlocks === undefined || numKvBlocks < 1)
    throw new UsageError('the engine does not report its KV cache size on /metrics: give --kv-tokens');
  const maxModelLen = positiveIntOpt(v['max-model-len'], 'max-model-len') ?? r.facts.maxModelLen;
  if (maxModelLen === undefined)
    throw new UsageError('the model card has no max_model_len: give --max-model-len');
  return {
    name,
    model,
    gpu: v.gpu ?? 'unknown',
    tp: positiveIntOpt(v.tp, 'tp') ?? 1,
    ...c,
    tpCommMs: 0,
    tpCommMsPer1kTokens: 0,
    maxNumSeqs: positiveIntOpt(v['max-num-seqs'], 'max-num-seqs') ?? 1024,
    maxNumBatchedTokens: budget,
    blockSize,
    numKvBlocks,
    maxModelLen,
    coldStartMs: numOpt(v['cold-start-ms'], 'cold-start-ms') ?? 20_000,
    costPerHourUsd: numOpt(v['cost-per-hour'], 'cost-per-hour') ?? 0,
  };
}

const SYMBOL: Record<ConstantName, string> = {
  weightsMs: 'W',
  gemmMsPer1kTokens: 'b',
  prefillAttnMsPerMPairs: 'C_pf',
  decodeAttnMsPer1kCtx: 'C_dec',
  stepOverheadMs: 'T0',
  perRequestMs: 't_req',
  requestOverheadMs: 'R',
};

/** `value ± se` at a sensible precision. */
function withError(value: number, se: number): string {
  const v = Number(value.toPrecision(4));
  return Number.isFinite(se)
    ? `${v} ± ${Number(se.toPrecision(2))}`
    : `${v} (at its bound, or not identified)`;
}

function header(url: string, r: ProbeResult, fit: StepTimeFit): string[] {
  const c = fit.constants;
  return [
    `Engine profile fitted by \`switchyard calibrate\` against ${url}`,
    `on ${new Date().toISOString()}: ${r.requests} requests in ${(r.elapsedMs / 1000).toFixed(0)} s.`,
    'step_ms = T0 + t_req·B + T_lin(N) + C_pf·Σ n(c + n/2)/1e6 + C_dec·Σ ctx/1e3,',
    'T_lin(N) = (W^1.5 + (b·N/1000)^1.5)^(2/3); R delays each request before the queue (docs/engine-model.md).',
    `Fit: ${fit.used.ttft} prompt lengths (the fastest try of each; rms residual ${fit.rmsMs.ttft.toFixed(2)} ms), ` +
      `${fit.used.decode} decode windows (rms ${fit.rmsMs.decode.toFixed(3)} ms/step), ${fit.used.outliers} outliers left out.`,
    `Decode steps pin T0 + W = ${withError(c.stepOverheadMs + c.weightsMs, fit.overheadPlusWeightsStdErr)} ms;`,
    'W alone shows only in how prefill time bends around N ≈ 1000·W/b tokens, so T0 and W are less',
    'certain one by one than their sum (see the ± of each).',
    `R includes what the client sees besides the engine's steps, less the ${r.roundTripMs.toFixed(2)} ms round trip of GET /models.`,
  ];
}

function notes(v: Values, r: ProbeResult, fit: StepTimeFit): Partial<Record<keyof EngineProfile, string>> {
  const fitted = Object.fromEntries(
    (Object.keys(SYMBOL) as ConstantName[]).map((k) => [
      k,
      `${SYMBOL[k]}: fitted, ${withError(fit.constants[k], fit.stdErr[k])}`,
    ]),
  );
  const from = (flag: string, fact: unknown, what: string): string =>
    v[flag as keyof Values] !== undefined ? `--${flag}` : fact !== undefined ? what : `default of --${flag}`;
  return {
    ...fitted,
    gpu: v.gpu !== undefined ? '--gpu' : 'not probed: set --gpu',
    tp: 'all-reduce folded into T0 and b (timing cannot separate them)',
    tpCommMs: 'folded into T0',
    tpCommMsPer1kTokens: 'folded into b',
    maxNumSeqs: `not probed: ${from('max-num-seqs', undefined, '')} (vLLM V1: 1024, 256 on A100)`,
    maxNumBatchedTokens: `not probed: ${from('max-num-batched-tokens', undefined, '')} (vLLM V1: 8192, 2048 on A100)`,
    blockSize: from('block-size', r.facts.blockSize, 'vllm:cache_config_info on /metrics'),
    numKvBlocks: from('kv-tokens', r.facts.numGpuBlocks, 'vllm:cache_config_info on /metrics'),
    maxModelLen: from('max-model-len', r.facts.maxModelLen, 'the model card of /v1/models'),
    coldStartMs: `not probed: ${from('cold-start-ms', undefined, '')}`,
    costPerHourUsd: `not probed: ${from('cost-per-hour', undefined, '')}`,
  };
}

function summary(p: EngineProfile, fit: StepTimeFit, out: string): string {
  const rows = (Object.keys(SYMBOL) as ConstantName[]).map(
    (k) => `  ${SYMBOL[k].padEnd(6)} ${k.padEnd(24)} ${withError(fit.constants[k], fit.stdErr[k])}`,
  );
  return `profile ${p.name} written to ${out}\n${rows.join('\n')}\n  T0 + W ${' '.repeat(25)}${withError(
    p.stepOverheadMs + p.weightsMs,
    fit.overheadPlusWeightsStdErr,
  )}\n`;
}
