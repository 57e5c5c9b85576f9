/**
 * @module bench/routing
 * `npm run bench:routing`: every routing policy side by side on the shipped traces that carry prefix
 * hashes, 8 replicas of `qwen2.5-7b-h100`, plus the pooled ideal (one replica with 8× the compute and
 * 8× the KV of one). Writes the table into docs/routing.md between markers.
 *
 * Per (trace, policy):
 *   - SLO capacity: the highest replay rate at which ≥ 99% of requests meet the SLO, by bracketing
 *     and bisection over the rate scale (sim/capacity.ts), under two SLOs: relative, a TTFT of 5×
 *     the request's own idle, cold-cache TTFT on one `qwen2.5-7b-h100` (the pooled ideal is held to
 *     the same limits); absolute, TTFT ≤ 2 s and TPOT ≤ 100 ms for every request. Prompts longer
 *     than the model's context are the client's error and are left out of attainment.
 *   - At one fixed rate per trace (BENCH_ROUTING_FIXED × the default policy's capacity): p99 TTFT,
 *     prefix cache hit rate, load imbalance (busiest replica's requests ÷ the mean).
 *   - At the trace's recorded rate (×1): prefix cache hit rate.
 * Held out: both capacities again on the conversation trace's second 15 minutes replayed alone, a
 *   check that the lead is not an artefact of one stretch of the trace (docs/routing.md says what
 *   of the default was chosen on these traces).
 * Per trace: the hit rate of an infinite single cache (every block ever seen stays cached), as the
 *   engine counts hits (16-token blocks, at least the last prompt token computed).
 * Decision cost: a micro-benchmark of route + first-token + finish at 64 endpoints with the prefix
 *   index at capacity, each policy in the same process, live-sized prompts (64-token blocks).
 *
 * Each simulation runs in a child process, BENCH_ROUTING_JOBS at a time (default: the CPU count).
 * Engine metrics are scraped every BENCH_ROUTING_SCRAPE_MS (100) for every policy alike.
 * Env: BENCH_ROUTING_TARGET (0.99) BENCH_ROUTING_FIXED (0.8) BENCH_ROUTING_ITER (6 bisection steps)
 * BENCH_ROUTING_ITER_EXTRA (bisection steps of the absolute-SLO and held-out searches; default 4)
 * BENCH_ROUTING_POLICIES (comma list; default all) BENCH_ROUTING_DECISIONS (100000)
 * BENCH_ROUTING_MISMATCH (0; e.g. 0.3: every replica's constants off the profile by up to ±30 %)
 * BENCH_ROUTING_MISMATCH_SEED (1) BENCH_ROUTING_CORRECTION (on | off; unset: the policies' own)
 * BENCH_DOCS (docs/routing.md; 0 = do not write) BENCH_JSON (a path for the raw results).
 */
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeededRng } from '../src/core/rng.js';
import { getProfile, pooledProfile } from '../src/engine-model/profiles.js';
import type { EndpointView } from '../src/framework/endpoint.js';
import type { RoutingRequest } from '../src/framework/routing.js';
import { builtinRoutingRegistry } from '../src/plugins/routing/register.js';
import { ROUTING_PRESETS, routingSpec, withModelCorrection } from '../src/router/presets.js';
import { PROMPT_BLOCK_TOKENS, promptBlockHashes } from '../src/router/prompt-blocks.js';
import { Router } from '../src/router/router.js';
import { type CapacityResult, capacitySearch } from '../src/sim/capacity.js';
import { type SimSummary, Simulation } from '../src/sim/simulator.js';
import { engineBlockHashes } from '../src/traces/block-hashes.js';
import { openRequestTrace } from '../src/traces/loaders.js';
import { reshape } from '../src/traces/transform.js';
import { benchEntry, runChild, runLimited } from './child.js';
import { writeGeneratedSection } from './docs.js';
import { REPO, TRACES_DIR, describeMachine, envNum } from './env.js';

