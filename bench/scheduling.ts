/**
 * @module bench/scheduling
 * `npm run bench:scheduling`: the gateway's admission queue (scheduler/pool-scheduler.ts, driven by
 * the simulator through the same hooks the gateway implements), each order side by side on the
 * shipped Azure traces, and the output-length predictor on every shipped per-request trace. Writes
 * the results into docs/scheduling.md between markers.
 *
 *   a. Serial backend at ρ ≈ 0.9: `qwen2.5-1.5b-h100` replicas that take one request at a time
 *      (endpoint concurrency 1) — the code trace on 1 replica, the conversation trace on 2. ρ =
 *      λ · E[S] / replicas, where E[S] is the mean of each request's service time alone on an idle
 *      replica, measured by running it through the engine model on its own virtual clock; the rate
 *      scale is set so that ρ = 0.9 over the window. "Short" = the half of the requests with the
 *      shortest idle service time (≤ the median), "long" = the rest. FCFS, SJF on the online
 *      predictor's estimate, and SJF on the true output length (an oracle, for reference only).
 *      Queue bounds are set so that nothing is dropped (100 000 places, 1 h); SJF's starvation guard
 *      is the default (an item waiting 60 s goes before younger ones).
 *   b. Batching engines at 1.2× the SLO capacity: 2 × `qwen2.5-7b-h100`, each gated at GATE
 *      requests in flight. The interactive-only SLO capacity C (≥ 99 % of requests with TTFT ≤ 5×
 *      their idle TTFT, sim/capacity.ts, FCFS queue) of the conversation trace's first 20 minutes is
 *      found first; then interactive traffic at 0.8 C plus batch traffic at 0.4 C (the next requests
 *      of the same trace, marked `batch`) over the same span. Gateway default bounds (1 024 places;
 *      30 s, batch 300 s).
 *   c. Two-tenant flood on the same fleet: tenant B sends the trace's first 450 s at 0.4 C, tenant A
 *      the following requests at 3 C over the same span. B alone (FCFS), then both under FCFS and
 *      VTC. Gateway default bounds, and a longer queue.
 *   d. Predictor: Kendall's tau-b and pairwise accuracy of predicted vs actual output length,
 *      predicting each request of a trace and then learning from it, in trace order (a gateway knows
 *      prompt tokens, tenant and model; these traces have no text, no max_tokens and no sessions); and
 *      its cost, µs per predict + learn, timed over the whole trace.
 *
 * Each simulation runs in a child process, BENCH_SCHED_JOBS at a time (default: the CPU count).
 * Env: BENCH_SCHED_JOBS, BENCH_SCHED_MISMATCH (0; e.g. 0.3: engines off their profiles by up to ±30 %), BENCH_DOCS (docs/scheduling.md; 0 = do not write), BENCH_JSON (a path for
 * the raw results).
 */
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtualClock } from '../src/core/virtual-clock.js';
import { EngineModel } from '../src/engine-model/engine-model.js';
import { getProfile } from '../src/engine-model/profiles.js';
import type { EngineProfile } from '../src/engine-model/types.js';
import type { EndpointGate } from '../src/framework/endpoint.js';
import { routingSpec } from '../src/router/presets.js';
import {
  OutputLengthPredictor,
  type PredictorFeatures,
  kendallTau,
  type PredictorOptions,
  pairwiseAccuracy,
  spearmanRho,
} from '../src/scheduler/predictor.js';
import type { QueueBounds } from '../src/scheduler/types.js';
import { type CapacityResult, capacitySearch } from '../src/sim/capacity.js';
import { LogHistogram } from '../src/sim/log-histogram.js';
import { type MismatchSpec, perturbProfile } from '../src/sim/mismatch.js';
import {
  type GroupSummary,
  type SimOptions,
  type SimSchedulingOptions,
  type SimSummary,
  Simulation,
} from '../src/sim/simulator.js';
import { routingBlockHashes } from '../src/traces/block-hashes.js';
import { openRequestTrace } from '../src/traces/loaders.js';
import type { TraceRecord } from '../src/traces/record.js';
import { type Tagging, merge, reshape, tag } from '../src/traces/transform.js';
import { benchEntry, runChild, runLimited } from './child.js';
import { writeGeneratedSection } from './docs.js';
import { REPO, TRACES_DIR, describeMachine, envNum } from './env.js';

const SELF = fileURLToPath(import.meta.url);
const CONV = join(TRACES_DIR, 'AzureLLMInferenceTrace_conv.csv');
const CODE = join(TRACES_DIR, 'AzureLLMInferenceTrace_code.csv');
const MOONCAKE_CONV = join(TRACES_DIR, 'mooncake_conversation_0-30min.jsonl');

