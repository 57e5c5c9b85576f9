/**
 * @module cli/sim-options
 * `switchyard sim`'s command line: its help text, its flags, and the parsers of their values.
 */
import type { parseArgs } from 'node:util';
import { QUEUE_ORDERS, type SchedulingConfig, schedulingSchema } from '../config/schema.js';
import { SCALING_POLICY_NAMES } from '../autoscaler/policies/index.js';
import { schedulerOptions } from '../pool/plan.js';
import { ROUTING_PRESETS } from '../router/presets.js';
import type { SimOptions } from '../sim/simulator.js';

/** A bad command line: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The gateway config's scheduling defaults (the bounds `--queue` gets when not given). */
const DEFAULT_SCHEDULING = schedulingSchema.parse({});

const COMMON_OPTIONS = `Fleet (one of):
  --config FILE          a gateway config; its emulated endpoints become simulated replicas
  --profile NAME         engine profile of every replica (default qwen2.5-7b-h100)
  --profile-file FILE    load an engine profile file (e.g. from \`switchyard calibrate\`), so that
                         --profile, a --catalog or a --config can name its profile; repeatable
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
  --correction on|off    the cost model's online correction from observed latencies (the
                         predicted-ttft scorer's \`correction\`; default: the policy's own, off)
  --mismatch X           each replica's engine differs from the profile the router believes: every
                         step-time constant off by a seeded factor in [1 − X, 1 + X] (e.g. 0.3)
  --mismatch-seed N      seed of those factors (default 1)
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

export const OPTIONS = {
  trace: { type: 'string' },
  format: { type: 'string', default: 'auto' },
  'lengths-from': { type: 'string' },
  config: { type: 'string' },
  profile: { type: 'string' },
  'profile-file': { type: 'string', multiple: true },
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
  correction: { type: 'string' },
  mismatch: { type: 'string' },
  'mismatch-seed': { type: 'string' },
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

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** Simulated seconds a windowed replay spans (for the progress bar); undefined without a window. */
export function windowSpan(window: string | undefined, scale: string | undefined): number | undefined {
  const w = windowOpt(window);
  return w ? (w.endS - w.startS) / (numOpt(scale, 'rate-scale') ?? 1) : undefined;
}

export function numOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative number, got '${v}'`);
  return n;
}

/** `--mismatch` and `--mismatch-seed` as SimOptions. */
export function mismatchOpt(values: Values): Pick<SimOptions, 'mismatch'> {
  const scale = numOpt(values.mismatch, 'mismatch');
  const seed = intOpt(values['mismatch-seed'], 'mismatch-seed');
  if (scale === undefined) {
    if (seed !== undefined) throw new UsageError('--mismatch-seed goes with --mismatch X');
    return {};
  }
  if (scale >= 1) throw new UsageError(`--mismatch must be in [0, 1), got '${values.mismatch}'`);
  return { mismatch: { scale, ...(seed !== undefined ? { seed } : {}) } };
}

/** `--correction on|off`; undefined when absent (the policy's own setting). */
export function correctionOpt(values: Values): boolean | undefined {
  const v = values.correction;
  if (v === undefined) return undefined;
  if (v !== 'on' && v !== 'off') throw new UsageError(`--correction must be on or off, got '${v}'`);
  return v === 'on';
}

/** `--queue` and its bounds as SimOptions (nothing without `--queue`). */
export function schedulingOpt(values: Values): Pick<SimOptions, 'scheduling'> {
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

export function positiveIntOpt(v: string | undefined, name: string): number | undefined {
  const n = intOpt(v, name);
  if (n === 0) throw new UsageError(`--${name} must be at least 1`);
  return n;
}

export function intOpt(v: string | undefined, name: string): number | undefined {
  const n = numOpt(v, name);
  if (n !== undefined && !Number.isInteger(n))
    throw new UsageError(`--${name} must be a whole number, got '${v}'`);
  return n;
}

export function windowOpt(v: string | undefined): { startS: number; endS: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(v);
  if (m === null || Number(m[2]) <= Number(m[1]))
    throw new UsageError(`--window must be START:END seconds with END > START, got '${v}'`);
  return { startS: Number(m[1]), endS: Number(m[2]) };
}

/** A JSON object flag (e.g. --autoscale-options); undefined when absent. */
export function jsonObjectOpt(v: string | undefined, name: string): Record<string, unknown> | undefined {
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