const SELF = fileURLToPath(import.meta.url);
const PROFILE = 'qwen2.5-7b-h100';
const REPLICAS = 8;
const POOLED = 'pooled ideal';

const TRACES = [
  {
    name: 'mooncake-conversation',
    file: join(TRACES_DIR, 'mooncake_conversation_0-30min.jsonl'),
    // Its clock is rounded to 3 s ticks (600 distinct times, up to 23 requests on one).
    spreadTies: true,
    // The second 15 of its 30 minutes, replayed alone (cold caches at its start).
    heldOut: { startS: 900, endS: 1800 },
  },
  {
    name: 'mooncake-synthetic',
    file: join(TRACES_DIR, 'mooncake_synthetic_trace.jsonl'),
    spreadTies: false,
    heldOut: null,
  },
] as const;

/** The two SLOs every capacity is searched under. */
const SLOS = {
  /** Each request's limit scales with its own idle TTFT: short prompts strict, long ones generous. */
  relative: { ttftScale: 5 },
  /** One limit for every request, the kind of SLO serving systems publish. */
  absolute: { ttftMs: 2000, tpotMs: 100 },
} as const;
type SloKind = keyof typeof SLOS;

/** Every named policy; `default` is `predicted-ttft` under another name, so it is run once. */
const ALL_POLICIES = Object.keys(ROUTING_PRESETS).filter((p) => p !== 'default');

const CFG = {
  target: envNum('BENCH_ROUTING_TARGET', 0.99),
  fixed: envNum('BENCH_ROUTING_FIXED', 0.8),
  iterations: envNum('BENCH_ROUTING_ITER', 6),
  // Fewer steps for the added searches keep the bench's wall time within 2× of the relative-only one.
  iterationsExtra: envNum('BENCH_ROUTING_ITER_EXTRA', 4),
  scrapeMs: envNum('BENCH_ROUTING_SCRAPE_MS', 100),
  jobs: envNum('BENCH_ROUTING_JOBS', os.availableParallelism()),
  decisions: envNum('BENCH_ROUTING_DECISIONS', 100_000),
  policies: (process.env.BENCH_ROUTING_POLICIES ?? ALL_POLICIES.join(',')).split(',').filter(Boolean),
  /** Every replica's step-time constants off the profile by up to ± this (0: engines match). */
  mismatch: envNum('BENCH_ROUTING_MISMATCH', 0),
  mismatchSeed: envNum('BENCH_ROUTING_MISMATCH_SEED', 1),
  /** The default policy's online model correction: unset keeps each policy's own setting. */
  correction:
    process.env.BENCH_ROUTING_CORRECTION === undefined ? null : process.env.BENCH_ROUTING_CORRECTION === 'on',
  docs: process.env.BENCH_DOCS === '0' ? null : join(REPO, 'docs', 'routing.md'),
  json: process.env.BENCH_JSON ?? null,
};

// ------------------------------------------------------------------------------------------ child jobs

type Job =
  | { kind: 'capacity'; trace: number; policy: string; slo: SloKind; heldOut: boolean }
  | { kind: 'fixed'; trace: number; policy: string; scale: number }
  | { kind: 'cost' };

interface FixedResult {
  readonly scale: number;
  readonly requests_per_s: number;
  readonly slo_attainment: number;
  readonly ttft_p99_ms: number;
  readonly prefix_hit_rate: number | null;
  readonly load_imbalance: number;
}

interface CostResult {
  readonly endpoints: number;
  readonly indexBlocksPerEndpoint: number;
  readonly promptTokens: number;
  /** µs per request (views + route + first token + finish), by policy. */
  readonly usPerDecision: Record<string, number>;
  /** µs to hash one prompt of `promptTokens` into prefix blocks (classification, before routing). */
  readonly usPerPromptHash: number;
}