/** Scenario a: each trace's window and replicas. */
const SERIAL_PROFILE = 'qwen2.5-1.5b-h100';
/** Mooncake's prompts run to 125k tokens, 8 % of them past qwen2.5's 32k context. */
const LONG_CONTEXT_PROFILE = 'llama3.1-8b-h100';
const SERIAL = [
  { name: 'Azure code', file: CODE, window: { startS: 0, endS: 1800 }, replicas: 1, profile: SERIAL_PROFILE },
  {
    name: 'Azure conversation',
    file: CONV,
    window: { startS: 0, endS: 1200 },
    replicas: 2,
    profile: SERIAL_PROFILE,
  },
  {
    name: 'Mooncake conversation',
    file: MOONCAKE_CONV,
    window: { startS: 0, endS: 1800 },
    replicas: 2,
    profile: LONG_CONTEXT_PROFILE,
  },
] as const;
const SERIAL_RHO = 0.9;
/** SJF's default job size: prompt + 16 × output tokens (SchedulerOptions.sjfOutputWeight). */
const SJF_OUTPUT_WEIGHT = 16;
const SERIAL_ORDERS = [
  'fcfs',
  'sjf-no-family',
  'sjf',
  'sjf-guard-20s',
  'sjf-oracle',
  'sjf-fit-no-family',
  'sjf-fit',
  'sjf-fit-guard-120s',
  'sjf-fit-oracle',
] as const;
type SerialOrder = (typeof SERIAL_ORDERS)[number];
const SERIAL_LABELS: Record<SerialOrder, string> = {
  fcfs: 'FCFS',
  'sjf-no-family': 'SJF, predicted without prefix families (before)',
  sjf: 'SJF, predicted',
  'sjf-guard-20s': 'SJF, predicted, starvation guard 20 s',
  'sjf-oracle': 'SJF, true sizes (oracle, reference only)',
  'sjf-fit-no-family': 'SJF ×w, predicted without prefix families (before)',
  'sjf-fit': 'SJF ×w, predicted',
  'sjf-fit-guard-120s': 'SJF ×w, predicted, starvation guard 120 s',
  'sjf-fit-oracle': 'SJF ×w, true sizes (oracle, reference only)',
};
/** The predictor as it was before prefix families ("before" rows). */
const NO_FAMILIES: PredictorOptions = { families: 0 };
/** Large enough that nothing is dropped: scenario a compares orders, not bounds. */
const SERIAL_BOUNDS: QueueBounds = { maxLength: 100_000, maxWaitMs: 3_600_000 };

/** Scenarios b and c: the batching fleet. */
const BATCH_PROFILE = 'qwen2.5-7b-h100';
const BATCH_REPLICAS = 2;
/** A replica's capacity gate in scenarios b and c. */
interface Gate {
  readonly label: string;
  readonly maxConcurrency: number;
  /** The engine's waiting queue from its metrics: at or above it the replica takes nothing new. */
  readonly maxEngineWaiting?: number;
  /** This gateway's requests still prefilling there (its own ledger, fresh): at or above it the replica takes nothing new. */
  readonly maxPrefilling?: number;
}

/**
 * Gates compared: one where the concurrency gate binds near the SLO capacity, the gateway's default
 * (which never binds: the engines queue everything), and that default plus a gate on the engine's
 * own waiting queue, so work waits in the gateway, where priorities and fairness apply; and that
 * default plus a gate on the gateway's own count of requests still prefilling on the replica, which
 * is fresh at every decision where the engine's waiting queue is only as fresh as the last scrape.
 */
const GATES: readonly Gate[] = [
  { label: '32', maxConcurrency: 32 },
  { label: '256', maxConcurrency: 256 },
  { label: '256, engine waiting < 1', maxConcurrency: 256, maxEngineWaiting: 1 },
  { label: '256, prefilling < 1', maxConcurrency: 256, maxPrefilling: 1 },
];
const INTERACTIVE = { startS: 0, endS: 1200 };
/** Scenario b: shares of C (interactive + batch = 1.2). */
const INTERACTIVE_SHARE = 0.8;
const BATCH_SHARE = 0.4;
/** Scenario c: B's window, B's and A's rates as multiples of C. */
const TENANT_B = { startS: 0, endS: 450 };
const B_SHARE = 0.4;
const A_MULTIPLE = 3;
const LONG_QUEUE = 4096;

/** The gateway config's default bounds (config/schema.ts `scheduling`): 1 024 places, 30 s, batch 300 s. */
const DEFAULT_BOUNDS = gatewayBounds(1024);

const PREDICTOR_TRACES = [
  { name: 'Azure conversation', file: CONV },
  { name: 'Azure code', file: CODE },
  { name: 'Mooncake conversation', file: MOONCAKE_CONV },
  { name: 'Mooncake synthetic', file: join(TRACES_DIR, 'mooncake_synthetic_trace.jsonl') },
] as const;

const CFG = {
  jobs: envNum('BENCH_SCHED_JOBS', os.availableParallelism()),
  docs: process.env.BENCH_DOCS === '0' ? null : join(REPO, 'docs', 'scheduling.md'),
  json: process.env.BENCH_JSON ?? null,
  /** Every replica's step-time constants off its profile by up to ± this (0: engines match). */
  mismatch: envNum('BENCH_SCHED_MISMATCH', 0),
};

const MISMATCH: MismatchSpec = { scale: CFG.mismatch, seed: 1 };

/** `opts` with the engines off their profiles when BENCH_SCHED_MISMATCH is set. */
function withMismatch(opts: SimOptions): SimOptions {
  return CFG.mismatch > 0 ? { ...opts, mismatch: MISMATCH } : opts;
}

function gatewayBounds(maxLength: number): QueueBounds {
  const interactive = { maxWaitMs: 30_000 };
  return {
    maxLength,
    maxWaitMs: 300_000,
    perClass: { high: interactive, normal: interactive, low: interactive, batch: { maxWaitMs: 300_000 } },
  };
}

// ------------------------------------------------------------------------------------------ child jobs

