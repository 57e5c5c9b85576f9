/**
 * @module cli/sim
 * `switchyard sim`: replays a trace through the gateway's routing code and the engine model on a
 * virtual clock, and writes `summary.json` and `requests.jsonl` to `--out`.
 */
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { getProfile } from '../engine-model/profiles.js';
import { ROUTING_PRESETS, routingSpec } from '../router/router.js';
import { type RequestRecord, type SimOptions, type SimPoolSpec, Simulation } from '../sim/simulator.js';
import { type RequestTraceFormat, openRequestTrace } from '../traces/loaders.js';
import type { TraceRecord } from '../traces/record.js';
import { reshape } from '../traces/transform.js';

/** A bad command line: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const SIM_HELP = `Usage: switchyard sim --trace FILE --out DIR [options]

Replays a per-request trace through the gateway's own routing code, with the engine model as each
replica, on a virtual clock. Writes DIR/summary.json and DIR/requests.jsonl (one line per request).

Fleet (one of):
  --config FILE          a gateway config; its emulated endpoints become simulated replicas
  --profile NAME         engine profile of every replica (default qwen2.5-7b-h100)
  --replicas N           replicas in the pool (default 4)

Workload:
  --trace FILE           Mooncake JSONL, Azure LLM inference CSV or BurstGPT CSV (.gz allowed)
  --format F             auto (default), mooncake, azure, burstgpt
  --rate-scale K         replay K times faster (default 1)
  --window START:END     only arrivals in [START, END) seconds of the trace

Policy and measurement:
  --policy NAME          routing preset: ${Object.keys(ROUTING_PRESETS).join(', ')} (default: the config's, else least-outstanding)
  --seed S               seed of every random choice (default 1)
  --scrape-ms MS         engine metrics staleness in routing views (default 0: always fresh)
  --slo-ttft-ms X        TTFT SLO in ms (default: --slo-ttft-scale 5)
  --slo-ttft-scale K     a request meets the SLO when its TTFT ≤ K × its TTFT on an idle replica
  --slo-tpot-ms Y        also require time per output token ≤ Y ms
  -h, --help             this help
`;

export async function sim(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      trace: { type: 'string' },
      format: { type: 'string', default: 'auto' },
      config: { type: 'string' },
      profile: { type: 'string' },
      replicas: { type: 'string' },
      policy: { type: 'string' },
      'rate-scale': { type: 'string' },
      window: { type: 'string' },
      seed: { type: 'string' },
      'scrape-ms': { type: 'string' },
      'slo-ttft-ms': { type: 'string' },
      'slo-ttft-scale': { type: 'string' },
      'slo-tpot-ms': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SIM_HELP);
    return 0;
  }
  if (values.trace === undefined || values.out === undefined) {
    process.stderr.write(`--trace and --out are required\n\n${SIM_HELP}`);
    return 2;
  }
  const format = values.format as RequestTraceFormat | 'auto';
  if (!['auto', 'mooncake', 'azure', 'burstgpt'].includes(format)) {
    process.stderr.write(`unknown --format ${format}\n`);
    return 2;
  }
  const { pools, configPolicy } = fleet(values.config, values.profile, values.replicas);
  const policy = values.policy ?? configPolicy ?? 'least-outstanding';
  const opts: SimOptions = {
    pools,
    routing: routingSpec(policy),
    seed: intOpt(values.seed, 'seed') ?? 1,
    scrapeIntervalMs: numOpt(values['scrape-ms'], 'scrape-ms') ?? 0,
    slo: {
      ...(values['slo-ttft-ms'] ? { ttftMs: numOpt(values['slo-ttft-ms'], 'slo-ttft-ms') } : {}),
      ttftScale: numOpt(values['slo-ttft-scale'], 'slo-ttft-scale') ?? 5,
      ...(values['slo-tpot-ms'] ? { tpotMs: numOpt(values['slo-tpot-ms'], 'slo-tpot-ms') } : {}),
    },
  };
  const trace = await openRequestTrace(values.trace, format);
  if (!trace.info.hasBlockHashes) {
    process.stderr.write(
      `note: ${trace.info.format} traces carry no prefix block ids; no cache hits are simulated\n`,
    );
  }
  mkdirSync(values.out, { recursive: true });
  const out = createWriteStream(join(values.out, 'requests.jsonl'));
  const rateScale = numOpt(values['rate-scale'], 'rate-scale');
  const window = windowOpt(values.window);
  const records = reshape(trace.records, {
    ...(rateScale ? { rateScale } : {}),
    ...(window ? { window } : {}),
  });
  const started = performance.now();
  const progress = progressLine(records);
  const summary = await new Simulation(opts).run(progress, (r: RequestRecord) => {
    out.write(`${JSON.stringify(r)}\n`);
  });
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  const result = {
    trace: values.trace,
    format: trace.info.format,
    policy,
    seed: opts.seed,
    ...summary,
  };
  writeFileSync(join(values.out, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
  const wall = (performance.now() - started) / 1000;
  process.stdout.write(summaryTable(result, wall));
  return 0;
}

function fleet(
  config: string | undefined,
  profile: string | undefined,
  replicas: string | undefined,
): { pools: SimPoolSpec[]; configPolicy?: string } {
  if (config !== undefined) {
    const cfg = loadConfigFile(config);
    const pools: SimPoolSpec[] = [];
    for (const [name, def] of Object.entries(cfg.pools)) {
      const endpoints = def.endpoints.flatMap((ep) =>
        ep.kind === 'emulated'
          ? [{ name: ep.name, profile: getProfile(ep.profile), maxConcurrency: ep.maxConcurrency }]
          : [],
      );
      if (endpoints.length > 0) pools.push({ name, aliases: def.aliases, endpoints });
    }
    if (pools.length === 0) throw new UsageError(`${config}: no pool has emulated endpoints to simulate`);
    const p = cfg.router.profile;
    return { pools, ...(typeof p === 'string' ? { configPolicy: p } : {}) };
  }
  const prof = getProfile(profile ?? 'qwen2.5-7b-h100');
  const n = intOpt(replicas, 'replicas') ?? 4;
  const endpoints = Array.from({ length: n }, (_, i) => ({
    name: `replica-${i}`,
    profile: prof,
    maxConcurrency: 1 << 30,
  }));
  return { pools: [{ name: prof.model, endpoints }] };
}

/** Passes records through, printing simulated time and requests now and then (plain lines, stderr). */
async function* progressLine(records: AsyncIterable<TraceRecord>): AsyncGenerator<TraceRecord> {
  let n = 0;
  let last = performance.now();
  for await (const r of records) {
    n++;
    const now = performance.now();
    if (now - last > 2000) {
      last = now;
      process.stderr.write(`… ${n} requests, simulated ${(r.arrivalMs / 1000).toFixed(0)} s\n`);
    }
    yield r;
  }
}

