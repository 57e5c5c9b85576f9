/**
 * @module sim/report
 * One self-contained HTML file for a simulation run: the summary table and inline SVG charts
 * (latency CDFs, load, queues and batches over time, per-replica load, replicas, cache hit rate).
 * No scripts, no external assets: it opens anywhere and can be attached to a review.
 */
import type { SimCharts, SimSummary } from './simulator.js';

export interface ReportMeta {
  readonly title: string;
  /** Lines that say what was run (trace, fleet, policy, seed, SLO). */
  readonly details: readonly string[];
}

type Point = readonly [number, number];
interface Series {
  readonly name: string;
  readonly points: readonly Point[];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 760;
const H = 260;
const M = { left: 64, right: 16, top: 28, bottom: 44 };

/** The report as an HTML document. */
export function renderReport(summary: SimSummary, charts: SimCharts, meta: ReportMeta): string {
  const sections = [
    ...latencyCharts(charts),
    ...loadCharts(charts),
    ...replicaCharts(summary, charts),
    cacheChart(summary, charts),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(meta.title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:820px;color:#222}
h1{font-size:22px}h2{font-size:16px;margin:28px 0 6px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.meta{color:#555}svg text{font:11px system-ui,sans-serif;fill:#333}.legend text{font-size:12px}
</style></head><body>
<h1>${esc(meta.title)}</h1>
<p class="meta">${meta.details.map(esc).join('<br>')}</p>
${summaryTable(summary)}
${sections.join('\n')}
</body></html>
`;
}

type Timeline = SimCharts['timeline'];

/** One field of the timeline as points, leaving out the intervals where it is undefined (NaN). */
function along<K extends keyof Timeline[number]>(t: Timeline, k: K): Point[] {
  return t.map((p) => [p.tS, p[k] as number] as const).filter(([, y]) => Number.isFinite(y)) as Point[];
}

/** The TTFT and end-to-end latency CDFs. */
function latencyCharts(charts: SimCharts): string[] {
  return [
    chart(
      'Time to first token, CDF',
      'TTFT (ms, log scale)',
      'fraction of requests',
      [{ name: 'TTFT', points: charts.ttftCdf }],
      {
        logX: true,
        yMin: 0,
      },
    ),
    chart(
      'End-to-end latency, CDF',
      'end-to-end latency (ms, log scale)',
      'fraction of requests',
      [{ name: 'E2E', points: charts.e2eCdf }],
      {
        logX: true,
        yMin: 0,
      },
    ),
  ];
}

/** Arrivals, completions and rejections over time; the fleet's engine queues and batches. */
function loadCharts(charts: SimCharts): string[] {
  const t = charts.timeline;
  return [
    chart('Load over time', 'simulated time (s)', 'requests per second', [
      { name: 'arrivals', points: along(t, 'arrivalsPerS') },
      { name: 'completions', points: along(t, 'completionsPerS') },
      { name: 'rejections', points: along(t, 'rejectionsPerS') },
    ]),
    chart('Queues and batches over time (fleet total, mean per interval)', 'simulated time (s)', 'requests', [
      { name: 'waiting in engine queues', points: along(t, 'waiting') },
      { name: 'running in batches', points: along(t, 'running') },
    ]),
  ];
}

/** Each replica's load over time and requests served, and the replica count over time. */
function replicaCharts(summary: SimSummary, charts: SimCharts): string[] {
  const t = charts.timeline;
  return [
    chart(
      'Per-replica load over time (running + waiting, mean per interval)',
      'simulated time (s)',
      'requests',
      charts.replicaNames.map((name, i) => ({
        name,
        points: t.map((p) => [p.tS, p.perReplica[i] ?? 0] as const),
      })),
    ),
    barChart(
      'Requests served per replica',
      'requests',
      Object.entries(summary.per_endpoint).map(([k, v]) => [k, v] as const),
    ),
    chart(
      'Replicas over time',
      'simulated time (s)',
      'replicas',
      [{ name: 'replicas', points: along(t, 'replicas') }],
      {
        yMin: 0,
      },
    ),
  ];
}

/** The prefix cache hit rate over time, or a note when the trace carries no block ids. */
function cacheChart(summary: SimSummary, charts: SimCharts): string {
  return summary.prefix_hit_rate === null
    ? '<section><h2>Prefix cache hit rate over time</h2><p>This trace carries no prefix block ids, so no cache hits are simulated.</p></section>'
    : chart(
        'Prefix cache hit rate over time (completed requests)',
        'simulated time (s)',
        'cached prompt tokens (%)',
        [
          {
            name: 'hit rate',
            points: along(charts.timeline, 'hitRate').map(([x, y]) => [x, y * 100] as const),
          },
        ],
        { yMin: 0 },
      );
}

/** `x` with `digits` decimals, or a dash for NaN and infinities (an empty histogram, a 0/0 rate). */
export function fixed(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function summaryTable(s: SimSummary): string {
  const f = fixed;
  const lat = (name: string, p: SimSummary['ttft_ms']) =>
    `<tr><td>${name}</td><td>${f(p.p50)}</td><td>${f(p.p90)}</td><td>${f(p.p99)}</td><td>${f(p.mean)}</td></tr>`;
  const kv: [string, string][] = [
    ['requests (completed / rejected)', `${s.requests} (${s.completed} / ${s.rejected})`],
    ...(s.rejected > 0
      ? ([
          [
            'rejected because',
            Object.entries(s.rejected_by_reason)
              .map(([k, v]) => `${k.replace('_', ' ')}: ${v}`)
              .join(', '),
          ],
        ] as [string, string][])
      : []),
    ['simulated duration', `${f(s.duration_s)} s`],
    ['SLO attainment', `${f(s.slo_attainment * 100, 2)} %`],
    ['goodput', `${f(s.goodput_rps, 2)} req/s`],
    ['throughput', `${f(s.throughput_rps, 2)} req/s, ${f(s.output_tokens_per_s, 0)} output tokens/s`],
    [
      'prefix cache hit rate',
      s.prefix_hit_rate === null ? 'n/a (no block ids in the trace)' : `${f(s.prefix_hit_rate * 100)} %`,
    ],
    ['load imbalance (max ÷ mean requests per replica)', f(s.load_imbalance, 3)],
    ['mean requests in system', f(s.mean_in_system, 2)],
    ['replica-seconds, cost', `${f(s.replica_seconds, 0)}, $${f(s.cost_usd, 2)}`],
  ];
  return `<h2>Summary</h2>
<table><tr><th>latency (ms)</th><th>p50</th><th>p90</th><th>p99</th><th>mean</th></tr>
${lat('time to first token', s.ttft_ms)}${lat('time per output token', s.tpot_ms)}${lat('end to end', s.e2e_ms)}${lat('queueing in engines', s.queue_ms)}${s.scheduling === null ? '' : lat(`queueing in the gateway (${s.scheduling.order})`, s.gateway_queue_ms)}</table>
<table>${kv.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

/** A line chart with axes, ticks, unit labels and a legend. */
function chart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  opts: { logX?: boolean; yMin?: number } = {},
): string {
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return `<section><h2>${esc(title)}</h2><p>No data.</p></section>`;
  const tx = opts.logX ? (x: number) => Math.log10(Math.max(x, 1e-3)) : (x: number) => x;
  let [x0, x1] = extent(pts.map(([x]) => tx(x)));
  let [y0, y1] = extent(pts.map(([, y]) => y));
  if (opts.yMin !== undefined) y0 = Math.min(y0, opts.yMin);
  if (y0 > 0 && !opts.logX) y0 = 0;
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => M.left + ((tx(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;
  let svg = `<svg width="${W}" height="${H + 22 * Math.ceil(series.length / 4)}" role="img" aria-label="${esc(title)}">`;
  // Axes and ticks.
  for (const v of ticks(y0, y1)) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(v)}" y2="${sy(v)}" stroke="#eee"/>`;
    svg += `<text x="${M.left - 6}" y="${sy(v) + 4}" text-anchor="end">${fmt(v)}</text>`;
  }
  for (const v of ticks(x0, x1)) {
    const xv = opts.logX ? 10 ** v : v;
    const px = M.left + ((v - x0) / (x1 - x0)) * pw;
    if (opts.logX && !Number.isInteger(v)) continue;
    svg += `<line x1="${px}" x2="${px}" y1="${M.top + ph}" y2="${M.top + ph + 4}" stroke="#888"/>`;
    svg += `<text x="${px}" y="${M.top + ph + 16}" text-anchor="middle">${fmt(xv)}</text>`;
  }
  svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#888"/>`;
  svg += `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#888"/>`;
  svg += `<text x="${M.left + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`;
  svg += `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points
      .map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join('');
    svg += `<path d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.6"/>`;
  });
  svg += '<g class="legend">';
  series.forEach((s, i) => {
    const lx = M.left + (i % 4) * 180;
    const ly = H + 4 + Math.floor(i / 4) * 20;
    svg += `<rect x="${lx}" y="${ly}" width="14" height="4" fill="${PALETTE[i % PALETTE.length]}"/>`;
    svg += `<text x="${lx + 20}" y="${ly + 6}">${esc(s.name)}</text>`;
  });
  svg += '</g></svg>';
  return `<section><h2>${esc(title)}</h2>${svg}</section>`;
}

function barChart(title: string, yLabel: string, bars: readonly (readonly [string, number])[]): string {
  if (bars.length === 0) return '';
  const max = Math.max(1, ...bars.map(([, v]) => v));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const bw = pw / bars.length;
  let svg = `<svg width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`;
  for (const v of ticks(0, max)) {
    const y = M.top + ph - (v / max) * ph;
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#eee"/>`;
    svg += `<text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${fmt(v)}</text>`;
  }
  bars.forEach(([name, v], i) => {
    const h = (v / max) * ph;
    const x = M.left + i * bw + bw * 0.15;
    svg += `<rect x="${x}" y="${M.top + ph - h}" width="${bw * 0.7}" height="${h}" fill="${PALETTE[0]}"/>`;
    svg += `<text x="${x + bw * 0.35}" y="${M.top + ph + 16}" text-anchor="middle">${esc(name)}</text>`;
  });
  svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#888"/>`;
  svg += `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`;
  svg += '</svg>';
  return `<section><h2>${esc(title)}</h2>${svg}</section>`;
}

function extent(values: readonly number[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

/** About five round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const span = hi - lo;
  const step0 = 10 ** Math.floor(Math.log10(span / 5));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6) ?? step0 * 10;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return v.toPrecision(2);
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