type MixedVariant = 'fcfs, batch unmarked' | 'fcfs' | 'priority' | 'priority, headroom 0.5';
const MIXED_VARIANTS: readonly MixedVariant[] = [
  'fcfs, batch unmarked',
  'fcfs',
  'priority',
  'priority, headroom 0.5',
];
type TenantMode = 'B alone' | 'fcfs' | 'vtc';

type Job =
  | { kind: 'calibrate'; trace: number }
  | {
      kind: 'serial';
      trace: number;
      order: SerialOrder;
      rateScale: number;
      medianServiceMs: number;
      outputWeight: number;
    }
  | { kind: 'capacity'; gate: number }
  | { kind: 'mixed'; gate: number; capacityScale: number; variant: MixedVariant }
  | { kind: 'tenants'; gate: number; capacityRps: number; mode: TenantMode; maxLength: number }
  | { kind: 'predictor'; trace: number };

interface Calibration {
  readonly requests: number;
  readonly ratePerS: number;
  readonly meanServiceMs: number;
  readonly medianServiceMs: number;
  /**
   * The mean service time that sets the rate for ρ: `meanServiceMs` when the engines match their
   * profile; under mismatch, replicas ÷ Σ 1/E[S_i] over the replicas' true engines (each replica
   * serves 1/E[S_i] requests per ms when busy), so that ρ is the true load.
   */
  readonly loadServiceMs: number;
  /**
   * The backend's output weight w: ms per output token ÷ ms per prompt token on an idle replica,
   * at the window's median prompt and output (the "SJF ×w" rows rank by prompt + w × output).
   */
  readonly outputWeight: number;
  /**
   * Kendall tau of SJF's job size against idle service time: predicted in trace order (without
   * prefix families, and with them), and with true sizes.
   */
  readonly sizeTauNoFamily: number;
  readonly sizeTauPredicted: number;
  readonly sizeTauTrue: number;
  /** Spearman's rho of the predicted against the true output length, without prefix families and with them. */
  readonly rhoNoFamily: number;
  readonly rho: number;
}

interface SerialResult {
  readonly order: SerialOrder;
  readonly shortP50Ms: number;
  readonly longP99Ms: number;
  readonly e2eMeanMs: number;
  readonly completed: number;
  readonly dropped: number;
  /** Replica busy time ÷ replica time over the run. */
  readonly busyShare: number;
}

interface MixedResult {
  readonly variant: MixedVariant;
  readonly interactive: GroupSummary;
  /** The batch traffic, told apart by its tenant (unmarked, it shares the `normal` class). */
  readonly batch: GroupSummary;
  readonly dropped: Readonly<Record<string, number>>;
  readonly throughputRps: number;
  readonly offeredRps: number;
}

interface TenantResult {
  readonly mode: TenantMode;
  readonly maxLength: number;
  readonly b: GroupSummary;
  readonly a: GroupSummary | null;
  /** A's, and everyone's, completions per simulated second. */
  readonly aThroughputRps: number;
  readonly throughputRps: number;
  readonly durationS: number;
  readonly dropped: Readonly<Record<string, number>>;
}

interface PredictorResult {
  readonly requests: number;
  /** Kendall tau without prefix families (before they were a feature). */
  readonly tauNoFamily: number;
  readonly tau: number;
  /** Spearman's rho, with prefix families. */
  readonly rho: number;
  readonly pairwiseAccuracy: number;
  /** Tau of the prompt length alone, the ranking a predictor must beat. */
  readonly promptTau: number;
  readonly usPerRequest: number;
}

async function runJob(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'calibrate':
      return calibrate(job.trace);
    case 'serial':
      return serial(job);
    case 'capacity':
      return capacitySearch(
        async (k) => simulate(batchFleet(job.gate, 'fcfs', DEFAULT_BOUNDS), await interactive(k)),
        { target: 0.99, start: 1, iterations: 7 },
      );
    case 'mixed':
      return mixed(job);
    case 'tenants':
      return tenants(job);
    case 'predictor':
      return predictor(job.trace);
  }
}

function simulate(opts: SimOptions, records: AsyncIterable<TraceRecord>): Promise<SimSummary> {
  return new Simulation(withMismatch(opts)).run(records);
}

async function window(
  file: string,
  w: { startS: number; endS: number },
  rateScale: number,
  tags: Tagging = {},
): Promise<AsyncIterable<TraceRecord>> {
  return tag(reshape((await openRequestTrace(file)).records, { window: w, rateScale }), tags);
}

