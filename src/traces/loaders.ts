/**
 * @module traces/loaders
 * Streamed loaders for per-request traces: Mooncake JSONL (with prefix block ids), the Azure LLM
 * inference CSV, and BurstGPT-style CSV. Files are read line by line (gzip when the name ends in
 * `.gz`), never whole, so a trace of any length costs constant memory.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Trace, TraceInfo, TraceRecord } from './record.js';

/** Per-request formats this module reads. */
export type RequestTraceFormat = 'mooncake' | 'azure' | 'burstgpt';

/** A problem in a trace file, with where it is. */
export class TraceError extends Error {
  override name = 'TraceError';
}

/** The file's lines, streamed (decompressed when the name ends in `.gz`). */
export async function* readLines(path: string): AsyncGenerator<string> {
  const raw = createReadStream(path);
  const input = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
    raw.destroy();
  }
}

/** The file's first line (decompressed), or undefined for an empty file; the rest is not read. */
export async function firstLine(path: string): Promise<string | undefined> {
  for await (const line of readLines(path)) return line;
  return undefined;
}

/** Tells the format from the first line: a JSON object, or a CSV header. */
export function detectFormat(firstLine: string, path: string): RequestTraceFormat {
  const line = firstLine.replace(/^\uFEFF/, '').trim();
  if (line.startsWith('{')) return 'mooncake';
  if (/^TIMESTAMP,ContextTokens,GeneratedTokens/i.test(line)) return 'azure';
  if (/^Timestamp,Model,Request tokens,Response tokens/i.test(line)) return 'burstgpt';
  throw new TraceError(`${path}: cannot tell the trace format from its first line: ${line.slice(0, 80)}`);
}

/** Opens a per-request trace; `format` 'auto' reads the first line to decide. */
export async function openRequestTrace(
  path: string,
  format: RequestTraceFormat | 'auto' = 'auto',
): Promise<Trace> {
  let fmt: RequestTraceFormat;
  if (format === 'auto') {
    const first = await firstLine(path);
    if (first === undefined) throw new TraceError(`${path}: empty file`);
    fmt = detectFormat(first, path);
  } else fmt = format;
  const info: TraceInfo = { format: fmt, hasBlockHashes: fmt === 'mooncake' };
  const parse = PARSERS[fmt];
  return { info, records: parse(readLines(path), path) };
}

type Parser = (lines: AsyncIterable<string>, path: string) => AsyncGenerator<TraceRecord>;

const PARSERS: Record<RequestTraceFormat, Parser> = {
  /** `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}` per line; 512-token blocks. */
  async *mooncake(lines, path) {
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      let o: { timestamp?: unknown; input_length?: unknown; output_length?: unknown; hash_ids?: unknown };
      try {
        o = JSON.parse(line) as typeof o;
      } catch {
        throw new TraceError(`${path}:${n}: not JSON`);
      }
      const arrivalMs = num(o.timestamp, path, n, 'timestamp');
      const hashIds = Array.isArray(o.hash_ids) ? (o.hash_ids as number[]) : undefined;
      yield {
        arrivalMs,
        inputTokens: count(o.input_length, path, n, 'input_length'),
        outputTokens: count(o.output_length, path, n, 'output_length'),
        ...(hashIds ? { hashIds, hashBlockTokens: 512 } : {}),
      };
    }
  },

  /** `TIMESTAMP,ContextTokens,GeneratedTokens`, wall-clock timestamps with 100 ns digits. */
  async *azure(lines, path) {
    let n = 0;
    let t0 = Number.NaN;
    for await (const line of lines) {
      n++;
      if (n === 1 || line.trim() === '') continue;
      const [ts, input, output] = line.split(',');
      const t = wallClockMs(ts ?? '', path, n);
      if (Number.isNaN(t0)) t0 = t;
      yield {
        arrivalMs: t - t0,
        inputTokens: count(Number(input), path, n, 'ContextTokens'),
        outputTokens: count(Number(output), path, n, 'GeneratedTokens'),
      };
    }
  },

  /** `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`, timestamps in seconds. */
  async *burstgpt(lines, path) {
    let n = 0;
    let t0 = Number.NaN;
    for await (const line of lines) {
      n++;
      if (n === 1 || line.trim() === '') continue;
      const [ts, model, input, output] = line.split(',');
      const t = num(Number(ts), path, n, 'Timestamp') * 1000;
      if (Number.isNaN(t0)) t0 = t;
      const outputTokens = Number(output);
      // BurstGPT logs failed requests with 0 response tokens; they generated nothing to replay.
      if (outputTokens === 0) continue;
      yield {
        arrivalMs: t - t0,
        inputTokens: count(Number(input), path, n, 'Request tokens'),
        outputTokens: count(outputTokens, path, n, 'Response tokens'),
        ...(model ? { model } : {}),
      };
    }
  },
};

/** `YYYY-MM-DD HH:MM:SS.fffffff` as ms (sub-ms digits kept as a fraction). */
function wallClockMs(ts: string, path: string, line: number): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/.exec(ts.trim());
  if (m === null) throw new TraceError(`${path}:${line}: bad TIMESTAMP '${ts}'`);
  const whole = Date.parse(`${m[1]}T${m[2]}Z`);
  const frac = m[3] ? Number(`0.${m[3]}`) * 1000 : 0;
  return whole + frac;
}

function num(v: unknown, path: string, line: number, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new TraceError(`${path}:${line}: ${field} must be a non-negative number`);
  }
  return v;
}

function count(v: unknown, path: string, line: number, field: string): number {
  const x = num(v, path, line, field);
  if (!Number.isInteger(x)) throw new TraceError(`${path}:${line}: ${field} must be a whole number`);
  return x;
}