async function simulate(
  traceIdx: number,
  policy: string,
  scale: number,
  slo: SloKind = 'relative',
  heldOut = false,
): Promise<SimSummary> {
  const t = TRACES[traceIdx]!;
  const base = getProfile(PROFILE);
  const pooled = policy === POOLED;
  const endpoints = pooled
    ? [{ name: 'pooled', profile: pooledProfile(base, REPLICAS), maxConcurrency: 1024 * REPLICAS }]
    : Array.from({ length: REPLICAS }, (_, i) => ({ name: `r${i}`, profile: base, maxConcurrency: 1024 }));
  const spec = routingSpec(pooled ? 'round-robin' : policy);
  const sim = new Simulation({
    pools: [{ name: 'm', endpoints }],
    routing: CFG.correction === null ? spec : withModelCorrection(spec, CFG.correction),
    seed: 1,
    scrapeIntervalMs: CFG.scrapeMs,
    slo: { ...SLOS[slo], referenceProfile: base },
    // Engines that differ from the profile the router believes (the pooled ideal keeps its own).
    ...(CFG.mismatch > 0 && !pooled ? { mismatch: { scale: CFG.mismatch, seed: CFG.mismatchSeed } } : {}),
  });
  const trace = await openRequestTrace(t.file);
  const window = heldOut ? (t.heldOut ?? undefined) : undefined;
  if (heldOut && window === undefined) throw new Error(`${t.name} has no held-out window`);
  return sim.run(reshape(trace.records, { rateScale: scale, spreadTies: t.spreadTies, window }));
}

async function runJob(job: Job): Promise<unknown> {
  if (job.kind === 'cost') return decisionCost();
  if (job.kind === 'capacity') {
    const extra = job.slo !== 'relative' || job.heldOut;
    return capacitySearch((k) => simulate(job.trace, job.policy, k, job.slo, job.heldOut), {
      target: CFG.target,
      iterations: extra ? CFG.iterationsExtra : CFG.iterations,
      start: 0.5,
      min: 1 / 64,
    });
  }
  const s = await simulate(job.trace, job.policy, job.scale);
  const result: FixedResult = {
    scale: job.scale,
    requests_per_s: s.arrival_rate_rps,
    slo_attainment: s.slo_attainment,
    ttft_p99_ms: s.ttft_ms.p99,
    prefix_hit_rate: s.prefix_hit_rate,
    load_imbalance: s.load_imbalance,
  };
  return result;
}

// ------------------------------------------------------------------------------------------ decision cost

/**
 * Route + first token + finish per request at 64 endpoints, the prefix index filled to capacity
 * first. Prompts are 8,192 tokens in live 64-token blocks (128 blocks): half share one of 1,000
 * system prompts of 2,048 tokens, all end in a unique suffix. 512 requests stay in flight, so the
 * load ledger is never empty. Views are rebuilt per request, as the gateway does.
 */
