/**
 * @module cli/sim
 * `switchyard sim`: replays a trace through the gateway's routing code and the engine model on a
 * virtual clock, and writes `summary.json` and `requests.jsonl` to `--out`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { routingSpec } from '../router/presets.js';
import { capacitySearch } from '../sim/capacity.js';
import { fixed, renderReport } from '../sim/report.js';
import { type RequestRecord, type SimSummary, Simulation } from '../sim/simulator.js';
import { withAutoscaling } from './sim-autoscale.js';
import { OPTIONS, SIM_HELP, UsageError, numOpt, windowSpan } from './sim-options.js';
import { JsonlFile, progressLine, queueDetails, summaryTable } from './sim-output.js';
import { type Setup, prepare } from './sim-setup.js';

export { SIM_HELP, UsageError };

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
      routing: setup.shapeRouting(routingSpec(policy)),
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