/** Seconds into `file` at which its `count`-th request from `startS` arrives: [startS, that) holds `count`. */
async function endAfter(file: string, startS: number, count: number): Promise<number> {
  let i = 0;
  for await (const r of (await openRequestTrace(file)).records) {
    if (r.arrivalMs < startS * 1000) continue;
    if (i++ === count) return r.arrivalMs / 1000;
  }
  throw new Error(`${file} has fewer than ${count} requests after ${startS} s`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

async function countIn(file: string, w: { startS: number; endS: number }): Promise<number> {
  let n = 0;
  for await (const _ of await window(file, w, 1)) n++;
  return n;
}

// ------------------------------------------------------------------------------------------ a. serial

/** Each request's service time alone on an idle replica, from the engine model on its own clock. */
class IdleService {
  private readonly clock = new VirtualClock();
  private readonly engine: EngineModel;
  private n = 0;

  constructor(profile: EngineProfile) {
    this.engine = new EngineModel(profile, this.clock);
  }

  ms(promptTokens: number, outputTokens: number): number {
    const start = this.clock.now();
    let end = Number.NaN;
    const req = {
      id: `s${this.n++}`,
      promptTokens: Math.max(1, promptTokens),
      outputTokens: Math.max(1, outputTokens),
    };
    if (!this.engine.submit(req, { onFinish: (r) => (end = r.finishedMs) })) return Number.NaN;
    this.clock.runAll();
    return end - start;
  }
}

async function calibrate(trace: number): Promise<Calibration> {
  const t = SERIAL[trace]!;
  const idle = new IdleService(getProfile(t.profile));
  const service: number[] = [];
  const prompts: number[] = [];
  const outputs: number[] = [];
  const predicted: number[] = [];
  const predictedNoFamily: number[] = [];
  const predictor = new OutputLengthPredictor();
  const noFamily = new OutputLengthPredictor(NO_FAMILIES);
  // The replicas' true engines (the serial fleet's names are r0, r1, …), for the load under mismatch.
  const replicas = Array.from({ length: t.replicas }, (_, i) =>
    CFG.mismatch > 0 ? new IdleService(perturbProfile(getProfile(t.profile), `r${i}`, MISMATCH)) : null,
  );
  const trueService = replicas.map(() => 0);
  for await (const r of await window(t.file, t.window, 1)) {
    service.push(idle.ms(r.inputTokens, r.outputTokens));
    replicas.forEach((e, i) => {
      if (e !== null) trueService[i]! += e.ms(r.inputTokens, r.outputTokens);
    });
    outputs.push(Math.max(1, r.outputTokens));
    const f = features(r);
    prompts.push(f.promptTokens);
    predicted.push(predictor.predict(f));
    predictedNoFamily.push(noFamily.predict(f));
    predictor.learn(f, r.outputTokens);
    noFamily.learn(f, r.outputTokens);
  }
  if (service.some(Number.isNaN)) throw new Error(`${t.name}: a request does not fit ${t.profile}`);
  const size = (out: readonly number[]) => out.map((o, i) => prompts[i]! + SJF_OUTPUT_WEIGHT * o);
  const p = median(prompts);
  const o = Math.max(2, median(outputs));
  const prefillMs = idle.ms(p, 1);
  const outputWeight = (idle.ms(p, o) - prefillMs) / (o - 1) / (prefillMs / p);
  const sizeTauNoFamily = kendallTau(size(predictedNoFamily), service);
  const sizeTauPredicted = kendallTau(size(predicted), service);
  const sizeTauTrue = kendallTau(size(outputs), service);
  const rhoNoFamily = spearmanRho(predictedNoFamily, outputs);
  const rho = spearmanRho(predicted, outputs);
  service.sort((a, b) => a - b);
  const meanServiceMs = service.reduce((a, b) => a + b, 0) / service.length;
  const loadServiceMs =
    CFG.mismatch > 0
      ? t.replicas / trueService.reduce((sum, total) => sum + service.length / total, 0)
      : meanServiceMs;
  return {
    requests: service.length,
    ratePerS: service.length / (t.window.endS - t.window.startS),
    meanServiceMs,
    loadServiceMs,
    medianServiceMs: service[Math.floor((service.length - 1) / 2)]!,
    outputWeight,
    sizeTauNoFamily,
    sizeTauPredicted,
    sizeTauTrue,
    rhoNoFamily,
    rho,
  };
}

async function serial(job: Extract<Job, { kind: 'serial' }>): Promise<SerialResult> {
  const t = SERIAL[job.trace]!;
  const profile = getProfile(t.profile);
  const idle = new IdleService(profile);
  const short = new LogHistogram();
  const long = new LogHistogram();
  let busyMs = 0;
  const o = job.order;
  const scheduling: SimSchedulingOptions = {
    order: o === 'fcfs' ? 'fcfs' : 'sjf',
    oracleSizes: o.endsWith('oracle'),
    bounds: SERIAL_BOUNDS,
    ...(o.startsWith('sjf-fit') ? { sjfOutputWeight: job.outputWeight } : {}),
    ...(o === 'sjf-guard-20s' ? { sjfMaxAgeMs: 20_000 } : {}),
    ...(o === 'sjf-fit-guard-120s' ? { sjfMaxAgeMs: 120_000 } : {}),
    ...(o.endsWith('no-family') ? { predictor: NO_FAMILIES } : {}),
  };
  const sim = new Simulation(
    withMismatch({
      pools: [
        {
          name: 'm',
          endpoints: Array.from({ length: t.replicas }, (_, i) => ({
            name: `r${i}`,
            profile,
            maxConcurrency: 1,
          })),
        },
      ],
      routing: routingSpec('least-outstanding'),
      scheduling,
    }),
  );
  const s = await sim.run(await window(t.file, t.window, job.rateScale), (r) => {
    if (r.status !== 'ok') return;
    busyMs += r.e2e_ms - r.gateway_queue_ms;
    (idle.ms(r.input_tokens, r.output_tokens) <= job.medianServiceMs ? short : long).add(r.e2e_ms);
  });
  return {
    order: job.order,
    shortP50Ms: short.quantile(0.5),
    longP99Ms: long.quantile(0.99),
    e2eMeanMs: s.e2e_ms.mean,
    completed: s.completed,
    dropped: s.rejected,
    busyShare: busyMs / (t.replicas * s.duration_s * 1000),
  };
}

// ------------------------------------------------------------------------------------------ b, c. batching fleet

function batchFleet(
  /** Index into GATES. */
  gate: number,
  order: SimSchedulingOptions['order'],
  bounds: QueueBounds,
  headroom?: number,
): SimOptions {
  const profile = getProfile(BATCH_PROFILE);
  return {
    pools: [
      {
        name: 'm',
        endpoints: Array.from({ length: BATCH_REPLICAS }, (_, i) => ({
          name: `r${i}`,
          profile,
          maxConcurrency: GATES[gate]!.maxConcurrency,
          ...endpointGate(GATES[gate]!),
        })),
      },
    ],
    routing: routingSpec('default'),
    slo: { ttftScale: 5 },
    scheduling: { order, bounds, ...(headroom !== undefined ? { batchHeadroom: headroom } : {}) },
  };
}

/** The replica's gates beyond `maxConcurrency`, in the simulator's terms (absent: none). */
function endpointGate(g: Gate): { gate?: EndpointGate } {
  if (g.maxEngineWaiting === undefined && g.maxPrefilling === undefined) return {};
  return {
    gate: {
      maxEngineWaiting: g.maxEngineWaiting ?? null,
      maxKvUsage: null,
      ...(g.maxPrefilling !== undefined ? { maxPrefilling: g.maxPrefilling } : {}),
    },
  };
}

/** The interactive stream: the conversation trace's first 20 minutes at rate scale `k`. */
function interactive(k: number): Promise<AsyncIterable<TraceRecord>> {
  return window(CONV, INTERACTIVE, k, { tenant: 'interactive' });
}

async function mixed(job: Extract<Job, { kind: 'mixed' }>): Promise<MixedResult> {
  const ki = INTERACTIVE_SHARE * job.capacityScale;
  const spanS = (INTERACTIVE.endS - INTERACTIVE.startS) / ki;
  const capacityRps =
    ((await countIn(CONV, INTERACTIVE)) / (INTERACTIVE.endS - INTERACTIVE.startS)) * job.capacityScale;
  // Batch: the requests that follow the interactive window, as many as BATCH_SHARE × C over the same span.
  const n = Math.round(BATCH_SHARE * capacityRps * spanS);
  const endS = await endAfter(CONV, INTERACTIVE.endS, n);
  const kb = (endS - INTERACTIVE.endS) / spanS;
  const marked = job.variant !== 'fcfs, batch unmarked';
  const batch = await window(CONV, { startS: INTERACTIVE.endS, endS }, kb, {
    tenant: 'batch',
    ...(marked ? { priority: 'batch' as const } : {}),
  });
  const order = job.variant.startsWith('priority') ? 'priority' : 'fcfs';
  const headroom = job.variant === 'priority, headroom 0.5' ? 0.5 : undefined;
  const s = await simulate(
    batchFleet(job.gate, order, DEFAULT_BOUNDS, headroom),
    merge(await interactive(ki), batch),
  );
  return {
    variant: job.variant,
    interactive: s.by_tenant.interactive!,
    batch: s.by_tenant.batch!,
    dropped: s.scheduling?.dropped_by_reason ?? {},
    throughputRps: s.throughput_rps,
    offeredRps: s.arrival_rate_rps,
  };
}

async function tenants(job: Extract<Job, { kind: 'tenants' }>): Promise<TenantResult> {
  const rateB = (await countIn(CONV, TENANT_B)) / (TENANT_B.endS - TENANT_B.startS);
  const kB = (B_SHARE * job.capacityRps) / rateB;
  const spanS = (TENANT_B.endS - TENANT_B.startS) / kB;
  const b = await window(CONV, TENANT_B, kB, { tenant: 'B' });
  let records = b;
  if (job.mode !== 'B alone') {
    const n = Math.round(A_MULTIPLE * job.capacityRps * spanS);
    const endS = await endAfter(CONV, TENANT_B.endS, n);
    records = merge(
      b,
      await window(CONV, { startS: TENANT_B.endS, endS }, (endS - TENANT_B.endS) / spanS, { tenant: 'A' }),
    );
  }
  const order = job.mode === 'vtc' ? 'vtc' : 'fcfs';
  const s = await simulate(batchFleet(job.gate, order, gatewayBounds(job.maxLength)), records);
  const a = s.by_tenant.A ?? null;
  return {
    mode: job.mode,
    maxLength: job.maxLength,
    b: s.by_tenant.B!,
    a,
    aThroughputRps: a === null ? 0 : a.completed / s.duration_s,
    throughputRps: s.throughput_rps,
    durationS: s.duration_s,
    dropped: s.scheduling?.dropped_by_reason ?? {},
  };
}

// ------------------------------------------------------------------------------------------ d. predictor

/** What the simulator's predictor sees of a trace record (sim/simulator.ts `arrive`): no text, no max_tokens. */
function features(r: TraceRecord): PredictorFeatures {
  return {
    promptTokens: Math.max(1, r.inputTokens),
    maxTokens: null,
    tenant: r.tenant ?? 'default',
    model: 'm',
    lastUserText: null,
    sessionId: r.session ?? null,
    prefixHashes: routingBlockHashes(r),
  };
}

async function predictor(trace: number): Promise<PredictorResult> {
  const t = PREDICTOR_TRACES[trace]!;
  const all: PredictorFeatures[] = [];
  const actual: number[] = [];
  for await (const r of (await openRequestTrace(t.file)).records) {
    all.push(features(r));
    actual.push(r.outputTokens);
  }
  const predicted = new Float64Array(actual.length);
  const p = new OutputLengthPredictor();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < all.length; i++) {
    predicted[i] = p.predict(all[i]!);
    p.learn(all[i]!, actual[i]!);
  }
  const t1 = process.hrtime.bigint();
  const before = new Float64Array(actual.length);
  const q = new OutputLengthPredictor(NO_FAMILIES);
  for (let i = 0; i < all.length; i++) {
    before[i] = q.predict(all[i]!);
    q.learn(all[i]!, actual[i]!);
  }
  return {
    requests: actual.length,
    tauNoFamily: kendallTau(before, actual),
    tau: kendallTau(predicted, actual),
    rho: spearmanRho(predicted, actual),
    pairwiseAccuracy: pairwiseAccuracy(predicted, actual),
    promptTau: kendallTau(
      all.map((f) => f.promptTokens),
      actual,
    ),
    usPerRequest: Number(t1 - t0) / 1000 / actual.length,
  };
}

const child =
  <R>(job: Job) =>
  () =>
    runChild<R>(SELF, job);

// ------------------------------------------------------------------------------------------ report

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '—');
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '—');
const pct2 = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(2)} %` : '—');
const mark = (ok: boolean): string => (ok ? 'met' : '**not met**');
const drops = (d: Readonly<Record<string, number>>): string =>
  Object.entries(d)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ') || 'none';

interface Report {
  serial: { calibration: Calibration; rateScale: number; results: SerialResult[] }[];
  capacity: Record<number, CapacityResult>;
  mixed: Record<number, MixedResult[]>;
  tenants: Record<number, TenantResult[]>;
  predictor: PredictorResult[];
}

function serialSection(r: Report): string[] {
  const out: string[] = [
    `**a. Serial backend at ρ = ${SERIAL_RHO}** — replicas with endpoint concurrency 1 (\`${SERIAL_PROFILE}\`; \`${LONG_CONTEXT_PROFILE}\` for Mooncake, whose prompts exceed the former's context). ρ = λ · E[S] / replicas, E[S] = the mean idle service time of the window's requests (each run alone through the engine model); short = idle service ≤ the median, long = the rest; E2E from arrival at the gateway. SJF ranks by prompt + 16 × predicted output tokens (the oracle: × true output tokens, for reference only — no gateway knows it); "SJF ×w" by prompt + w × output tokens, w = the backend's ms per output token ÷ ms per prompt token on an idle replica at the window's median request (\`sjfOutputWeight\`). An item that has waited 60 s goes before younger ones (the default starvation guard; 20 s or 120 s where said). "Before": the predictor without prefix families.`,
    ...(CFG.mismatch > 0
      ? [
          '',
          `Engines off their profiles by up to ±${CFG.mismatch * 100} % per constant (mismatch seed 1): the rate is set from the replicas' true engines, E[S] = replicas ÷ Σ 1/E[S_i] = ${r.serial.map((s, i) => `${s.calibration.loadServiceMs.toFixed(1)} ms on ${SERIAL[i]!.name}`).join(', ')}; the table's E[S] and the short/long split stay the nominal profile's.`,
        ]
      : []),
    '',
    '| trace (window, replicas) | E[S], median (ms) | rate scale (req/s) | order | short p50 E2E (ms) | long p99 E2E (ms) | mean E2E (ms) | busy share | dropped |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|',
  ];
  const targets: string[] = [];
  const sizes: string[] = [];
  r.serial.forEach((s, i) => {
    const t = SERIAL[i]!;
    const c = s.calibration;
    for (const x of s.results) {
      out.push(
        `| ${t.name} (${t.window.startS}–${t.window.endS} s, ${t.replicas}) | ${c.meanServiceMs.toFixed(1)}, ${c.medianServiceMs.toFixed(1)} | ×${s.rateScale.toFixed(3)} (${(c.ratePerS * s.rateScale).toFixed(2)}) | ${SERIAL_LABELS[x.order]} | ${f0(x.shortP50Ms)} | ${f0(x.longP99Ms)} | ${f0(x.e2eMeanMs)} | ${pct(x.busyShare)} | ${x.dropped} |`,
      );
    }
    const fcfs = s.results.find((x) => x.order === 'fcfs')!;
    for (const x of s.results) {
      if (x.order === 'fcfs') continue;
      const cut = 1 - x.shortP50Ms / fcfs.shortP50Ms;
      const growth = x.longP99Ms / fcfs.longP99Ms;
      targets.push(
        `- ${t.name}, ${SERIAL_LABELS[x.order]}: short p50 cut by ${pct(cut)} (target ≥ 70 %: ${mark(cut >= 0.7)}); long p99 ${growth.toFixed(2)}× FCFS (target ≤ 2×: ${mark(growth <= 2)})`,
      );
    }
    sizes.push(
      `- ${t.name}: w = ${c.outputWeight.toFixed(0)}; Spearman rho of predicted against true output tokens ${c.rhoNoFamily.toFixed(3)} without prefix families, ${c.rho.toFixed(3)} with them; Kendall tau of SJF's job size against idle service time ${c.sizeTauNoFamily.toFixed(3)} without prefix families, ${c.sizeTauPredicted.toFixed(3)} with them (predicting and learning in trace order), ${c.sizeTauTrue.toFixed(3)} with true sizes`,
    );
  });
  return [...out, '', ...targets, '', ...sizes];
}