function decisionCost(): CostResult {
  const n = 64;
  const profile = getProfile(PROFILE);
  const blocks = 8192 / PROMPT_BLOCK_TOKENS;
  const rng = new SeededRng(7);
  const capacityBlocks = Math.floor((profile.numKvBlocks * profile.blockSize) / PROMPT_BLOCK_TOKENS);
  const makeRequest = (id: number): RoutingRequest => {
    const shared = rng.next() < 0.5 ? Math.floor(rng.next() * 1000) : -1;
    const hashes = new Array<number>(blocks);
    for (let b = 0; b < blocks; b++) {
      hashes[b] = shared >= 0 && b < 32 ? (shared * 131 + b) >>> 0 : (rng.next() * 2 ** 32) >>> 0;
    }
    return {
      id: `q${id}`,
      pool: 'm',
      promptTokensEstimate: 8192,
      excluded: null,
      prefixHashes: hashes,
      prefixBlockTokens: PROMPT_BLOCK_TOKENS,
      sessionId: null,
      tenant: null,
    };
  };
  const usPerDecision: Record<string, number> = {};
  const registry = builtinRoutingRegistry();
  const info = { profile, weight: 1, labels: {} };
  for (const policy of CFG.policies) {
    const router = new Router(routingSpec(policy), registry, Array(n).fill(info), new SeededRng(1));
    const inFlight = new Int32Array(n);
    const window: { id: string; index: number }[] = [];
    const step = (req: RoutingRequest): void => {
      const views = new Array<EndpointView>(n);
      for (let i = 0; i < n; i++) {
        views[i] = Object.freeze({
          id: `e${i}`,
          index: i,
          pool: 'm',
          healthy: true,
          circuit: 'closed' as const,
          inFlight: inFlight[i]!,
          maxConcurrency: 1024,
          metrics: null,
          info,
        });
      }
      const v = router.route(req, views);
      inFlight[v.index]!++;
      router.firstToken(req.id);
      window.push({ id: req.id, index: v.index });
      if (window.length > 512) {
        const done = window.shift()!;
        inFlight[done.index]!--;
        router.finished(done.id, { ok: true, cachedTokens: null, outputTokens: 256 });
      }
    };
    // Fill: fresh prompts until every endpoint's share of the index is at its capacity.
    const full = (): boolean => {
      const idx = router.prefixIndex();
      if (idx === null) return false;
      for (let e = 0; e < n; e++) if (idx.blocks(e) < capacityBlocks) return false;
      return true;
    };
    let id = 0;
    while (!full() && id < 1_000_000) step(makeRequest(id++));
    // Timed: fresh prompts (generated beforehand), so every decision matches, inserts and evicts.
    const timed = Array.from({ length: CFG.decisions }, () => makeRequest(id++));
    const t0 = process.hrtime.bigint();
    for (const r of timed) step(r);
    const t1 = process.hrtime.bigint();
    usPerDecision[policy] = Number(t1 - t0) / 1000 / CFG.decisions;
    if (!full()) throw new Error(`${policy}: the prefix index is not at capacity`);
  }
  // Classification cost: hashing an 8,192-token (≈ 32,768-character) prompt into blocks.
  const text = 'x'.repeat(8192 * 4 - 7) + 'abcdefg';
  const reps = 2000;
  const h0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < reps; i++) sink += promptBlockHashes(text).length;
  const h1 = process.hrtime.bigint();
  if (sink !== reps * blocks) throw new Error('prompt hashing returned the wrong number of blocks');
  return {
    endpoints: n,
    indexBlocksPerEndpoint: capacityBlocks,
    promptTokens: 8192,
    usPerDecision,
    usPerPromptHash: Number(h1 - h0) / 1000 / reps,
  };
}

// ------------------------------------------------------------------------------------------ infinite cache

/** Hit rate of one cache that never evicts, as the engine counts hits. */
async function infiniteCacheHitRate(traceIdx: number): Promise<number> {
  const t = TRACES[traceIdx]!;
  const p = getProfile(PROFILE);
  const seen = new Set<number>();
  let prompt = 0;
  let hit = 0;
  const trace = await openRequestTrace(t.file);
  for await (const r of trace.records) {
    if (r.inputTokens + r.outputTokens > p.maxModelLen) continue; // rejected: not in the sim's rate either
    const hashes = engineBlockHashes(r, p.blockSize) ?? [];
    const limit = Math.min(hashes.length, Math.floor((r.inputTokens - 1) / p.blockSize));
    let k = 0;
    while (k < limit && seen.has(hashes[k]!)) k++;
    for (const h of hashes) seen.add(h);
    prompt += r.inputTokens;
    hit += k * p.blockSize;
  }
  return hit / prompt;
}

// ------------------------------------------------------------------------------------------ report

interface TraceReport {
  readonly name: string;
  readonly infiniteHitRate: number;
  readonly capacity: Record<string, CapacityResult>;
  readonly capacityAbsolute: Record<string, CapacityResult>;
  readonly fixed: Record<string, FixedResult>;
  readonly fixedScale: number;
  /** Each policy replayed at the trace's recorded rate (×1). */
  readonly recorded: Record<string, FixedResult>;
}

