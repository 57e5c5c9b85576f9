/**
 * @module adapters/engines/metrics-mapping
 * Normalises engine metrics into {@link EndpointMetrics} through one mapping table per engine type,
 * so policies read meanings (waiting, running, KV use) and never engine-specific metric names.
 */
import type { EndpointMetrics } from '../../framework/endpoint.js';

/** Which engine metric carries each normalised field. */
export interface MetricsMapping {
  readonly running: string;
  readonly waiting: string;
  readonly kvUsage: string;
  /** Multiply the raw KV value by this to get 0..1 (some engines report percent). */
  readonly kvScale: number;
}

/** Mapping table per engine type; engines without one (plain OpenAI APIs) are not scraped. */
export const METRICS_MAPPINGS: Readonly<Record<string, MetricsMapping>> = {
  vllm: {
    running: 'vllm:num_requests_running',
    waiting: 'vllm:num_requests_waiting',
    kvUsage: 'vllm:kv_cache_usage_perc',
    kvScale: 1,
  },
  sglang: {
    running: 'sglang:num_running_reqs',
    waiting: 'sglang:num_queue_reqs',
    kvUsage: 'sglang:token_usage',
    kvScale: 1,
  },
};

/**
 * Sums each named metric over its label sets in Prometheus text exposition format. Only the names
 * asked for are kept, so a large /metrics page costs one pass and little memory.
 */
export function parsePrometheusText(text: string, names: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end === -1) end = text.length;
    const line = text.slice(pos, end);
    pos = end + 1;
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace !== -1 && brace < space ? brace : space;
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!names.has(name)) continue;
    const valueStart = brace !== -1 && brace < space ? line.indexOf('} ', brace) + 2 : space + 1;
    const value = Number.parseFloat(line.slice(valueStart).trim().split(' ')[0] ?? '');
    if (Number.isFinite(value)) out.set(name, (out.get(name) ?? 0) + value);
  }
  return out;
}

/** Applies a mapping to a scraped page; null when the page lacks the mapped metrics. */
export function toEndpointMetrics(
  text: string,
  mapping: MetricsMapping,
  nowMs: number,
): EndpointMetrics | null {
  const values = parsePrometheusText(text, new Set([mapping.running, mapping.waiting, mapping.kvUsage]));
  const running = values.get(mapping.running);
  const waiting = values.get(mapping.waiting);
  if (running === undefined || waiting === undefined) return null;
  return {
    running,
    waiting,
    kvUsage: (values.get(mapping.kvUsage) ?? 0) * mapping.kvScale,
    scrapedAtMs: nowMs,
  };
}