function summaryTable(
  s: Record<string, unknown> & Awaited<ReturnType<Simulation['run']>>,
  wallS: number,
): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const row = (name: string, p: { p50: number; p90: number; p99: number; mean: number }) =>
    `| ${name} | ${f(p.p50)} | ${f(p.p90)} | ${f(p.p99)} | ${f(p.mean)} |\n`;
  return (
    `\n${s.requests} requests (${s.completed} completed, ${s.rejected} rejected) over ${f(s.duration_s)} s simulated, in ${f(wallS)} s\n\n` +
    '| metric (ms) | p50 | p90 | p99 | mean |\n|---|---:|---:|---:|---:|\n' +
    row('TTFT', s.ttft_ms) +
    row('TPOT', s.tpot_ms) +
    row('end to end', s.e2e_ms) +
    row('queueing', s.queue_ms) +
    `\nSLO attainment ${f(s.slo_attainment * 100)} %, throughput ${f(s.throughput_rps, 2)} req/s, ` +
    `${f(s.output_tokens_per_s, 0)} output tok/s, prefix hit rate ${s.prefix_hit_rate === null ? 'n/a (no block ids)' : `${f(s.prefix_hit_rate * 100)} %`}, ` +
    `load imbalance ${f(s.load_imbalance, 2)}, cost $${f(s.cost_usd, 2)}\n`
  );
}

function numOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative number, got '${v}'`);
  return n;
}

function intOpt(v: string | undefined, name: string): number | undefined {
  const n = numOpt(v, name);
  if (n !== undefined && !Number.isInteger(n))
    throw new UsageError(`--${name} must be a whole number, got '${v}'`);
  return n;
}

function windowOpt(v: string | undefined): { startS: number; endS: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(v);
  if (m === null || Number(m[2]) <= Number(m[1]))
    throw new UsageError(`--window must be START:END seconds with END > START, got '${v}'`);
  return { startS: Number(m[1]), endS: Number(m[2]) };
}
