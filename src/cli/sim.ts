/**
 * @module cli/sim
 * `switchyard sim`: replays a trace through the gateway's routing code and the engine model on a
 * virtual clock, and writes `summary.json` and `requests.jsonl` to `--out`.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { QUEUE_ORDERS, type SchedulingConfig, schedulingSchema } from '../config/schema.js';
import { getProfile, pooledProfile } from '../engine-model/profiles.js';
import { schedulerOptions } from '../pool/plan.js';
import { simFleetFromConfig } from '../sim/from-config.js';
import { ROUTING_PRESETS, routingSpec } from '../router/presets.js';
import type { RoutingProfileSpec } from '../router/router.js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { AutoscalerSpec } from '../autoscaler/controller.js';
import { SCALING_POLICY_NAMES, createPolicy } from '../autoscaler/policies/index.js';
import { SpotMarket } from '../autoscaler/spot.js';
import type { InstanceType } from '../autoscaler/types.js';
import { instanceTypeSchema } from '../config/schema.js';
import { SeededRng } from '../core/rng.js';
import { arrivalCounter } from '../sim/arrivals.js';
import { capacitySearch } from '../sim/capacity.js';
import { fixed, renderReport } from '../sim/report.js';
import {
  type RequestRecord,
  type SimEndpointSpec,
  type SimOptions,
  type SimPoolSpec,
  type SimSchedulingOptions,
  type SimSummary,
  Simulation,
} from '../sim/simulator.js';
import { type RequestTraceFormat, firstLine, openRequestTrace } from '../traces/loaders.js';
import { SERVEGEN_HEADER, servegenTrace } from '../traces/servegen.js';
import type { TraceInfo, TraceRecord } from '../traces/record.js';
import { reshape, tag } from '../traces/transform.js';

/** A bad command line: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The gateway config's scheduling defaults (the bounds `--queue` gets when not given). */
const DEFAULT_SCHEDULING = schedulingSchema.parse({});

const COMMON_OPTIONS = `Fleet (one of):
  --config FILE          a gateway config; its emulated endpoints become simulated replicas
  --profile NAME         engine profile of every replica (default qwen2.5-7b-h100)
  --replicas N           replicas in the pool (default 4)
  --add-replicas N@S     with --profile: N more replicas start at S seconds and serve after the cold start
  --pooled N             with --profile: each replica is one with N× the compute and KV of the profile
                         (the routing bound of N replicas: one queue, one cache); the SLO stays the profile's
  --max-engine-waiting N with --profile: a replica whose engine has N or more requests waiting takes
                         nothing new (by its metrics, --scrape-ms stale)
  --max-prefilling N     with --profile: a replica with N or more of our requests still prefilling takes
                         nothing new

Workload:
  --trace FILE           Mooncake JSONL, Azure LLM inference CSV, BurstGPT CSV (.gz allowed), or a
                         ServeGen window file (arrivals generated per client, seeded)
  --format F             auto (default), mooncake, azure, burstgpt, servegen
  --lengths-from FILE    ServeGen: per-request trace whose token lengths are cycled through
  --rate-scale K         replay K times faster (default 1)
  --rate-factor F        ServeGen: multiply every client's rate by F, keeping the day's shape in time
                         (default 1)
  --window START:END     only arrivals in [START, END) seconds of the trace
  --spread-ties          spread requests that share a timestamp over the gap to the next one
                         (traces with a rounded clock, e.g. Mooncake's conversation trace)

Policy and measurement:
  --policy NAME          routing preset: ${Object.keys(ROUTING_PRESETS).join(', ')} (default: the config's, else default)
  --seed S               seed of every random choice (default 1)
  --scrape-ms MS         engine metrics staleness in routing views (default 0: always fresh)
  --slo-ttft-ms X        TTFT SLO in ms (default: --slo-ttft-scale 5)
  --slo-ttft-scale K     a request meets the SLO when its TTFT ≤ K × its TTFT on an idle replica
  --slo-tpot-ms Y        also require time per output token ≤ Y ms
  --out DIR              where results are written (required)
  -h, --help             this help

Scheduling (the gateway's admission queue per pool; docs/scheduling.md):
  --queue NAME           queue order: ${QUEUE_ORDERS.join(', ')}, in every pool. Without it a
                         --config fleet queues as its config says; a --profile fleet has no queue,
                         and a request no endpoint can take is rejected (no_endpoint)
  --endpoint-concurrency N
                         every replica takes at most N requests at a time (default: no limit);
                         1 models a serial server. More wait in the gateway queue
  --max-queue N          requests waiting per pool at most (default ${DEFAULT_SCHEDULING.maxQueueLength}); a full queue sheds
                         a less urgent waiting request (batch first) or refuses the newcomer
  --max-wait-ms MS       longest wait before a request is dropped (default ${DEFAULT_SCHEDULING.maxWaitMs}; batch
                         requests ${DEFAULT_SCHEDULING.perClass.batch?.maxWaitMs})
  --batch-share F        mark a share F (0..1) of the requests as batch, by a coin seeded with --seed
  --batch-headroom F     share of the pool's concurrency kept free of batch work (default 0.25)
  --sjf-max-age-ms MS    sjf: a request that has waited MS goes before all younger ones (default 60000)
  --sjf-oracle           sjf: rank by the trace's true output length (a reference; no gateway can)

Autoscaling (docs/autoscaling.md; with --config, pools with a \`scaling\` block are autoscaled as configured):
  --autoscale NAME       with --profile: the pool is autoscaled by policy NAME (${SCALING_POLICY_NAMES.join(', ')});
                         oracle knows the trace's future arrivals (a reference, simulator only)
  --autoscale-options J  the policy's options as a JSON object, as a config's \`scaling.options\`
                         (e.g. '{"targetConcurrency":24}' for kpa)
  --min-replicas A       fewest replicas (default 0: scale to zero)
  --max-replicas B       most replicas (default 16)
  --initial-replicas N   replicas already serving, warm, when the replay starts (default: --min-replicas)
  --catalog FILE         instance types (JSON or YAML list: name, profile, capacity, onDemandUsdPerHour,
                         spotUsdPerHour, spotPreemptionsPerHour, spotNoticeMs, maxReplicas); default:
                         one on-demand type running --profile at its price. Spot types are preempted by
                         a seeded market (solo and waves)
  --max-spot-share F     most of the needed capacity on spot replicas (default 0)
  --max-spot-share-per-type F
                         most of the needed capacity on spot replicas of any one type (default 0.5)
  --replica-rps R        requests/s one replica sustains within the SLO, for rate-sizing policies
                         (default: measured first, the SLO capacity of one replica on the trace's
                         first 30 minutes)
`;

