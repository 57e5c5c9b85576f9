/**
 * @module bench/sim
 * `npm run bench:sim`: how fast the simulator replays a long trace, and whether its memory stays flat
 * in trace length. Acceptance target (simulator issue): a one-hour trace at 8 replicas under load
 * simulates in at most 60 s of wall time on this machine (2 cores), with streamed input and streamed
 * per-request output, and memory does not grow with trace length.
 *
 * Steps:
 *   1. Calibration (in this process): 8 replicas of `qwen2.5-7b-h100`, least-outstanding routing, fed
 *      the synthetic workload far above capacity; the saturation throughput μ is the completions per
 *      second in the steady part of that run. The bench rate is round(BENCH_SIM_LOAD × μ).
 *   2. Every measured run in a fresh child process (`node dist/bench/sim.js --child SPEC`), so its peak
 *      RSS is its own: the synthetic workload for BENCH_SIM_MINUTES (the headline), then for ¼ and ½
 *      of that (memory flatness: 15, 30, 60 min by default), ¼ of it without prefix ids (to show what
 *      the prefix cache costs), and the shipped Mooncake trace replayed BENCH_SIM_TRACE_SCALE× faster.
 *   3. One more child under `node --cpu-prof` (BENCH_SIM_PROFILE_MINUTES of the synthetic workload);
 *      the top self-time functions of that profile are reported.
 *
 * Each run streams its input (a generator, or the trace file read line by line) and writes one JSON
 * line per request to a file in os.tmpdir() through a `fs.WriteStream`, as `switchyard sim` does, so
 * serialising and writing the output is part of the wall time. The synthetic source yields to the
 * event loop every 256 records, as a file-backed source does between reads, so the WriteStream can
 * flush during the run (without that it would hold the whole output until run() returns).
 * Memory: peak RSS is the kernel's high-water mark (`process.resourceUsage().maxRSS`); heapUsed is
 * sampled every 256 arrivals: its peak, and its floor (minimum) over the second half of the run, a
 * rough proxy for the live heap (no `--expose-gc`, so samples include garbage not yet collected).
 *
 * Env (defaults): BENCH_SIM_MINUTES (60) BENCH_SIM_REPLICAS (8) BENCH_SIM_LOAD (0.8)
 * BENCH_SIM_RATE (unset: calibrate; a number skips calibration) BENCH_SIM_TRACE (the shipped
 * traces/mooncake_conversation_0-30min.jsonl; 0 = skip) BENCH_SIM_TRACE_SCALE (4)
 * BENCH_SIM_PROFILE_MINUTES (10; 0 = no profile) BENCH_SIM_FLAT (1; 0 = headline run only)
 * BENCH_DOCS (docs/benchmarks.md; 0 = do not write) BENCH_JSON (a path for the raw results).
 */
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getProfile } from '../src/engine-model/profiles.js';
import { routingSpec } from '../src/router/presets.js';
import { type RequestRecord, type SimOptions, type SimSummary, Simulation } from '../src/sim/simulator.js';
import { openRequestTrace } from '../src/traces/loaders.js';
import type { TraceRecord } from '../src/traces/record.js';
import { type SyntheticSpec, syntheticTrace } from '../src/traces/synthetic.js';
import { reshape } from '../src/traces/transform.js';
import { runChild } from './child.js';
import { REPO, TRACES_DIR, describeMachine, envNum } from './env.js';

const SELF = fileURLToPath(import.meta.url);

const DEFAULT_TRACE = join(TRACES_DIR, 'mooncake_conversation_0-30min.jsonl');

