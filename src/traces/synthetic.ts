/**
 * @module traces/synthetic
 * Seeded synthetic workloads in the same record shape as the real traces: Poisson or Gamma-bursty
 * arrivals, fixed or lognormal lengths, and groups of requests that share a prompt prefix.
 */
import type { Rng } from '../core/rng.js';
import { MinHeap } from '../core/min-heap.js';
import { SeededRng } from '../core/rng.js';
import type { Trace, TraceRecord } from './record.js';

/** A length: a fixed count, or lognormal around a median (clamped to [1, max]). */
export type LengthSpec = number | { readonly median: number; readonly sigma: number; readonly max?: number };

export interface SyntheticSpec {
  readonly requests: number;
  readonly ratePerS: number;
  /** Coefficient of variation of inter-arrival times: 1 = Poisson (default), > 1 bursty (Gamma). */
  readonly cv?: number;
  readonly inputTokens: LengthSpec;
  readonly outputTokens: LengthSpec;
  /** Requests fall into `groups` groups; the first `sharedTokens` of a group's prompts are identical. */
  readonly prefix?: { readonly groups: number; readonly sharedTokens: number };
  readonly seed?: number;
  readonly model?: string;
  /**
   * Multi-turn sessions: each session sends `turns` requests, `thinkMs` (mean, exponential) apart after
   * the previous answer; turn k+1's prompt is turn k's prompt and answer plus a new message of
   * `inputTokens`, and shares turn k's prompt blocks. `ratePerS` is then the rate of new sessions.
   */
  readonly sessions?: { readonly turns: LengthSpec; readonly thinkMs: number };
}

/** Prefix ids cover blocks of this many tokens in synthetic records. */
const SYNTHETIC_HASH_BLOCK = 16;

/** A synthetic trace; the same spec and seed give the same records. */
export function syntheticTrace(spec: SyntheticSpec): Trace {
  return {
    info: { format: 'synthetic', hasBlockHashes: spec.prefix !== undefined || spec.sessions !== undefined },
    records: spec.sessions ? generateSessions(spec, spec.sessions) : generate(spec),
  };
}

interface Turn {
  readonly atMs: number;
  readonly seq: number;
  readonly session: number;
  readonly turnsLeft: number;
  /** The previous turn's prompt ids and tokens, and its answer's length (0 before the first turn). */
  readonly prevIds: readonly number[];
  readonly prevPrompt: number;
  readonly prevOutput: number;
}

/** Sessions start as a Poisson (or Gamma) process; their turns interleave, merged in time order. */
async function* generateSessions(spec: SyntheticSpec, sessions: NonNullable<SyntheticSpec['sessions']>) {
  const rng = new SeededRng(spec.seed ?? 1);
  const cv = spec.cv ?? 1;
  const meanGapMs = 1000 / spec.ratePerS;
  const pending = new MinHeap<Turn>((a, b) => a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq));
  let seq = 0;
  let nextSession = 0;
  let nextStartMs = 0;
  let nextId = 1;
  for (let emitted = 0; emitted < spec.requests; emitted++) {
    const top = pending.peek();
    let turn: Turn;
    if (top === undefined || nextStartMs <= top.atMs) {
      turn = {
        atMs: nextStartMs,
        seq: seq++,
        session: nextSession++,
        turnsLeft: length(rng, sessions.turns),
        prevIds: [],
        prevPrompt: 0,
        prevOutput: 0,
      };
      nextStartMs += cv === 1 ? exponential(rng, meanGapMs) : gamma(rng, 1 / (cv * cv), meanGapMs * cv * cv);
    } else turn = pending.pop()!;
    const message = length(rng, spec.inputTokens);
    const outputTokens = length(rng, spec.outputTokens);
    const inputTokens = turn.prevPrompt + turn.prevOutput + message;
    const shared = Math.floor(turn.prevPrompt / SYNTHETIC_HASH_BLOCK);
    const hashIds = turn.prevIds.slice(0, shared);
    while (hashIds.length < Math.ceil(inputTokens / SYNTHETIC_HASH_BLOCK)) hashIds.push(nextId++);
    yield {
      arrivalMs: turn.atMs,
      inputTokens,
      outputTokens,
      hashIds,
      hashBlockTokens: SYNTHETIC_HASH_BLOCK,
      session: `s${turn.session}`,
      ...(spec.model ? { model: spec.model } : {}),
    };
    if (turn.turnsLeft > 1) {
      pending.push({
        // The next turn comes after the user has read the answer: assume ~30 ms per output token, then think.
        atMs: turn.atMs + outputTokens * 30 + exponential(rng, sessions.thinkMs),
        seq: seq++,
        session: turn.session,
        turnsLeft: turn.turnsLeft - 1,
        prevIds: hashIds,
        prevPrompt: inputTokens,
        prevOutput: outputTokens,
      });
    }
  }
}

async function* generate(spec: SyntheticSpec): AsyncGenerator<TraceRecord> {
  const rng = new SeededRng(spec.seed ?? 1);
  const cv = spec.cv ?? 1;
  const meanGapMs = 1000 / spec.ratePerS;
  let t = 0;
  let nextUniqueId = 1_000_000_000;
  for (let i = 0; i < spec.requests; i++) {
    if (i > 0) t += cv === 1 ? exponential(rng, meanGapMs) : gamma(rng, 1 / (cv * cv), meanGapMs * cv * cv);
    const inputTokens = length(rng, spec.inputTokens);
    const outputTokens = length(rng, spec.outputTokens);
    let hashIds: number[] | undefined;
    if (spec.prefix) {
      const group = Math.floor(rng.next() * spec.prefix.groups);
      const blocks = Math.ceil(inputTokens / SYNTHETIC_HASH_BLOCK);
      const sharedBlocks = Math.floor(Math.min(spec.prefix.sharedTokens, inputTokens) / SYNTHETIC_HASH_BLOCK);
      hashIds = [];
      for (let b = 0; b < blocks; b++) hashIds.push(b < sharedBlocks ? group * 100_000 + b : nextUniqueId++);
    }
    yield {
      arrivalMs: t,
      inputTokens,
      outputTokens,
      ...(hashIds ? { hashIds, hashBlockTokens: SYNTHETIC_HASH_BLOCK } : {}),
      ...(spec.model ? { model: spec.model } : {}),
    };
  }
}

function length(rng: Rng, spec: LengthSpec): number {
  if (typeof spec === 'number') return spec;
  const v = Math.round(spec.median * Math.exp(spec.sigma * normal(rng)));
  return Math.max(1, Math.min(spec.max ?? Number.POSITIVE_INFINITY, v));
}

/** Exponential with the given mean. */
export function exponential(rng: Rng, mean: number): number {
  return -mean * Math.log(1 - rng.next());
}

/** Standard normal (Box–Muller; one value per call, so the stream stays simple to replay). */
export function normal(rng: Rng): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Gamma(shape, scale) by Marsaglia–Tsang; shape < 1 via the boost U^(1/shape). */
export function gamma(rng: Rng, shape: number, scale: number): number {
  if (shape < 1) return gamma(rng, shape + 1, scale) * (1 - rng.next()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(rng);
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
  }
}

/** Weibull(shape, scale) by inversion. */
export function weibull(rng: Rng, shape: number, scale: number): number {
  return scale * (-Math.log(1 - rng.next())) ** (1 / shape);
}