/** Both capacities on a trace's held-out window. */
interface HeldOutReport {
  readonly name: string;
  readonly window: { readonly startS: number; readonly endS: number };
  readonly capacity: Record<string, CapacityResult>;
  readonly capacityAbsolute: Record<string, CapacityResult>;
}

const policyName = (p: string): string => (p === 'predicted-ttft' ? '**predicted-ttft** (default)' : p);
const capText = (c: CapacityResult): string =>
  c.rate_scale === 0 ? '< ×1/64' : `${c.requests_per_s.toFixed(2)} (×${c.rate_scale.toFixed(3)})`;
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : 'baseline 0');

/** The default's lead over DualMap under each SLO. */
function dualmapLead(
  name: string,
  rel: Record<string, CapacityResult>,
  abs: Record<string, CapacityResult>,
): string {
  const r = (m: Record<string, CapacityResult>, p: string): number => m[p]?.requests_per_s ?? 0;
  return `- ${name}: default vs dualmap ${ratio(r(rel, 'predicted-ttft'), r(rel, 'dualmap'))} under the relative SLO, ${ratio(r(abs, 'predicted-ttft'), r(abs, 'dualmap'))} under the absolute one; vs round-robin ${ratio(r(rel, 'predicted-ttft'), r(rel, 'round-robin'))}, resp. ${ratio(r(abs, 'predicted-ttft'), r(abs, 'round-robin'))}`;
}

const pct = (x: number | null): string => (x === null || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(1)} %`);

function traceTable(t: TraceReport): string {
  const cap = (p: string): number => t.capacity[p]?.requests_per_s ?? 0;
  const ideal = cap(POOLED);
  const rows = [...CFG.policies, POOLED].map((p) => {
    const f = t.fixed[p]!;
    const r = t.recorded[p]!;
    return `| ${policyName(p)} | ${capText(t.capacity[p]!)} | ${ideal > 0 ? pct(cap(p) / ideal) : '—'} | ${capText(t.capacityAbsolute[p]!)} | ${pct(r.prefix_hit_rate)} | ${pct(f.prefix_hit_rate)} | ${f.ttft_p99_ms.toFixed(0)} | ${pct(f.slo_attainment)} | ${f.load_imbalance.toFixed(2)} |`;
  });
  return [
    `**${t.name}** — infinite single cache hit rate ${pct(t.infiniteHitRate)}; fixed rate ×${t.fixedScale.toFixed(3)} of the trace (${t.fixed['predicted-ttft']?.requests_per_s.toFixed(2)} req/s)`,
    '',
    '| policy | SLO capacity, req/s (rate scale) | of pooled ideal | absolute-SLO capacity, req/s (rate scale) | hit rate ×1 | hit rate, fixed rate | p99 TTFT (ms), fixed rate | SLO attainment, fixed rate | load imbalance, fixed rate |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

function targets(t: TraceReport): string[] {
  const cap = (p: string): number => t.capacity[p]?.requests_per_s ?? 0;
  const d = cap('predicted-ttft');
  const rr = cap('round-robin');
  const bestPrefix = Math.max(cap('prefix-threshold'), cap('dualmap'));
  const ideal = cap(POOLED);
  const hit = t.recorded['predicted-ttft']?.prefix_hit_rate ?? 0;
  const hitFixed = t.fixed['predicted-ttft']?.prefix_hit_rate ?? 0;
  const mark = (ok: boolean): string => (ok ? 'met' : '**not met**');
  return [
    `- ${t.name}: default vs round-robin ${ratio(d, rr)} (target ≥ 1.5×: ${mark(rr === 0 ? d > 0 : d >= 1.5 * rr)}); vs the better of prefix-threshold and dualmap ${ratio(d, bestPrefix)} (≥ 1.1×: ${mark(d >= 1.1 * bestPrefix)}); of the pooled ideal ${pct(ideal > 0 ? d / ideal : Number.NaN)} (≥ 85 %: ${mark(d >= 0.85 * ideal)}); hit rate at the recorded rate ${pct(hit)} vs infinite ${pct(t.infiniteHitRate)} (within 10 %: ${mark(hit >= 0.9 * t.infiniteHitRate)}; the pooled ideal's ${pct(t.recorded[POOLED]?.prefix_hit_rate ?? null)}); at the fixed rate ${pct(hitFixed)}`,
  ];
}