const CFG = {
  minutes: envNum('BENCH_SIM_MINUTES', 60),
  replicas: Math.max(1, Math.round(envNum('BENCH_SIM_REPLICAS', 8))),
  load: envNum('BENCH_SIM_LOAD', 0.8),
  rate: process.env.BENCH_SIM_RATE ? envNum('BENCH_SIM_RATE', 0) : null,
  trace: process.env.BENCH_SIM_TRACE === '0' ? '' : (process.env.BENCH_SIM_TRACE ?? DEFAULT_TRACE),
  traceScale: envNum('BENCH_SIM_TRACE_SCALE', 4),
  profileMinutes: envNum('BENCH_SIM_PROFILE_MINUTES', 10),
  flat: process.env.BENCH_SIM_FLAT !== '0',
  docs: process.env.BENCH_DOCS ?? join(REPO, 'docs', 'benchmarks.md'),
  json: process.env.BENCH_JSON ?? '',
};

/** The acceptance target: one simulated hour in at most this many wall seconds. */
const TARGET_WALL_S = 60;
const PROFILE = 'qwen2.5-7b-h100';
const POLICY = 'least-outstanding';
/** Lognormal lengths shaped like the Azure LLM inference conversation trace (medians ≈ 1,000 / 130). */
const INPUT = { median: 1000, sigma: 0.9, max: 8000 } as const;
const OUTPUT = { median: 130, sigma: 0.9, max: 1000 } as const;
/** A shared system prompt per group: 100 groups, first 512 tokens identical within a group. */
const PREFIX = { groups: 100, sharedTokens: 512 } as const;
/** The synthetic source yields to the event loop this often (records), as a file reader does. */
const YIELD_EVERY = 256;