export const SIM_HELP = `Usage: switchyard sim --trace FILE --out DIR [options]
       switchyard sim capacity --trace FILE --out DIR [--slo-target F] [options]
       switchyard sim compare --policies A,B,... --trace FILE --out DIR [options]

Replays a per-request trace through the gateway's own routing code, with the engine model as each
replica, on a virtual clock. Writes DIR/summary.json, DIR/requests.jsonl (one line per request) and
DIR/report.html (charts and the summary in one self-contained file).

  capacity   finds the highest --rate-scale whose SLO attainment stays ≥ --slo-target (default 0.99)
             by bisection; writes DIR/capacity.json
  compare    runs each routing policy on the same trace; writes DIR/compare.json, prints one table

${COMMON_OPTIONS}`;

const OPTIONS = {
  trace: { type: 'string' },
  format: { type: 'string', default: 'auto' },
  'lengths-from': { type: 'string' },
  config: { type: 'string' },
  profile: { type: 'string' },
  replicas: { type: 'string' },
  'add-replicas': { type: 'string' },
  policy: { type: 'string' },
  policies: { type: 'string' },
  'rate-scale': { type: 'string' },
  'rate-factor': { type: 'string' },
  pooled: { type: 'string' },
  'max-engine-waiting': { type: 'string' },
  'max-prefilling': { type: 'string' },
  window: { type: 'string' },
  'spread-ties': { type: 'boolean' },
  seed: { type: 'string' },
  'scrape-ms': { type: 'string' },
  'slo-ttft-ms': { type: 'string' },
  'slo-ttft-scale': { type: 'string' },
  'slo-tpot-ms': { type: 'string' },
  'slo-target': { type: 'string' },
  queue: { type: 'string' },
  'endpoint-concurrency': { type: 'string' },
  'max-queue': { type: 'string' },
  'max-wait-ms': { type: 'string' },
  'batch-share': { type: 'string' },
  'batch-headroom': { type: 'string' },
  'sjf-max-age-ms': { type: 'string' },
  'sjf-oracle': { type: 'boolean' },
  autoscale: { type: 'string' },
  'autoscale-options': { type: 'string' },
  'min-replicas': { type: 'string' },
  'max-replicas': { type: 'string' },
  'initial-replicas': { type: 'string' },
  catalog: { type: 'string' },
  'max-spot-share': { type: 'string' },
  'max-spot-share-per-type': { type: 'string' },
  'replica-rps': { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** What every sim subcommand shares: the fleet, the policy and SLO options, and a trace opener. */
interface Setup {
  readonly values: Values;
  readonly out: string;
  readonly base: SimOptions;
  readonly policy: string;
  /** Opens the trace afresh (each run streams it again), reshaped by the window and `rateScale`. */
  open(rateScale?: number): Promise<{ info: TraceInfo; records: AsyncIterable<TraceRecord> }>;
}

export async function sim(args: string[]): Promise<number> {
  const sub = args[0] === 'capacity' || args[0] === 'compare' ? args[0] : 'run';
  const { values } = parseArgs({ args: sub === 'run' ? args : args.slice(1), options: OPTIONS });
  if (values.help) {
    process.stdout.write(SIM_HELP);
    return 0;
  }
  if (values.trace === undefined || values.out === undefined) {
    process.stderr.write(`--trace and --out are required\n\n${SIM_HELP}`);
    return 2;
  }
  const setup = await withAutoscaling(await prepare(values, values.trace, values.out));
  mkdirSync(setup.out, { recursive: true });
  if (sub === 'capacity') return capacity(setup);
  if (sub === 'compare') return compare(setup);
  return runOnce(setup);
}

async function prepare(values: Values, tracePath: string, out: string): Promise<Setup> {
  let format = values.format as RequestTraceFormat | 'servegen' | 'auto';
  if (!['auto', 'mooncake', 'azure', 'burstgpt', 'servegen'].includes(format)) {
    throw new UsageError(`unknown --format ${format}`);
  }
  if (format === 'auto' && (await firstLine(tracePath)) === SERVEGEN_HEADER) format = 'servegen';
  const perRequest = format === 'servegen' ? null : format;
  const lengthsFrom = values['lengths-from'];
  if (format === 'servegen' && lengthsFrom === undefined) {
    throw new UsageError(
      'a ServeGen window file has no token lengths: name a per-request trace with --lengths-from FILE',
    );
  }
  const rateFactor = numOpt(values['rate-factor'], 'rate-factor');
  if (rateFactor !== undefined && format !== 'servegen')
    throw new UsageError(
      "--rate-factor multiplies a ServeGen file's client rates; replay a trace faster with --rate-scale",
    );
  if (rateFactor === 0) throw new UsageError('--rate-factor must be > 0');
  const {
    pools: fleetPools,
    configRouting,
    configProfiles,
  } = fleet(
    values.config,
    values.profile,
    values.replicas,
    values['add-replicas'],
    positiveIntOpt(values['endpoint-concurrency'], 'endpoint-concurrency'),
    values.queue === undefined,
  );
  const shaped = profileFlags(values, fleetPools);
  // --policy wins; else the config's router profile (a preset or an explicit plugin list); else the default.
  const policy =
    values.policy ??
    (typeof configRouting === 'string' ? configRouting : configRouting ? 'config' : 'default');
  const routing =
    values.policy === undefined && configRouting !== undefined
      ? routingSpec(configRouting, configProfiles)
      : routingSpec(policy);
  // --policy applies to every pool, over the config's per-pool choices.
  const pools = values.policy === undefined ? shaped.pools : shaped.pools.map(({ routing: _, ...p }) => p);
  const base: SimOptions = {
    pools,
    routing,
    seed: intOpt(values.seed, 'seed') ?? 1,
    scrapeIntervalMs: numOpt(values['scrape-ms'], 'scrape-ms') ?? 0,
    slo: {
      ...(values['slo-ttft-ms'] ? { ttftMs: numOpt(values['slo-ttft-ms'], 'slo-ttft-ms') } : {}),
      ttftScale: numOpt(values['slo-ttft-scale'], 'slo-ttft-scale') ?? 5,
      ...(values['slo-tpot-ms'] ? { tpotMs: numOpt(values['slo-tpot-ms'], 'slo-tpot-ms') } : {}),
      ...(shaped.referenceProfile ? { referenceProfile: shaped.referenceProfile } : {}),
    },
    ...schedulingOpt(values),
  };
  const batchShare = numOpt(values['batch-share'], 'batch-share');
  if (batchShare !== undefined && batchShare > 1)
    throw new UsageError(`--batch-share must be in [0, 1], got '${values['batch-share']}'`);
  const scale = numOpt(values['rate-scale'], 'rate-scale') ?? 1;
  const window = windowOpt(values.window);
  let noted = false;
  return {
    values,
    out,
    base,
    policy,
    async open(rateScale = scale) {
      // ServeGen generates only the windows asked for; per-request traces are cut while streamed.
      const servegen = perRequest === null;
      const trace = servegen
        ? await servegenTrace(tracePath, lengthsFrom!, {
            seed: base.seed ?? 1,
            ...(window ? { window } : {}),
            ...(rateFactor !== undefined ? { rateFactor } : {}),
          })
        : await openRequestTrace(tracePath, perRequest ?? 'auto');
      if (!trace.info.hasBlockHashes && !noted) {
        noted = true;
        process.stderr.write(
          `note: ${trace.info.format} traces carry no prefix block ids; no cache hits are simulated\n`,
        );
      }
      const records = reshape(trace.records, {
        rateScale,
        spreadTies: values['spread-ties'] === true,
        ...(window && !servegen ? { window } : {}),
      });
      return {
        info: trace.info,
        records: batchShare === undefined ? records : tag(records, { batchShare, seed: base.seed ?? 1 }),
      };
    },
  };
}

/**
 * `--autoscale NAME`: the --profile pool becomes an autoscaled one (the gateway's controller,
 * planner and policy on the virtual clock). Spot types in the catalog get a seeded market.
 */
async function withAutoscaling(setup: Setup): Promise<Setup> {
  const v = setup.values;
  const name = v.autoscale;
  const flags = [
    'min-replicas',
    'max-replicas',
    'initial-replicas',
    'catalog',
    'max-spot-share',
    'max-spot-share-per-type',
    'replica-rps',
    'autoscale-options',
  ] as const;
  if (name === undefined) {
    const stray = flags.find((f) => v[f] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} goes with --autoscale NAME`);
    return withSpotMarkets(setup);
  }
  if (v.config !== undefined)
    throw new UsageError('--autoscale goes with --profile; with --config, give pools a `scaling` block');
  if (v['add-replicas'] !== undefined) throw new UsageError('--add-replicas and --autoscale do not mix');
  if (v.pooled !== undefined) throw new UsageError('--pooled and --autoscale do not mix');
  if (!(SCALING_POLICY_NAMES as readonly string[]).includes(name))
    throw new UsageError(`unknown --autoscale ${name} (known: ${SCALING_POLICY_NAMES.join(', ')})`);
  const pool = setup.base.pools[0]!;
  const profile = pool.endpoints[0]!.profile;
  const min = intOpt(v['min-replicas'], 'min-replicas') ?? 0;
  const max = positiveIntOpt(v['max-replicas'], 'max-replicas') ?? 16;
  if (max < min) throw new UsageError(`--max-replicas (${max}) is below --min-replicas (${min})`);
  const catalog: InstanceType[] =
    v.catalog === undefined
      ? [
          {
            name: profile.name,
            profile: profile.name,
            capacity: 1,
            onDemandUsdPerHour: profile.costPerHourUsd,
          },
        ]
      : readCatalog(v.catalog);
  const spotShare = numOpt(v['max-spot-share'], 'max-spot-share') ?? 0;
  if (spotShare > 1) throw new UsageError(`--max-spot-share must be in [0, 1], got ${spotShare}`);
  const perType = numOpt(v['max-spot-share-per-type'], 'max-spot-share-per-type') ?? 0.5;
  if (perType > 1) throw new UsageError(`--max-spot-share-per-type must be in [0, 1], got ${perType}`);
  const policyOptions = jsonObjectOpt(v['autoscale-options'], 'autoscale-options');
  const replicaRps = numOpt(v['replica-rps'], 'replica-rps') ?? (await measureReplicaRps(setup, profile));
  let arrivals: ((fromMs: number, toMs: number) => number) | undefined;
  if (name === 'oracle') {
    arrivals = await arrivalCounter((await setup.open()).records);
  }
  const slo = setup.base.slo;
  const autoscaler: AutoscalerSpec = {
    minReplicas: min,
    maxReplicas: max,
    catalog,
    maxSpotShare: spotShare,
    maxSpotSharePerType: perType,
    replicaRps,
    coldStartMs: getProfile(catalog[0]!.profile).coldStartMs,
    slo: { ttftMs: slo?.ttftMs ?? 2000, tpotMs: slo?.tpotMs ?? 100, quantile: 0.9 },
  };
  const scaled: SimPoolSpec = {
    name: pool.name,
    endpoints: [],
    scaling: {
      policy: scalingPolicy(name, policyOptions, { replicas: max, ...(arrivals ? { arrivals } : {}) }),
      autoscaler,
      maxConcurrency: pool.endpoints[0]!.maxConcurrency,
      ...(pool.endpoints[0]!.gate ? { gate: pool.endpoints[0]!.gate } : {}),
      initialReplicas: intOpt(v['initial-replicas'], 'initial-replicas') ?? min,
    },
  };
  process.stderr.write(
    `autoscaling ${pool.name} with ${name}: ${min}–${max} replicas, one replica sustains ${replicaRps.toFixed(3)} req/s\n`,
  );
  return withSpotMarkets({ ...setup, base: { ...setup.base, pools: [scaled] } });
}

/** Autoscaled pools whose catalog has spot prices get a market that preempts them (seeded). */
function withSpotMarkets(setup: Setup): Setup {
  const pools = setup.base.pools.map((p) => {
    const sc = p.scaling;
    if (sc === undefined || sc.spot !== undefined) return p;
    if (!sc.autoscaler.catalog.some((t) => t.spotUsdPerHour !== undefined)) return p;
    const spot = new SpotMarket(sc.autoscaler.catalog, new SeededRng(setup.base.seed ?? 1));
    return { ...p, scaling: { ...sc, spot } };
  });
  return { ...setup, base: { ...setup.base, pools } };
}

function readCatalog(path: string): InstanceType[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`--catalog ${path}: ${(err as Error).message}`);
  }
  const parsed = instanceTypeSchema.array().min(1).safeParse(raw);
  if (!parsed.success)
    throw new UsageError(
      `--catalog ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data as InstanceType[];
}

/** The SLO capacity (≥ 99 %) of one replica on the trace's first 30 minutes, req/s. */
async function measureReplicaRps(setup: Setup, profile: SimEndpointSpec['profile']): Promise<number> {
  const one: SimOptions = {
    ...setup.base,
    pools: [{ name: 'one', endpoints: [{ name: 'r0', profile, maxConcurrency: 1 << 30 }] }],
    scheduling: undefined,
  };
  const found = await capacitySearch(
    async (k) => {
      const records = reshape((await setup.open()).records, {
        rateScale: k,
        window: { startS: 0, endS: 1800 * k },
      });
      return new Simulation(one).run(retarget(records, 'one'));
    },
    { target: 0.99, start: 1 },
  );
  if (!(found.requests_per_s > 0))
    throw new UsageError('one replica meets the SLO at no rate here; give --replica-rps');
  return found.requests_per_s;
}

async function* retarget(records: AsyncIterable<TraceRecord>, model: string): AsyncGenerator<TraceRecord> {
  for await (const r of records) yield { ...r, model };
}

/** One run: summary.json, requests.jsonl and a table on stdout. */
async function runOnce(setup: Setup): Promise<number> {
  const trace = await setup.open();
  const out = new JsonlFile(join(setup.out, 'requests.jsonl'));
  const started = performance.now();
  const simulation = new Simulation(setup.base);
  const summary = await simulation.run(
    progressLine(trace.records, windowSpan(setup.values.window, setup.values['rate-scale'])),
    (r: RequestRecord) => out.write(r),
  );
  out.close();
  const result = {
    trace: setup.values.trace,
    format: trace.info.format,
    policy: setup.policy,
    seed: setup.base.seed,
    ...summary,
  };
  writeFileSync(join(setup.out, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
  const v = setup.values;
  const replicas = setup.base.pools.flatMap((p) =>
    p.scaling !== undefined
      ? [
          `${p.name} autoscaled by ${p.scaling.policy.name}, ${p.scaling.autoscaler.minReplicas}–${p.scaling.autoscaler.maxReplicas} replicas of ${p.scaling.autoscaler.catalog.map((t) => t.name).join(', ')}`,
        ]
      : p.endpoints.map((e) => `${e.name} (${e.profile.name})`),
  );
  const details = [
    `trace ${v.trace} (${trace.info.format})${v.window ? `, window ${v.window} s` : ''}${v['rate-scale'] ? `, rate ×${v['rate-scale']}` : ''}${v['rate-factor'] ? `, client rates ×${v['rate-factor']}` : ''}`,
    `fleet: ${replicas.join(', ')}`,
    `routing policy ${setup.policy}, seed ${setup.base.seed}, metrics staleness ${setup.base.scrapeIntervalMs} ms`,
    `SLO: TTFT ≤ ${setup.base.slo?.ttftMs !== undefined ? `${setup.base.slo.ttftMs} ms` : `${setup.base.slo?.ttftScale ?? 5} × the request's idle-replica TTFT`}${setup.base.slo?.tpotMs !== undefined ? `, TPOT ≤ ${setup.base.slo.tpotMs} ms` : ''}`,
    ...queueDetails(setup.base),
  ];
  writeFileSync(
    join(setup.out, 'report.html'),
    renderReport(summary, simulation.charts(), { title: 'Switchyard simulation report', details }),
  );
  process.stdout.write(summaryTable(result, (performance.now() - started) / 1000));
  process.stdout.write(`\nwrote ${join(setup.out, 'summary.json')}, requests.jsonl and report.html\n`);
  return 0;
}

/** The highest rate scale that meets the SLO target: capacity.json. */
async function capacity(setup: Setup): Promise<number> {
  const target = numOpt(setup.values['slo-target'], 'slo-target') ?? 0.99;
  if (!(target > 0 && target <= 1)) throw new UsageError(`--slo-target must be in (0, 1], got ${target}`);
  const start = numOpt(setup.values['rate-scale'], 'rate-scale') ?? 1;
  const found = await capacitySearch(
    async (k) => {
      const s = await new Simulation(setup.base).run((await setup.open(k)).records);
      process.stderr.write(
        `… rate scale ${k.toFixed(4)}: SLO attainment ${(s.slo_attainment * 100).toFixed(2)} %\n`,
      );
      return s;
    },
    { target, start },
  );
  const result = { trace: setup.values.trace, policy: setup.policy, seed: setup.base.seed, ...found };
  writeFileSync(join(setup.out, 'capacity.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `capacity at ${(target * 100).toFixed(1)} % SLO attainment: rate scale ${found.rate_scale.toFixed(4)}, ` +
      `${found.requests_per_s.toFixed(2)} req/s (attainment ${(found.slo_attainment * 100).toFixed(2)} %)\n`,
  );
  return 0;
}

/** Each policy on the same trace and options: compare.json and one table. */
async function compare(setup: Setup): Promise<number> {
  const names = (setup.values.policies ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (names.length < 1) throw new UsageError('--policies needs at least one routing preset name');
  const rows: Record<string, unknown>[] = [];
  for (const policy of names) {
    const summary = await new Simulation({
      ...setup.base,
      pools: setup.base.pools.map(({ routing: _, ...p }) => p),
      routing: routingSpec(policy),
    }).run((await setup.open()).records);
    rows.push({ policy, ...summary });
  }
  writeFileSync(
    join(setup.out, 'compare.json'),
    `${JSON.stringify({ trace: setup.values.trace, seed: setup.base.seed, results: rows }, null, 2)}\n`,
  );
  const f = fixed;
  let table =
    '| policy | TTFT p50 | TTFT p99 | E2E p99 (ms) | SLO attainment | throughput (req/s) | prefix hit rate | imbalance |\n|---|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const r of rows as unknown as (SimSummary & { policy: string })[]) {
    const hit = r.prefix_hit_rate === null ? 'n/a' : `${f(r.prefix_hit_rate * 100)} %`;
    table += `| ${r.policy} | ${f(r.ttft_ms.p50)} | ${f(r.ttft_ms.p99)} | ${f(r.e2e_ms.p99)} | ${f(r.slo_attainment * 100)} % | ${f(r.throughput_rps, 2)} | ${hit} | ${f(r.load_imbalance, 2)} |\n`;
  }
  process.stdout.write(table);
  return 0;
}

function fleet(
  config: string | undefined,
  profile: string | undefined,
  replicas: string | undefined,
  added: string | undefined,
  concurrency: number | undefined,
  configQueues: boolean,
): {
  pools: SimPoolSpec[];
  configRouting?: string | RoutingProfileSpec;
  configProfiles?: Readonly<Record<string, RoutingProfileSpec>>;
} {
  if (added !== undefined && config !== undefined)
    throw new UsageError('--add-replicas goes with --profile, not --config');
  if (config !== undefined) {
    const cfg = loadConfigFile(config);
    const { pools } = simFleetFromConfig(cfg, { concurrency, queues: configQueues });
    if (pools.length === 0) throw new UsageError(`${config}: no pool has emulated endpoints to simulate`);
    return { pools, configRouting: cfg.router.profile, configProfiles: cfg.router.profiles };
  }
  const prof = getProfile(profile ?? 'qwen2.5-7b-h100');
  const n = intOpt(replicas, 'replicas') ?? 4;
  const limit = concurrency ?? 1 << 30;
  const endpoints: SimEndpointSpec[] = Array.from({ length: n }, (_, i) => ({
    name: `replica-${i}`,
    profile: prof,
    maxConcurrency: limit,
  }));
  const m = added === undefined ? null : /^(\d+)@(\d+(?:\.\d+)?)$/.exec(added);
  if (added !== undefined && m === null)
    throw new UsageError(`--add-replicas must be N@SECONDS, got '${added}'`);
  if (m) {
    for (let i = 0; i < Number(m[1]); i++) {
      endpoints.push({
        name: `replica-${n + i}`,
        profile: prof,
        maxConcurrency: limit,
        startAtMs: Number(m[2]) * 1000,
      });
    }
  }
  return { pools: [{ name: prof.model, endpoints }] };
}

/**
 * Passes records through and shows progress on stderr: a line redrawn in place on a terminal (a
 * bar when the window's end is known), plain lines every few seconds otherwise (logs, CI).
 */
async function* progressLine(
  records: AsyncIterable<TraceRecord>,
  endS?: number,
): AsyncGenerator<TraceRecord> {
  const tty = process.stderr.isTTY === true;
  const every = tty ? 200 : 5000;
  let n = 0;
  let last = performance.now();
  let simulatedS = 0;
  const line = (): string => {
    const known = endS !== undefined && endS > 0;
    const frac = known ? Math.min(1, simulatedS / endS) : 0;
    const bar = known
      ? `[${'#'.repeat(Math.round(frac * 30)).padEnd(30, '.')}] ${(frac * 100).toFixed(0)}% `
      : '';
    return `${bar}simulated ${simulatedS.toFixed(0)} s, ${n} requests`;
  };
  for await (const r of records) {
    n++;
    simulatedS = r.arrivalMs / 1000;
    const now = performance.now();
    if (now - last > every) {
      last = now;
      process.stderr.write(tty ? `\r${line()}\u001b[K` : `${line()}\n`);
    }
    yield r;
  }
  if (tty) process.stderr.write(`\r${line()}\u001b[K\n`);
}

function summaryTable(
  s: Record<string, unknown> & Awaited<ReturnType<Simulation['run']>>,
  wallS: number,
): string {
  const f = fixed;
  const row = (name: string, p: { p50: number; p90: number; p99: number; mean: number }) =>
    `| ${name} | ${f(p.p50)} | ${f(p.p90)} | ${f(p.p99)} | ${f(p.mean)} |\n`;
  return (
    `\n${s.requests} requests (${s.completed} completed, ${s.rejected} rejected) over ${f(s.duration_s)} s simulated, in ${f(wallS)} s\n\n` +
    '| metric (ms) | p50 | p90 | p99 | mean |\n|---|---:|---:|---:|---:|\n' +
    row('TTFT', s.ttft_ms) +
    row('TPOT', s.tpot_ms) +
    row('end to end', s.e2e_ms) +
    row('queueing', s.queue_ms) +
    (s.scheduling === null ? '' : row('gateway queue', s.gateway_queue_ms)) +
    queueLine(s) +
    `\nSLO attainment ${f(s.slo_attainment * 100)} %, throughput ${f(s.throughput_rps, 2)} req/s, ` +
    `${f(s.output_tokens_per_s, 0)} output tok/s, prefix hit rate ${s.prefix_hit_rate === null ? 'n/a (no block ids)' : `${f(s.prefix_hit_rate * 100)} %`}, ` +
    `load imbalance ${f(s.load_imbalance, 2)}, cost $${f(s.cost_usd, 2)}\n` +
    scalingLine(s)
  );
}

/** What the autoscalers did, one line (nothing without an autoscaled pool). */
function scalingLine(s: SimSummary): string {
  const a = s.autoscaling;
  if (a === null) return '';
  const f = fixed;
  return (
    `autoscaling (${a.policy}): ${f(s.replica_seconds / 3600, 2)} replica-hours, ${s.cold_starts} cold starts, ` +
    `${a.scale_changes} target changes, at most ${a.max_replicas} replicas, ${a.spot_preemptions} spot preemptions; ` +
    `${a.cold_start_waits} requests met a pool with no ready replica (their wait p99 ${f(a.cold_start_wait_ms.p99, 0)} ms)\n`
  );
}

function queueDetails(o: SimOptions): string[] {
  const line = (q: SimSchedulingOptions): string => {
    const batchWait = q.bounds.perClass?.batch?.maxWaitMs;
    return `gateway queue ${q.order}: at most ${q.bounds.maxLength} waiting, ${q.bounds.perClass?.normal?.maxWaitMs ?? q.bounds.maxWaitMs} ms${batchWait !== undefined ? ` (batch ${batchWait} ms)` : ''}`;
  };
  if (o.scheduling !== undefined) return [`${line(o.scheduling)} in every pool`];
  return o.pools.flatMap((p) =>
    p.scheduling === undefined ? [] : [`pool ${p.name}: ${line(p.scheduling)}`],
  );
}

/** What the gateway queues did, one line (nothing without scheduling). */
function queueLine(s: SimSummary): string {
  const q = s.scheduling;
  if (q === null) return '';
  const drops = Object.entries(q.dropped_by_reason)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return `\ngateway queue (${q.order}): ${q.queued} requests waited, at most ${q.max_waiting} at once; dropped: ${drops || 'none'}\n`;
}

/**
 * JSON lines written in 64 KiB batches with synchronous writes: memory stays bounded however fast
 * the simulation produces records (a stream would buffer them until the event loop turned).
 */
class JsonlFile {
  private readonly fd: number;
  private buf = '';

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  write(obj: unknown): void {
    this.buf += `${JSON.stringify(obj)}\n`;
    if (this.buf.length >= 65_536) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.buf.length > 0) writeSync(this.fd, this.buf);
    this.buf = '';
  }
}

/** Simulated seconds a windowed replay spans (for the progress bar); undefined without a window. */
function windowSpan(window: string | undefined, scale: string | undefined): number | undefined {
  const w = windowOpt(window);
  return w ? (w.endS - w.startS) / (numOpt(scale, 'rate-scale') ?? 1) : undefined;
}

function numOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative number, got '${v}'`);
  return n;
}

/** `--queue` and its bounds as SimOptions (nothing without `--queue`). */
function schedulingOpt(values: Values): Pick<SimOptions, 'scheduling'> {
  const order = values.queue;
  const maxLength = intOpt(values['max-queue'], 'max-queue');
  const maxWaitMs = numOpt(values['max-wait-ms'], 'max-wait-ms');
  const headroom = numOpt(values['batch-headroom'], 'batch-headroom');
  const sjfMaxAgeMs = numOpt(values['sjf-max-age-ms'], 'sjf-max-age-ms');
  const oracle = values['sjf-oracle'] === true;
  if (order === undefined) {
    if (maxLength !== undefined || maxWaitMs !== undefined)
      throw new UsageError('--max-queue and --max-wait-ms bound the queue that --queue NAME turns on');
    if (headroom !== undefined || sjfMaxAgeMs !== undefined || oracle)
      throw new UsageError(
        '--batch-headroom, --sjf-max-age-ms and --sjf-oracle set the queue that --queue NAME turns on',
      );
    return {};
  }
  if (headroom !== undefined && headroom > 1)
    throw new UsageError(`--batch-headroom must be in [0, 1], got '${values['batch-headroom']}'`);
  if ((sjfMaxAgeMs !== undefined || oracle) && order !== 'sjf')
    throw new UsageError('--sjf-max-age-ms and --sjf-oracle go with --queue sjf');
  if (!(QUEUE_ORDERS as readonly string[]).includes(order))
    throw new UsageError(`unknown --queue ${order} (known: ${QUEUE_ORDERS.join(', ')})`);
  // The gateway's own defaults for what is not given; EDF deadlines stay the SLO's (no ttftDeadlineMs).
  const cfg: SchedulingConfig = schedulingSchema.parse({
    queue: order,
    ...(maxLength !== undefined ? { maxQueueLength: maxLength } : {}),
    ...(maxWaitMs !== undefined ? { maxWaitMs } : {}),
    ...(headroom !== undefined ? { batchHeadroom: headroom } : {}),
  });
  return {
    scheduling: {
      ...schedulerOptions(cfg),
      defaultPriority: cfg.defaultPriority,
      ...(sjfMaxAgeMs !== undefined ? { sjfMaxAgeMs } : {}),
      ...(oracle ? { oracleSizes: true } : {}),
    },
  };
}

function positiveIntOpt(v: string | undefined, name: string): number | undefined {
  const n = intOpt(v, name);
  if (n === 0) throw new UsageError(`--${name} must be at least 1`);
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

/** A JSON object flag (e.g. --autoscale-options); undefined when absent. */
function jsonObjectOpt(v: string | undefined, name: string): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new UsageError(`--${name} must be a JSON object, got '${v}'`);
  return parsed as Record<string, unknown>;
}

/** `createPolicy`, with a bad option (a policy's own check) reported as a usage error. */
function scalingPolicy(
  name: string,
  options: Record<string, unknown> | undefined,
  ctx: Parameters<typeof createPolicy>[2],
): ReturnType<typeof createPolicy> {
  try {
    return createPolicy(name, options ?? {}, ctx);
  } catch (err) {
    throw new UsageError(`--autoscale ${name}: ${(err as Error).message}`);
  }
}

/**
 * The --profile fleet flags that reshape its replicas: --pooled (each replica N× one, judged
 * against the unpooled profile's SLO) and the --max-engine-waiting / --max-prefilling gates.
 */
function profileFlags(
  values: Values,
  pools: SimPoolSpec[],
): { pools: SimPoolSpec[]; referenceProfile?: SimEndpointSpec['profile'] } {
  const n = positiveIntOpt(values.pooled, 'pooled');
  const waiting = positiveIntOpt(values['max-engine-waiting'], 'max-engine-waiting');
  const prefilling = positiveIntOpt(values['max-prefilling'], 'max-prefilling');
  if (n === undefined && waiting === undefined && prefilling === undefined) return { pools };
  if (values.config !== undefined)
    throw new UsageError(
      '--pooled, --max-engine-waiting and --max-prefilling go with --profile (a config sets its endpoints)',
    );
  const gate =
    waiting !== undefined || prefilling !== undefined
      ? {
          gate: {
            maxEngineWaiting: waiting ?? null,
            maxKvUsage: null,
            ...(prefilling !== undefined ? { maxPrefilling: prefilling } : {}),
          },
        }
      : {};
  const base = pools[0]!.endpoints[0]!.profile;
  const profile = n === undefined ? base : pooledProfile(base, n);
  return {
    pools: pools.map((p) => ({
      ...p,
      endpoints: p.endpoints.map((e) => ({ ...e, profile, ...gate })),
    })),
    ...(n !== undefined ? { referenceProfile: base } : {}),
  };
}