function heldOutTable(h: HeldOutReport): string {
  const rows = [...CFG.policies, POOLED].map(
    (p) => `| ${policyName(p)} | ${capText(h.capacity[p]!)} | ${capText(h.capacityAbsolute[p]!)} |`,
  );
  return [
    `**${h.name}, held out** — arrivals in [${h.window.startS}, ${h.window.endS}) s only, replayed alone`,
    '',
    '| policy | SLO capacity, req/s (rate scale) | absolute-SLO capacity, req/s (rate scale) |',
    '|---|---:|---:|',
    ...rows,
  ].join('\n');
}

function render(
  traces: readonly TraceReport[],
  heldOut: readonly HeldOutReport[],
  cost: CostResult,
  wallS: number,
): string {
  const date = new Date().toISOString().slice(0, 10);
  const costRows = Object.entries(cost.usPerDecision).map(
    ([p, us]) => `| ${policyName(p)} | ${us.toFixed(2)} |`,
  );
  return [
    `Generated by \`npm run bench:routing\` on ${date}, ${describeMachine()}; ${wallS.toFixed(0)} s wall.`,
    `${REPLICAS} replicas of \`${PROFILE}\`, engine metrics scraped every ${CFG.scrapeMs} ms, seed 1. SLO (relative): TTFT ≤ ${SLOS.relative.ttftScale}× the request's own idle, cold-cache TTFT on one replica. Absolute SLO: TTFT ≤ ${SLOS.absolute.ttftMs} ms and TPOT ≤ ${SLOS.absolute.tpotMs} ms. Capacity = highest rate with ≥ ${(CFG.target * 100).toFixed(0)} % attainment (${CFG.iterations} bisection steps for the relative SLO on the whole trace, ${CFG.iterationsExtra} for the absolute SLO and the held-out window; \`< ×1/64\` = not met even at 1/64 of the trace's rate). Fixed-rate columns at ${CFG.fixed} × the default policy's capacity under the relative SLO, judged by it; "×1" = the trace replayed at its recorded rate.`,
    '',
    ...traces.flatMap((t) => [traceTable(t), '']),
    ...heldOut.flatMap((h) => [heldOutTable(h), '']),
    'Default vs DualMap, SLO capacity:',
    '',
    ...traces.map((t) => dualmapLead(t.name, t.capacity, t.capacityAbsolute)),
    ...heldOut.map((h) => dualmapLead(`${h.name}, held out`, h.capacity, h.capacityAbsolute)),
    '',
    'Targets (default = `predicted-ttft`, relative SLO):',
    '',
    ...traces.flatMap(targets),
    '',
    `Decision cost at ${cost.endpoints} endpoints, prefix index at capacity (${cost.indexBlocksPerEndpoint} blocks of ${PROMPT_BLOCK_TOKENS} tokens per endpoint), ${cost.promptTokens}-token prompts, µs per request (views + route + first token + finish; target ≤ 20 µs for the default):`,
    '',
    '| policy | µs / request |',
    '|---|---:|',
    ...costRows,
    '',
    `Hashing one ${cost.promptTokens}-token prompt into prefix blocks (classification, once per request): ${cost.usPerPromptHash.toFixed(1)} µs.`,
  ].join('\n');
}

// ------------------------------------------------------------------------------------------ main

const log = (msg: string): void => {
  process.stderr.write(`[bench:routing] ${msg}\n`);
};