function mixedSection(r: Report): string[] {
  const out: string[] = [
    `**b. Batching engines at 1.2× the SLO capacity** — ${BATCH_REPLICAS} × \`${BATCH_PROFILE}\`, default routing. C = the interactive-only SLO capacity (≥ 99 % of requests with TTFT ≤ 5× their idle TTFT) of the conversation trace's first 20 min with a FCFS queue, found per gate; then interactive at ${INTERACTIVE_SHARE} C plus batch at ${BATCH_SHARE} C (the requests that follow in the trace) over the same span. Batch traffic is marked \`batch\` except in the first row; bounds are the gateway's defaults (1 024 places; 30 s, batch 300 s); batch headroom 0.25 unless said. Interactive SLO attainment counts drops as misses.`,
    '',
    '| gate per replica | C, req/s (rate scale) | queue | interactive SLO attainment | interactive TTFT p99 (ms) | batch completed | batch gateway wait p50 (ms) | batch E2E p50 (ms) | dropped | throughput / offered (req/s) |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---|---:|',
  ];
  const targets: string[] = [];
  for (const [gate, g] of GATES.entries()) {
    const c = r.capacity[gate]!;
    for (const x of r.mixed[gate]!) {
      out.push(
        `| ${g.label} | ${c.requests_per_s.toFixed(2)} (×${c.rate_scale.toFixed(3)}) | ${x.variant} | ${pct2(x.interactive.slo_attainment)} | ${f0(x.interactive.ttft_ms.p99)} | ${pct(x.batch.completed / x.batch.requests)} | ${f0(x.batch.gateway_queue_ms.p50)} | ${f0(x.batch.e2e_ms.p50)} | ${drops(x.dropped)} | ${x.throughputRps.toFixed(2)} / ${x.offeredRps.toFixed(2)} |`,
      );
      if (x.variant.startsWith('priority'))
        targets.push(
          `- gate ${g.label}, ${x.variant}: interactive SLO attainment ${pct2(x.interactive.slo_attainment)} (target ≥ 99 %: ${mark(x.interactive.slo_attainment >= 0.99)}); batch completed ${pct(x.batch.completed / x.batch.requests)}`,
        );
    }
  }
  return [...out, '', ...targets];
}

