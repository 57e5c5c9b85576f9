/**
 * @module cli/sim-output
 * What `switchyard sim` writes besides JSON: the progress line, the summary table on stdout, the
 * report's queue lines, and the requests.jsonl writer.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { fixed } from '../sim/report.js';
import type { SimOptions, SimSchedulingOptions, SimSummary, Simulation } from '../sim/simulator.js';
import type { TraceRecord } from '../traces/record.js';

/**
 * Passes records through and shows progress on stderr: a line redrawn in place on a terminal (a
 * bar when the window's end is known), plain lines every few seconds otherwise (logs, CI).
 */
export async function* progressLine(
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

export function summaryTable(
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

export function queueDetails(o: SimOptions): string[] {
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
export class JsonlFile {
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