async function main(): Promise<void> {
  const t0 = performance.now();
  for (const t of TRACES) if (!existsSync(t.file)) throw new Error(`missing trace ${t.file}`);
  const policies = [...CFG.policies, POOLED];
  if (!CFG.policies.includes('predicted-ttft'))
    throw new Error('BENCH_ROUTING_POLICIES must include predicted-ttft');
  log(`decision cost (${CFG.decisions} decisions per policy)`);
  const cost = await runChild<CostResult>(SELF, { kind: 'cost' } satisfies Job);
  const capJobs: Extract<Job, { kind: 'capacity' }>[] = [];
  for (const heldOut of [false, true])
    for (const slo of Object.keys(SLOS) as SloKind[])
      TRACES.forEach((t, trace) => {
        if (heldOut && t.heldOut === null) return;
        for (const policy of policies) capJobs.push({ kind: 'capacity', trace, policy, slo, heldOut });
      });
  log(`${capJobs.length} capacity searches, ${CFG.jobs} at a time`);
  const caps = await runLimited(
    capJobs.map((j) => async () => {
      const r = await runChild<CapacityResult>(SELF, j satisfies Job);
      log(
        `${TRACES[j.trace]!.name}${j.heldOut ? ' (held out)' : ''} ${j.slo} ${j.policy}: ${r.requests_per_s.toFixed(2)} req/s (×${r.rate_scale.toFixed(3)})`,
      );
      return r;
    }),
    CFG.jobs,
  );
  const capacityOf = (trace: number, slo: SloKind, heldOut: boolean): Record<string, CapacityResult> => {
    const out: Record<string, CapacityResult> = {};
    capJobs.forEach((j, i) => {
      if (j.trace === trace && j.slo === slo && j.heldOut === heldOut) out[j.policy] = caps[i]!;
    });
    return out;
  };
  const heldOutReports: HeldOutReport[] = [];
  TRACES.forEach((t, trace) => {
    if (t.heldOut === null) return;
    heldOutReports.push({
      name: t.name,
      window: t.heldOut,
      capacity: capacityOf(trace, 'relative', true),
      capacityAbsolute: capacityOf(trace, 'absolute', true),
    });
  });
  const reports: TraceReport[] = [];
  for (let trace = 0; trace < TRACES.length; trace++) {
    const capacity = capacityOf(trace, 'relative', false);
    const fixedScale = CFG.fixed * capacity['predicted-ttft']!.rate_scale;
    log(`${TRACES[trace]!.name}: fixed-rate runs at ×${fixedScale.toFixed(3)}`);
    const fixedRuns = await runLimited(
      policies.map(
        (policy) => () =>
          runChild<FixedResult>(SELF, { kind: 'fixed', trace, policy, scale: fixedScale } satisfies Job),
      ),
      CFG.jobs,
    );
    const fixed: Record<string, FixedResult> = {};
    policies.forEach((p, i) => {
      fixed[p] = fixedRuns[i]!;
    });
    const recordedRuns = await runLimited(
      policies.map(
        (policy) => () =>
          runChild<FixedResult>(SELF, { kind: 'fixed', trace, policy, scale: 1 } satisfies Job),
      ),
      CFG.jobs,
    );
    const recorded: Record<string, FixedResult> = {};
    policies.forEach((p, i) => {
      recorded[p] = recordedRuns[i]!;
    });
    reports.push({
      name: TRACES[trace]!.name,
      infiniteHitRate: await infiniteCacheHitRate(trace),
      capacity,
      capacityAbsolute: capacityOf(trace, 'absolute', false),
      fixed,
      fixedScale,
      recorded,
    });
  }
  const wallS = (performance.now() - t0) / 1000;
  const md = render(reports, heldOutReports, cost, wallS);
  process.stdout.write(`${md}\n`);
  if (CFG.json) writeFileSync(CFG.json, JSON.stringify({ reports, heldOut: heldOutReports, cost }, null, 2));
  if (CFG.docs) {
    writeGeneratedSection(CFG.docs, 'routing', md);
    log(`wrote ${CFG.docs}`);
  }
}

await benchEntry<Job>(runJob, main);