function tenantSection(r: Report): string[] {
  const out: string[] = [
    `**c. Two-tenant flood** — the same fleet; tenant B sends the conversation trace's first ${TENANT_B.endS} s at ${B_SHARE} C, tenant A the requests that follow at ${A_MULTIPLE} C over the same span. TTFT from arrival at the gateway, of B's completed requests; B's SLO attainment counts its drops as misses.`,
    '',
    '| gate per replica | queue places | order | B completed | B SLO attainment | B TTFT p50 (ms) | B TTFT p99 (ms) | B p99 ÷ alone | B gateway wait p50 / p99 (ms) | A completed | A throughput (req/s) | total throughput (req/s) | dropped |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const targets: string[] = [];
  for (const [gate, g] of GATES.entries()) {
    const rows = r.tenants[gate]!;
    const alone = rows.find((x) => x.mode === 'B alone')!;
    for (const x of rows) {
      const ratio = x.b.ttft_ms.p99 / alone.b.ttft_ms.p99;
      out.push(
        `| ${g.label} | ${x.maxLength} | ${x.mode} | ${pct(x.b.completed / x.b.requests)} | ${pct2(x.b.slo_attainment)} | ${f0(x.b.ttft_ms.p50)} | ${f0(x.b.ttft_ms.p99)} | ${x.mode === 'B alone' ? '1' : ratio.toFixed(2)} | ${f0(x.b.gateway_queue_ms.p50)} / ${f0(x.b.gateway_queue_ms.p99)} | ${x.a === null ? '—' : pct(x.a.completed / x.a.requests)} | ${x.a === null ? '—' : x.aThroughputRps.toFixed(2)} | ${x.throughputRps.toFixed(2)} | ${drops(x.dropped)} |`,
      );
      if (x.mode === 'vtc')
        targets.push(
          `- gate ${g.label}, ${x.maxLength} places, VTC: B's p99 TTFT ${ratio.toFixed(2)}× alone (target ≤ 1.5×: ${mark(ratio <= 1.5)}); B completed ${pct(x.b.completed / x.b.requests)}; total throughput ${x.throughputRps.toFixed(2)} req/s vs ${rows.find((y) => y.mode === 'fcfs' && y.maxLength === x.maxLength)!.throughputRps.toFixed(2)} under FCFS (work-conserving)`,
        );
    }
  }
  return [...out, '', ...targets];
}

function predictorSection(r: Report): string[] {
  const rows = r.predictor.map((x, i) => {
    const t = PREDICTOR_TRACES[i]!;
    return `| ${t.name} | ${x.requests} | ${x.tauNoFamily.toFixed(3)} | ${x.tau.toFixed(3)} | ${x.rho.toFixed(3)} | ${pct(x.pairwiseAccuracy)} | ${x.promptTau.toFixed(3)} | ${x.usPerRequest.toFixed(2)} |`;
  });
  const worst = Math.max(...r.predictor.map((x) => x.usPerRequest));
  return [
    "**d. Output-length predictor** — each request predicted, then learned from, in trace order (features a gateway has here: prompt tokens, and the prefix family where the trace has block ids — Mooncake's; these traces carry no text, max_tokens, tenant or session). Kendall tau-b without prefix families (before) and with them, Spearman's rho and pairwise accuracy (pairs with different true lengths ordered the same way; 50 % = chance) of predicted vs true output tokens; the prompt length alone as a baseline ranking.",
    '',
    '| trace | requests | Kendall tau, no families | Kendall tau | Spearman rho | pairwise accuracy | tau of prompt length | µs per predict + learn |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `- cost: at most ${worst.toFixed(2)} µs per predict + learn (target ≤ 20 µs: ${mark(worst <= 20)})`,
  ];
}

function render(r: Report, wallS: number): string {
  const date = new Date().toISOString().slice(0, 10);
  return [
    `Generated by \`npm run bench:scheduling\` on ${date}, ${describeMachine()}; ${wallS.toFixed(0)} s wall. Seed 1; every run is deterministic.`,
    '',
    ...serialSection(r),
    '',
    ...mixedSection(r),
    '',
    ...tenantSection(r),
    '',
    ...predictorSection(r),
  ].join('\n');
}

// ------------------------------------------------------------------------------------------ main

const log = (msg: string): void => {
  process.stderr.write(`[bench:scheduling] ${msg}\n`);
};

async function main(): Promise<void> {
  const t0 = performance.now();
  for (const f of [CONV, CODE, ...PREDICTOR_TRACES.map((t) => t.file)])
    if (!existsSync(f)) throw new Error(`missing trace ${f}`);
  log(`calibration, capacity searches and predictor runs, ${CFG.jobs} at a time`);
  const first = await runLimited<unknown>(
    [
      ...SERIAL.map((_, trace) => child<Calibration>({ kind: 'calibrate', trace })),
      ...GATES.map((_, gate) => child<CapacityResult>({ kind: 'capacity', gate })),
      ...PREDICTOR_TRACES.map((_, trace) => child<PredictorResult>({ kind: 'predictor', trace })),
    ],
    CFG.jobs,
  );
  const calibrations = first.slice(0, SERIAL.length) as Calibration[];
  const capacities = first.slice(SERIAL.length, SERIAL.length + GATES.length) as CapacityResult[];
  const predictorResults = first.slice(SERIAL.length + GATES.length) as PredictorResult[];
  const capacity: Record<number, CapacityResult> = {};
  GATES.forEach((g, i) => {
    capacity[i] = capacities[i]!;
    log(`gate ${g.label}: SLO capacity ${capacities[i]!.requests_per_s.toFixed(2)} req/s`);
  });
  const rateScales = calibrations.map(
    (c, i) => (SERIAL_RHO * SERIAL[i]!.replicas) / (c.ratePerS * (c.loadServiceMs / 1000)),
  );
  const tenantModes: { mode: TenantMode; maxLength: number }[] = [
    { mode: 'B alone', maxLength: DEFAULT_BOUNDS.maxLength },
    { mode: 'fcfs', maxLength: DEFAULT_BOUNDS.maxLength },
    { mode: 'vtc', maxLength: DEFAULT_BOUNDS.maxLength },
    { mode: 'fcfs', maxLength: LONG_QUEUE },
    { mode: 'vtc', maxLength: LONG_QUEUE },
  ];
  const serialJobs = SERIAL.flatMap((_, trace) =>
    SERIAL_ORDERS.map((order) =>
      child<SerialResult>({
        kind: 'serial',
        trace,
        order,
        rateScale: rateScales[trace]!,
        medianServiceMs: calibrations[trace]!.medianServiceMs,
        outputWeight: calibrations[trace]!.outputWeight,
      }),
    ),
  );
  const mixedJobs = GATES.flatMap((_, gate) =>
    MIXED_VARIANTS.map((variant) =>
      child<MixedResult>({ kind: 'mixed', gate, capacityScale: capacity[gate]!.rate_scale, variant }),
    ),
  );
  const tenantJobs = GATES.flatMap((_, gate) =>
    tenantModes.map((m) =>
      child<TenantResult>({ kind: 'tenants', gate, capacityRps: capacity[gate]!.requests_per_s, ...m }),
    ),
  );
  log(`${serialJobs.length + mixedJobs.length + tenantJobs.length} simulations`);
  const runs = await runLimited<unknown>([...serialJobs, ...mixedJobs, ...tenantJobs], CFG.jobs);
  const serialRuns = runs.slice(0, serialJobs.length) as SerialResult[];
  const mixedRuns = runs.slice(serialJobs.length, serialJobs.length + mixedJobs.length) as MixedResult[];
  const tenantRuns = runs.slice(serialJobs.length + mixedJobs.length) as TenantResult[];
  const report: Report = {
    serial: SERIAL.map((_, i) => ({
      calibration: calibrations[i]!,
      rateScale: rateScales[i]!,
      results: serialRuns.slice(i * SERIAL_ORDERS.length, (i + 1) * SERIAL_ORDERS.length),
    })),
    capacity,
    mixed: Object.fromEntries(
      GATES.map((_, i) => [i, mixedRuns.slice(i * MIXED_VARIANTS.length, (i + 1) * MIXED_VARIANTS.length)]),
    ),
    tenants: Object.fromEntries(
      GATES.map((_, i) => [i, tenantRuns.slice(i * tenantModes.length, (i + 1) * tenantModes.length)]),
    ),
    predictor: predictorResults,
  };
  const md = render(report, (performance.now() - t0) / 1000);
  process.stdout.write(`${md}\n`);
  if (CFG.json) writeFileSync(CFG.json, JSON.stringify(report, null, 2));
  if (CFG.docs) {
    writeGeneratedSection(CFG.docs, 'scheduling', md);
    log(`wrote ${CFG.docs}`);
  }
}

await benchEntry<Job>(runJob, main);