const log = (msg: string): void => {
  process.stderr.write(`[bench:sim ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

// ------------------------------------------------------------------------------------------ one run

/** What a child process is asked to run. */
interface RunSpec {
  readonly name: string;
  readonly kind: 'synthetic' | 'trace';
  /** synthetic: simulated minutes of arrivals and the rate. */
  readonly minutes?: number;
  readonly rate?: number;
  readonly prefix?: boolean;
  /** trace: the file and the rate scale. */
  readonly trace?: string;
  readonly rateScale?: number;
  readonly replicas: number;
}

/** What a run reports back. */
interface RunResult {
  readonly spec: RunSpec;
  readonly wallS: number;
  readonly simulatedS: number;
  readonly requests: number;
  readonly completed: number;
  readonly rejected: number;
  readonly outputTokens: number;
  readonly outputBytes: number;
  readonly maxRssMB: number;
  readonly peakHeapMB: number;
  readonly heapFloorMB: number;
  readonly endHeapMB: number;
  readonly samples: number;
  readonly summary: Pick<
    SimSummary,
    | 'throughput_rps'
    | 'mean_in_system'
    | 'slo_attainment'
    | 'output_tokens_per_s'
    | 'prefix_hit_rate'
    | 'load_imbalance'
  > & {
    readonly ttft_p50: number;
    readonly ttft_p99: number;
    readonly tpot_p50: number;
    readonly e2e_p50: number;
    readonly queue_p99: number;
  };
}

function simOptions(replicas: number): SimOptions {
  const profile = getProfile(PROFILE);
  return {
    pools: [
      {
        name: profile.model,
        endpoints: Array.from({ length: replicas }, (_, i) => ({
          name: `replica-${i}`,
          profile,
          maxConcurrency: 1 << 30,
        })),
      },
    ],
    routing: routingSpec(POLICY),
    seed: 1,
    scrapeIntervalMs: 0,
    slo: { ttftScale: 5 },
  };
}

function syntheticSpec(minutes: number, rate: number, prefix: boolean): SyntheticSpec {
  return {
    requests: Math.round(rate * minutes * 60),
    ratePerS: rate,
    inputTokens: INPUT,
    outputTokens: OUTPUT,
    ...(prefix ? { prefix: PREFIX } : {}),
    seed: 1,
  };
}

const MB = 1e6;

/** Runs one spec in this process: streamed input, JSONL output to a temp file, memory sampled. */
async function runOne(spec: RunSpec): Promise<RunResult> {
  const dir = mkdtempSync(join(os.tmpdir(), 'swy-bench-sim-'));
  const outPath = join(dir, 'requests.jsonl');
  let peakHeap = 0;
  let n = 0;
  const heapSamples: number[] = [];
  const sample = (): void => {
    const h = process.memoryUsage().heapUsed;
    heapSamples.push(h);
    if (h > peakHeap) peakHeap = h;
  };
  const started = performance.now();
  let source: AsyncIterable<TraceRecord>;
  if (spec.kind === 'synthetic') {
    const records = syntheticTrace(syntheticSpec(spec.minutes!, spec.rate!, spec.prefix ?? true)).records;
    source = (async function* () {
      for await (const r of records) {
        if (++n % YIELD_EVERY === 0) {
          sample();
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        yield r;
      }
    })();
  } else {
    const trace = await openRequestTrace(spec.trace!);
    const records = reshape(trace.records, { rateScale: spec.rateScale ?? 1 });
    source = (async function* () {
      for await (const r of records) {
        if (++n % YIELD_EVERY === 0) sample();
        yield r;
      }
    })();
  }
  const out = createWriteStream(outPath);
  const summary = await new Simulation(simOptions(spec.replicas)).run(source, (r: RequestRecord) => {
    out.write(`${JSON.stringify(r)}\n`);
  });
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  const wallS = (performance.now() - started) / 1000;
  sample();
  const outputBytes = statSync(outPath).size;
  rmSync(dir, { recursive: true, force: true });
  const secondHalf = heapSamples.slice(Math.floor(heapSamples.length / 2));
  return {
    spec,
    wallS,
    simulatedS: summary.duration_s,
    requests: summary.requests,
    completed: summary.completed,
    rejected: summary.rejected,
    outputTokens: Math.round(summary.output_tokens_per_s * summary.duration_s),
    outputBytes,
    maxRssMB: (process.resourceUsage().maxRSS * 1024) / MB,
    peakHeapMB: peakHeap / MB,
    heapFloorMB: Math.min(...secondHalf) / MB,
    endHeapMB: process.memoryUsage().heapUsed / MB,
    samples: heapSamples.length,
    summary: {
      throughput_rps: summary.throughput_rps,
      mean_in_system: summary.mean_in_system,
      slo_attainment: summary.slo_attainment,
      output_tokens_per_s: summary.output_tokens_per_s,
      prefix_hit_rate: summary.prefix_hit_rate,
      load_imbalance: summary.load_imbalance,
      ttft_p50: summary.ttft_ms.p50,
      ttft_p99: summary.ttft_ms.p99,
      tpot_p50: summary.tpot_ms.p50,
      e2e_p50: summary.e2e_ms.p50,
      queue_p99: summary.queue_ms.p99,
    },
  };
}

// ------------------------------------------------------------------------------------------ calibration

interface Calibration {
  readonly offeredRps: number;
  readonly simulatedS: number;
  readonly saturationRps: number;
  readonly wallS: number;
}

/**
 * Saturation throughput of the fleet: the synthetic workload offered well above capacity for 120
 * simulated seconds; μ = requests that finish in [40 s, 120 s) per second (the fleet is saturated by
 * then, and arrivals are still coming).
 */
async function calibrate(replicas: number, prefix = true): Promise<Calibration> {
  const offered = 50 * replicas;
  const fromS = 40;
  const toS = 120;
  let done = 0;
  const started = performance.now();
  const sim = new Simulation(simOptions(replicas));
  await sim.run(syntheticTrace(syntheticSpec(toS / 60, offered, prefix)).records, (r) => {
    if (r.status !== 'ok') return;
    const t = r.arrival_ms + r.e2e_ms;
    if (t >= fromS * 1000 && t < toS * 1000) done++;
  });
  return {
    offeredRps: offered,
    simulatedS: toS,
    saturationRps: done / (toS - fromS),
    wallS: (performance.now() - started) / 1000,
  };
}

// ------------------------------------------------------------------------------------------ profile

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name, file, line) in a `.cpuprofile`, largest first, as shares of the total. */
function topSelf(path: string, k: number): { fn: string; ms: number; share: number }[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    total += dt;
    const cf = node.callFrame;
    const file = cf.url.replace(/^file:\/\//, '').replace(`${REPO}/`, '');
    const key =
      file === '' ? cf.functionName : `${cf.functionName || '(anonymous)'} (${file}:${cf.lineNumber + 1})`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([fn, us]) => ({ fn, ms: us / 1000, share: total > 0 ? us / total : 0 }));
}

async function profileRun(
  spec: RunSpec,
): Promise<{ result: RunResult; top: { fn: string; ms: number; share: number }[] }> {
  const dir = mkdtempSync(join(os.tmpdir(), 'swy-bench-sim-prof-'));
  try {
    const result = await runChild<RunResult>(SELF, spec, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('node --cpu-prof wrote no profile');
    return { result, top: topSelf(join(dir, file), 10) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------ report

const f = (x: number, d = 1): string =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
    : '–';

function label(r: RunResult): string {
  const s = r.spec;
  if (s.kind === 'trace') return `Mooncake conversation 0–30 min, ×${s.rateScale}`;
  return `synthetic ${s.minutes} min @ ${s.rate} req/s${s.prefix === false ? ', no prefix ids' : ''}`;
}

function resultsTable(runs: readonly RunResult[]): string {
  const head =
    '| run | requests | simulated s | wall s | sim s / wall s | requests / wall s | output tok / wall s | JSONL out (MB) | peak RSS (MB) | peak heapUsed (MB) | heapUsed floor, 2nd half (MB) |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  return (
    head +
    runs
      .map(
        (r) =>
          `| ${label(r)} | ${f(r.requests, 0)} | ${f(r.simulatedS, 0)} | ${f(r.wallS, 1)} | ${f(r.simulatedS / r.wallS, 1)} | ${f(r.requests / r.wallS, 0)} | ${f(r.outputTokens / r.wallS, 0)} | ${f(r.outputBytes / MB, 0)} | ${f(r.maxRssMB, 0)} | ${f(r.peakHeapMB, 0)} | ${f(r.heapFloorMB, 0)} |`,
      )
      .join('\n') +
    '\n'
  );
}

function loadTable(runs: readonly RunResult[]): string {
  const head =
    '| run | throughput (req/s) | mean in system | per replica | SLO attainment | TTFT p50 / p99 (ms) | TPOT p50 (ms) | queue p99 (ms) | prefix hit rate | rejected |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  return (
    head +
    runs
      .map((r) => {
        const s = r.summary;
        const hit = s.prefix_hit_rate === null ? 'n/a' : `${f(s.prefix_hit_rate * 100)} %`;
        return `| ${label(r)} | ${f(s.throughput_rps, 1)} | ${f(s.mean_in_system, 0)} | ${f(s.mean_in_system / r.spec.replicas, 0)} | ${f(s.slo_attainment * 100)} % | ${f(s.ttft_p50, 0)} / ${f(s.ttft_p99, 0)} | ${f(s.tpot_p50, 1)} | ${f(s.queue_p99, 0)} | ${hit} | ${f(r.rejected, 0)} |`;
      })
      .join('\n') +
    '\n'
  );
}

interface Report {
  readonly date: string;
  readonly command: string;
  readonly machine: string;
  readonly totalS: number;
  readonly calibration: Calibration | null;
  readonly noPrefixCalibration: Calibration | null;
  readonly rate: number;
  readonly headline: RunResult;
  readonly flat: readonly RunResult[];
  readonly others: readonly RunResult[];
  readonly profile: { result: RunResult; top: { fn: string; ms: number; share: number }[] } | null;
}

function render(rep: Report): string {
  const h = rep.headline;
  const perHourS = (h.wallS * 3600) / (h.spec.minutes! * 60);
  const met = perHourS <= TARGET_WALL_S;
  const lines: string[] = [];
  lines.push(`### Latest run: ${rep.date}`, '');
  lines.push('```sh', rep.command, '```', '');
  lines.push(`Machine: ${rep.machine}. The whole bench took ${f(rep.totalS, 0)} s.`, '');
  const cal = rep.calibration;
  lines.push(
    cal === null
      ? `Load: ${rep.rate} req/s (BENCH_SIM_RATE).`
      : `Load: calibration offered ${cal.offeredRps} req/s to ${h.spec.replicas} × \`${PROFILE}\` (${POLICY}) for ${cal.simulatedS} simulated s; the saturated fleet completed μ = ${f(cal.saturationRps, 1)} req/s (${f(cal.wallS, 1)} s wall). The bench rate is ${f(CFG.load * 100, 0)} % of μ: **${rep.rate} req/s** (Poisson), input lognormal median ${INPUT.median} σ ${INPUT.sigma} max ${INPUT.max}, output median ${OUTPUT.median} σ ${OUTPUT.sigma} max ${OUTPUT.max}, ${PREFIX.groups} prefix groups sharing their first ${PREFIX.sharedTokens} tokens.`,
    '',
  );
  const np = rep.noPrefixCalibration;
  if (np !== null) {
    lines.push(
      `The "no prefix ids" run is the same workload without block ids (no prefix-cache hits, so more prefill per request): calibrated the same way, μ = ${f(np.saturationRps, 1)} req/s, run at ${f(CFG.load * 100, 0)} % of that.`,
      '',
    );
  }
  lines.push(
    `**Target** (one simulated hour at ${h.spec.replicas} replicas under load in ≤ ${TARGET_WALL_S} s wall): ` +
      `${f(h.wallS, 1)} s for ${h.spec.minutes} simulated min${h.spec.minutes === 60 ? '' : ` (${f(perHourS, 1)} s per simulated hour)`} — **${met ? 'met' : 'not met'}**.`,
    '',
  );
  lines.push('Speed and memory (each run in a fresh process; peak RSS = kernel high-water mark):', '');
  lines.push(resultsTable([...rep.flat, ...rep.others]));
  lines.push('The load each run put on the fleet (from the run summary):', '');
  lines.push(loadTable([...rep.flat, ...rep.others]));
  if (rep.flat.length > 1) {
    const first = rep.flat[0]!;
    const last = rep.flat[rep.flat.length - 1]!;
    const ratio = (a: number, b: number) => f(b / a, 2);
    lines.push(
      `Memory from ${first.spec.minutes} to ${last.spec.minutes} simulated min (${f(last.requests / first.requests, 1)}× the requests and output): ` +
        `peak RSS ×${ratio(first.maxRssMB, last.maxRssMB)}, peak heapUsed ×${ratio(first.peakHeapMB, last.peakHeapMB)}, ` +
        `heapUsed floor ×${ratio(first.heapFloorMB, last.heapFloorMB)}; wall time ×${ratio(first.wallS, last.wallS)}.`,
      '',
    );
  }
  if (rep.profile !== null) {
    const p = rep.profile;
    lines.push(
      `CPU profile (\`node --cpu-prof\`, ${label(p.result)}, ${f(p.result.wallS, 1)} s wall under the profiler), top self time:`,
      '',
      '| function | self ms | share |',
      '|---|---:|---:|',
      ...p.top.map((t) => `| \`${t.fn}\` | ${f(t.ms, 0)} | ${f(t.share * 100)} % |`),
      '',
    );
  }
  return lines.join('\n');
}

const HEADING = '## Simulator speed: npm run bench:sim';
const BEGIN = '<!-- bench:sim:begin (generated by npm run bench:sim; edits inside are overwritten) -->';
const END = '<!-- bench:sim:end -->';

/** Replaces the generated block of this section, or appends the section at the end of the file. */
function updateDocs(path: string, generated: string): void {
  const block = `${BEGIN}\n\n${generated}\n${END}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const b = text.indexOf('<!-- bench:sim:begin');
  const e = text.indexOf(END);
  const next =
    b !== -1 && e > b
      ? text.slice(0, b) + block + text.slice(e + END.length)
      : `${text.trimEnd()}\n\n${HEADING}\n\n${block}\n`;
  writeFileSync(path, next);
}

// ------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const t0 = performance.now();
  const replicas = CFG.replicas;
  let calibration: Calibration | null = null;
  let rate = CFG.rate;
  if (rate === null) {
    log(`calibrating: ${replicas} replicas far above capacity`);
    calibration = await calibrate(replicas);
    rate = Math.round(CFG.load * calibration.saturationRps);
    log(`saturation ${f(calibration.saturationRps, 1)} req/s → bench rate ${rate} req/s`);
  }
  const minutes = CFG.minutes;
  const synth = (m: number, prefix = true, r = rate!): RunSpec => ({
    name: `synthetic-${m}min${prefix ? '' : '-noprefix'}`,
    kind: 'synthetic',
    minutes: m,
    rate: r,
    prefix,
    replicas,
  });
  const flatSpecs = CFG.flat ? [synth(minutes / 4), synth(minutes / 2), synth(minutes)] : [synth(minutes)];
  const flat: RunResult[] = [];
  for (const s of flatSpecs) {
    log(`run ${s.name}`);
    const r = await runChild<RunResult>(SELF, s);
    log(`  ${f(r.wallS, 1)} s wall, ${f(r.requests, 0)} requests, peak RSS ${f(r.maxRssMB, 0)} MB`);
    flat.push(r);
  }
  const others: RunResult[] = [];
  let noPrefixCalibration: Calibration | null = null;
  if (CFG.flat) {
    // The same workload without prefix ids (no cache hits, so more prefill): at the same share of
    // its own saturation throughput, so the two are equally loaded.
    noPrefixCalibration = await calibrate(replicas, false);
    const s = synth(minutes / 4, false, Math.round(CFG.load * noPrefixCalibration.saturationRps));
    log(`run ${s.name} (μ without prefix ids ${f(noPrefixCalibration.saturationRps, 1)} req/s)`);
    others.push(await runChild<RunResult>(SELF, s));
  }
  if (CFG.trace !== '') {
    if (existsSync(CFG.trace)) {
      const s: RunSpec = {
        name: 'mooncake',
        kind: 'trace',
        trace: CFG.trace,
        rateScale: CFG.traceScale,
        replicas,
      };
      log(`run ${s.name} ×${s.rateScale}`);
      others.push(await runChild<RunResult>(SELF, s));
    } else log(`no trace at ${CFG.trace}: skipped`);
  }
  let profile: Report['profile'] = null;
  if (CFG.profileMinutes > 0) {
    const s = synth(CFG.profileMinutes);
    log(`profile ${s.name} under node --cpu-prof`);
    profile = await profileRun(s);
  }
  const headline = flat[flat.length - 1]!;
  const env = [
    `BENCH_SIM_MINUTES=${CFG.minutes}`,
    `BENCH_SIM_REPLICAS=${CFG.replicas}`,
    CFG.rate === null ? `BENCH_SIM_LOAD=${CFG.load}` : `BENCH_SIM_RATE=${CFG.rate}`,
    `BENCH_SIM_TRACE_SCALE=${CFG.traceScale}`,
    `BENCH_SIM_PROFILE_MINUTES=${CFG.profileMinutes}`,
  ];
  const report: Report = {
    date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    command: `${env.join(' ')} \\\n  npm run bench:sim`,
    machine: describeMachine(),
    totalS: (performance.now() - t0) / 1000,
    calibration,
    noPrefixCalibration,
    rate: rate!,
    headline,
    flat,
    others,
    profile,
  };
  const md = render(report);
  process.stdout.write(`\n${md}\n`);
  if (CFG.json !== '') writeFileSync(CFG.json, `${JSON.stringify(report, null, 2)}\n`);
  if (CFG.docs !== '0') {
    updateDocs(CFG.docs, md);
    log(`wrote ${CFG.docs}`);
  }
}

if (process.argv[2] === '--child') {
  const spec = JSON.parse(process.argv[3] ?? '{}') as RunSpec;
  const result = await runOne(spec);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
} else {
  await main();
}
