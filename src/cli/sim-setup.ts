/**
 * @module cli/sim-setup
 * What every `switchyard sim` subcommand shares, from the parsed flags: the simulation's options
 * (fleet, routing, SLO, scheduling) and an opener of the trace.
 */
import { registerProfileFiles } from '../engine-model/profile-file.js';
import { routingSpec, withModelCorrection } from '../router/presets.js';
import type { RoutingProfileSpec } from '../router/router.js';
import type { SimOptions, SimPoolSpec } from '../sim/simulator.js';
import { type RequestTraceFormat, firstLine, openRequestTrace } from '../traces/loaders.js';
import type { TraceInfo, TraceRecord } from '../traces/record.js';
import { SERVEGEN_HEADER, servegenTrace } from '../traces/servegen.js';
import { reshape, tag } from '../traces/transform.js';
import { fleet, profileFlags } from './sim-fleet.js';
import {
  UsageError,
  type Values,
  correctionOpt,
  intOpt,
  mismatchOpt,
  numOpt,
  positiveIntOpt,
  schedulingOpt,
  windowOpt,
} from './sim-options.js';

/** What every sim subcommand shares: the fleet, the policy and SLO options, and a trace opener. */
export interface Setup {
  readonly values: Values;
  readonly out: string;
  readonly base: SimOptions;
  readonly policy: string;
  /** A routing profile as the flags shape it (`--correction`). */
  shapeRouting(spec: RoutingProfileSpec): RoutingProfileSpec;
  /** Opens the trace afresh (each run streams it again), reshaped by the window and `rateScale`. */
  open(rateScale?: number): Promise<{ info: TraceInfo; records: AsyncIterable<TraceRecord> }>;
}

/** The trace file and how to read it: a per-request format, or null for a ServeGen window file. */
interface TraceSource {
  readonly path: string;
  readonly perRequest: RequestTraceFormat | 'auto' | null;
  readonly lengthsFrom: string | undefined;
  readonly rateFactor: number | undefined;
}

export async function prepare(values: Values, tracePath: string, out: string): Promise<Setup> {
  const source = await traceSource(values, tracePath);
  const { base, policy, shapeRouting } = simOptions(values);
  const batchShare = numOpt(values['batch-share'], 'batch-share');
  if (batchShare !== undefined && batchShare > 1)
    throw new UsageError(`--batch-share must be in [0, 1], got '${values['batch-share']}'`);
  const scale = numOpt(values['rate-scale'], 'rate-scale') ?? 1;
  const window = windowOpt(values.window);
  return {
    values,
    out,
    base,
    policy,
    shapeRouting,
    open: traceOpener(values, source, base, { batchShare, scale, window }),
  };
}

/** --format (auto-detecting a ServeGen header), --lengths-from and --rate-factor, checked together. */
async function traceSource(values: Values, tracePath: string): Promise<TraceSource> {
  let format = values.format as RequestTraceFormat | 'servegen' | 'auto';
  if (!['auto', 'mooncake', 'azure', 'burstgpt', 'servegen'].includes(format)) {
    throw new UsageError(`unknown --format ${format}`);
  }
  if (format === 'auto' && (await firstLine(tracePath)) === SERVEGEN_HEADER) format = 'servegen';
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
  return { path: tracePath, perRequest: format === 'servegen' ? null : format, lengthsFrom, rateFactor };
}

/** The fleet, its routing policy, the SLO, the scheduling options and the engines' mismatch. */
function simOptions(values: Values): {
  base: SimOptions;
  policy: string;
  shapeRouting: Setup['shapeRouting'];
} {
  registerProfileFiles(values['profile-file'] ?? [], 'cli', '--profile-file');
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
  const correction = correctionOpt(values);
  const shapeRouting = (spec: RoutingProfileSpec): RoutingProfileSpec =>
    correction === undefined ? spec : withModelCorrection(spec, correction);
  const routing =
    values.policy === undefined && configRouting !== undefined
      ? routingSpec(configRouting, configProfiles)
      : routingSpec(policy);
  // --policy applies to every pool, over the config's per-pool choices.
  const pools: SimPoolSpec[] =
    values.policy === undefined
      ? shaped.pools.map((p) => (p.routing === undefined ? p : { ...p, routing: shapeRouting(p.routing) }))
      : shaped.pools.map(({ routing: _, ...p }) => p);
  const base: SimOptions = {
    pools,
    routing: shapeRouting(routing),
    seed: intOpt(values.seed, 'seed') ?? 1,
    scrapeIntervalMs: numOpt(values['scrape-ms'], 'scrape-ms') ?? 0,
    slo: {
      ...(values['slo-ttft-ms'] ? { ttftMs: numOpt(values['slo-ttft-ms'], 'slo-ttft-ms') } : {}),
      ttftScale: numOpt(values['slo-ttft-scale'], 'slo-ttft-scale') ?? 5,
      ...(values['slo-tpot-ms'] ? { tpotMs: numOpt(values['slo-tpot-ms'], 'slo-tpot-ms') } : {}),
      ...(shaped.referenceProfile ? { referenceProfile: shaped.referenceProfile } : {}),
    },
    ...schedulingOpt(values),
    ...mismatchOpt(values),
  };
  return { base, policy, shapeRouting };
}

/** {@link Setup.open}: streams the trace afresh on each call, windowed, rescaled and batch-tagged. */
function traceOpener(
  values: Values,
  source: TraceSource,
  base: SimOptions,
  shape: {
    batchShare: number | undefined;
    scale: number;
    window: { startS: number; endS: number } | undefined;
  },
): Setup['open'] {
  const { batchShare, scale, window } = shape;
  let noted = false;
  return async (rateScale = scale) => {
    // ServeGen generates only the windows asked for; per-request traces are cut while streamed.
    const servegen = source.perRequest === null;
    const trace = servegen
      ? await servegenTrace(source.path, source.lengthsFrom!, {
          seed: base.seed ?? 1,
          ...(window ? { window } : {}),
          ...(source.rateFactor !== undefined ? { rateFactor: source.rateFactor } : {}),
        })
      : await openRequestTrace(source.path, source.perRequest ?? 'auto');
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
  };
}
