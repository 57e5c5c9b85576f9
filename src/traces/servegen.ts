/**
 * @module traces/servegen
 * Arrivals generated from ServeGen per-client window statistics (traces/README.md §3).
 *
 * A ServeGen window file is not a per-request trace: for each client and each 600 s window it gives
 * the client's mean rate and a Gamma or Weibull distribution fitted to its inter-arrival times. This
 * module draws arrivals from those distributions, window by window, and takes token lengths from a
 * per-request trace the caller names (ServeGen's own length distributions are not in the files).
 *
 * Memory: the file is sorted by client then window, not by time, so it is read once into a compact
 * per-window index of the active (client, distribution) rows — typed arrays, a few MB for the
 * largest file — and arrivals are then generated one window at a time. Only one window's arrivals
 * are held at once, however long the generated workload.
 *
 * Rate: each window's inter-arrival distribution is rescaled to mean 1 / `rate_rps`, keeping its
 * fitted shape (hence its CV). The fitted means do not match the published rates: over all active
 * rows, Σ 1/fitted-mean exceeds Σ `rate_rps` by 8 % (m-large), 7 % (m-small), 28 % (deepseek-r1) and
 * 182 % (mm-image), mostly from windows with a handful of requests where the fit is poor (per row, the
 * ratio of 1/rate to the fitted mean runs from ≈ 0.35 at p1 to 12–90 at p99, median 1.00). `rate_rps`
 * × 600 is the counted number of requests in the window, so honouring it is the faithful choice;
 * ServeGen's generator (servegen/construct.py) was not available to check against here, so this is
 * our decision, not a copy of theirs. `rescale: false` samples the fitted distributions unchanged.
 *
 * Window boundaries: each (client, window) is a stationary renewal process on [start, start + 600):
 * the first arrival is a forward-recurrence time (U · X*, X* drawn length-biased), not a full
 * inter-arrival time. With it the expected count in the window is exactly 600 / mean-iat, which
 * (after rescaling) is `rate_rps` × 600, whatever the CV; starting each window with a full iat
 * would undercount bursty clients (CV > 1) and overcount regular ones. Windows are independent, as
 * the per-window fits are.
 *
 * Determinism: every (client, window) draws from its own {@link SeededRng}, seeded from (seed,
 * client, window start), so the records depend only on the seed and the file's contents — not on
 * the order of its rows, and not on the time window asked for (a time window yields exactly the
 * arrivals the full run has inside it, re-based).
 */
import { MinHeap } from '../core/min-heap.js';
import type { Rng } from '../core/rng.js';
import { SeededRng } from '../core/rng.js';
import { openRequestTrace, readLines, TraceError } from './loaders.js';
import type { Trace, TraceRecord } from './record.js';
import { gamma, weibull } from './synthetic.js';

/** Length of one ServeGen window, in seconds. */
export const SERVEGEN_WINDOW_S = 600;

/** The header line of a ServeGen window file (as shipped in traces/). */
export const SERVEGEN_HEADER = 'client,window_start_s,rate_rps,cv,iat_dist,iat_shape,iat_scale';

/**
 * Where token lengths come from: a per-request trace file (opened with {@link openRequestTrace}), or
 * a factory that opens a fresh stream of records each time it is called. The stream is re-opened
 * whenever it runs out, so the lengths cycle.
 */
export type LengthSource = string | (() => AsyncIterable<TraceRecord> | Promise<AsyncIterable<TraceRecord>>);

export interface ServegenOptions {
  /** Seed of all sampling (default 1). Used as a 32-bit unsigned integer. */
  readonly seed?: number;
  /** Generate only arrivals in [startS, endS) seconds from the file's start, re-based to 0. */
  readonly window?: { readonly startS?: number; readonly endS?: number };
  /** Rescale each fitted distribution to mean 1 / `rate_rps` (default true; see the module doc). */
  readonly rescale?: boolean;
  /** Model name put on every record (none by default). */
  readonly model?: string;
  /**
   * Multiply every client's rate by this (default 1), keeping each window's fitted shape (its CV):
   * the same day at a fleet's scale. Only with `rescale` (a rate is what gets scaled).
   */
  readonly rateFactor?: number;
}

const GAMMA = 1;
const WEIBULL = 2;

/** The active rows of a window file, grouped by window (ascending start), clients ascending within. */
interface WindowIndex {
  /** Distinct window starts (s) that have at least one active client, ascending. */
  readonly startS: Float64Array;
  /** Rows of window w are [offset[w], offset[w + 1]). */
  readonly offset: Uint32Array;
  readonly client: Int32Array;
  readonly rate: Float64Array;
  readonly dist: Uint8Array;
  readonly shape: Float64Array;
  readonly scale: Float64Array;
}

/**
 * Opens a ServeGen window file as a trace of generated arrivals. The file is read (and checked) once
 * here; `records` can be iterated more than once and gives the same records each time. Records carry
 * `tenant: 'client-<N>'`, lengths from `lengths`, and no prefix block ids (ids from another trace
 * would invent cache hits), so `info.hasBlockHashes` is false.
 */
export async function servegenTrace(
  windowsPath: string,
  lengths: LengthSource,
  opts: ServegenOptions = {},
): Promise<Trace> {
  const startS = opts.window?.startS ?? 0;
  const endS = opts.window?.endS ?? Number.POSITIVE_INFINITY;
  if (opts.rateFactor !== undefined && !(opts.rateFactor > 0 && opts.rescale !== false))
    throw new TraceError(`rateFactor must be > 0 and needs rescale, got ${opts.rateFactor}`);
  if (!(Number.isFinite(startS) && startS >= 0))
    throw new TraceError(`window start must be ≥ 0, got ${startS}`);
  if (!(endS > startS)) throw new TraceError(`window end (${endS}) must be after its start (${startS})`);
  const index = await readWindowIndex(windowsPath);
  const openLengths =
    typeof lengths === 'string'
      ? async (): Promise<AsyncIterable<TraceRecord>> => (await openRequestTrace(lengths)).records
      : lengths;
  const lengthsName = typeof lengths === 'string' ? lengths : 'the lengths trace';
  const plan: Plan = {
    index,
    seed: (opts.seed ?? 1) >>> 0,
    startS,
    endS,
    rescale: opts.rescale ?? true,
    rateFactor: opts.rateFactor ?? 1,
    ...(opts.model !== undefined ? { model: opts.model } : {}),
  };
  return {
    info: { format: 'servegen', hasBlockHashes: false },
    records: {
      [Symbol.asyncIterator]: () => generate(plan, new LengthCycle(openLengths, lengthsName)),
    },
  };
}

/** The active rows of a window file as columns, in file order. */
interface Rows {
  readonly win: number[];
  readonly client: number[];
  readonly rate: number[];
  readonly dist: number[];
  readonly shape: number[];
  readonly scale: number[];
}

/** Reads the file once into a {@link WindowIndex}; throws {@link TraceError} on a malformed line. */
async function readWindowIndex(path: string): Promise<WindowIndex> {
  const rows: Rows = { win: [], client: [], rate: [], dist: [], shape: [], scale: [] };
  let n = 0;
  for await (const raw of readLines(path)) {
    n++;
    const line = raw.trim();
    if (n === 1) {
      if (line.replace(/^\uFEFF/, '') !== SERVEGEN_HEADER) {
        throw new TraceError(`${path}: not a ServeGen window file (header '${line.slice(0, 80)}')`);
      }
      continue;
    }
    if (line !== '') addRow(rows, line, `${path}:${n}`);
  }
  if (n === 0) throw new TraceError(`${path}: empty file`);
  return indexRows(rows, path);
}

/** Checks one data line and appends it to `rows`, unless its window has no requests. */
function addRow(rows: Rows, line: string, where: string): void {
  const f = line.split(',');
  if (f.length !== 7) throw new TraceError(`${where}: expected 7 fields, got ${f.length}`);
  const name = f[4];
  if (name === '') return; // no requests in this window
  const d = name === 'Gamma' ? GAMMA : name === 'Weibull' ? WEIBULL : 0;
  if (d === 0) throw new TraceError(`${where}: iat_dist must be Gamma, Weibull or empty, got '${name}'`);
  const c = Number(f[0]);
  if (!Number.isInteger(c) || c < 0) throw new TraceError(`${where}: client must be a whole number`);
  const w = Number(f[1]);
  if (!(Number.isFinite(w) && w >= 0)) throw new TraceError(`${where}: window_start_s must be ≥ 0`);
  const r = Number(f[2]);
  if (!(Number.isFinite(r) && r >= 0)) throw new TraceError(`${where}: rate_rps must be ≥ 0`);
  const k = Number(f[5]);
  const s = Number(f[6]);
  if (!(Number.isFinite(k) && k > 0 && Number.isFinite(s) && s > 0)) {
    throw new TraceError(`${where}: iat_shape and iat_scale must be > 0 for a ${name} row`);
  }
  rows.win.push(w);
  rows.client.push(c);
  rows.rate.push(r);
  rows.dist.push(d);
  rows.shape.push(k);
  rows.scale.push(s);
}

/** Sorts the rows by window, then client, into a {@link WindowIndex}; a client twice in a window throws. */
function indexRows(rows: Rows, path: string): WindowIndex {
  const { win, client } = rows;
  const order = Array.from(win.keys()).sort((a, b) => win[a]! - win[b]! || client[a]! - client[b]!);
  const starts: number[] = [];
  const offsets: number[] = [];
  const idx: WindowIndex = {
    startS: new Float64Array(0),
    offset: new Uint32Array(0),
    client: new Int32Array(order.length),
    rate: new Float64Array(order.length),
    dist: new Uint8Array(order.length),
    shape: new Float64Array(order.length),
    scale: new Float64Array(order.length),
  };
  for (let i = 0; i < order.length; i++) {
    const row = order[i]!;
    if (starts.length === 0 || starts[starts.length - 1] !== win[row]) {
      starts.push(win[row]!);
      offsets.push(i);
    } else if (idx.client[i - 1] === client[row]) {
      throw new TraceError(`${path}: client ${client[row]} has two rows for window ${win[row]}`);
    }
    idx.client[i] = client[row]!;
    idx.rate[i] = rows.rate[row]!;
    idx.dist[i] = rows.dist[row]!;
    idx.shape[i] = rows.shape[row]!;
    idx.scale[i] = rows.scale[row]!;
  }
  offsets.push(order.length);
  return { ...idx, startS: Float64Array.from(starts), offset: Uint32Array.from(offsets) };
}

interface Plan {
  readonly index: WindowIndex;
  readonly seed: number;
  readonly startS: number;
  readonly endS: number;
  readonly rescale: boolean;
  readonly rateFactor: number;
  readonly model?: string;
}

async function* generate(plan: Plan, lengths: LengthCycle): AsyncGenerator<TraceRecord> {
  try {
    yield* generateWindows(plan, lengths);
  } finally {
    await lengths.close();
  }
}

async function* generateWindows(plan: Plan, lengths: LengthCycle): AsyncGenerator<TraceRecord> {
  const { index, startS, endS } = plan;
  for (let w = 0; w < index.startS.length; w++) {
    const ws = index.startS[w]!;
    if (ws + SERVEGEN_WINDOW_S <= startS) continue;
    if (ws >= endS) break;
    // Each active client's arrivals in the window (seconds from the window's start), each run sorted.
    const runs: { client: number; times: number[] }[] = [];
    for (let i = index.offset[w]!; i < index.offset[w + 1]!; i++) {
      const times = clientArrivals(plan, ws, i);
      if (times.length > 0) runs.push({ client: index.client[i]!, times });
    }
    // k-way merge by time (ties: the lower client id first), restricted to [startS, endS).
    const heads = new Int32Array(runs.length);
    const headTime = (r: number): number => runs[r]!.times[heads[r]!]!;
    const heap = new MinHeap<number>((x, y) => {
      const tx = headTime(x);
      const ty = headTime(y);
      return tx < ty || (tx === ty && runs[x]!.client < runs[y]!.client);
    });
    for (let r = 0; r < runs.length; r++) heap.push(r);
    while (heap.size > 0) {
      const r = heap.pop()!;
      const run = runs[r]!;
      const t = ws + run.times[heads[r]!]!;
      heads[r] = heads[r]! + 1;
      if (heads[r]! < run.times.length) heap.push(r);
      if (t < startS || t >= endS) continue;
      const len = await lengths.next();
      yield {
        arrivalMs: (t - startS) * 1000,
        inputTokens: len.inputTokens,
        outputTokens: len.outputTokens,
        tenant: `client-${run.client}`,
        ...(plan.model !== undefined ? { model: plan.model } : {}),
      };
    }
  }
}

/** The arrival offsets (s, ascending, in [0, window)) of index row `i`, whose window starts at `ws`. */
function clientArrivals(plan: Plan, ws: number, i: number): number[] {
  const { index } = plan;
  const rate = index.rate[i]! * plan.rateFactor;
  const k = index.shape[i]!;
  let scale = index.scale[i]!;
  const isGamma = index.dist[i] === GAMMA;
  if (plan.rescale) {
    if (rate === 0) return [];
    const fittedMean = isGamma ? k * scale : scale * Math.exp(logGamma(1 + 1 / k));
    scale *= 1 / rate / fittedMean;
  }
  if (!(scale > 0 && Number.isFinite(scale))) return [];
  const rng = new SeededRng(streamSeed(plan.seed, index.client[i]!, ws));
  const times: number[] = [];
  // Stationary start: the time to the first arrival is U · X*, X* the length-biased iat.
  let t = (1 - rng.next()) * lengthBiased(rng, isGamma, k, scale);
  while (t < SERVEGEN_WINDOW_S) {
    times.push(t);
    t += isGamma ? gamma(rng, k, scale) : weibull(rng, k, scale);
  }
  return times;
}

/**
 * An inter-arrival time drawn with density x·f(x)/mean: for Gamma(k, θ) that is Gamma(k + 1, θ); for
 * Weibull(k, λ) it is λ·G^(1/k) with G ~ Gamma(1 + 1/k, 1).
 */
function lengthBiased(rng: Rng, isGamma: boolean, k: number, scale: number): number {
  return isGamma ? gamma(rng, k + 1, scale) : scale * gamma(rng, 1 + 1 / k, 1) ** (1 / k);
}

/** A 32-bit seed for one (client, window) stream. */
function streamSeed(seed: number, client: number, windowStartS: number): number {
  let h = mix32(seed ^ 0x9e3779b9);
  h = mix32(h ^ client);
  h = mix32(h ^ Math.round(windowStartS));
  return h;
}

/** A 32-bit integer finaliser (the "lowbias32" mix). */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Token lengths taken in order from a per-request trace, re-opened each time it runs out. */
class LengthCycle {
  private it: AsyncIterator<TraceRecord> | undefined;
  private takenThisPass = 0;

  constructor(
    private readonly open: () => AsyncIterable<TraceRecord> | Promise<AsyncIterable<TraceRecord>>,
    private readonly name: string,
  ) {}

  /** Closes the stream being read, if any (its file is released). */
  async close(): Promise<void> {
    const it = this.it;
    this.it = undefined;
    await it?.return?.();
  }

  async next(): Promise<{ inputTokens: number; outputTokens: number }> {
    for (;;) {
      if (this.it === undefined) {
        this.it = (await this.open())[Symbol.asyncIterator]();
        this.takenThisPass = 0;
      }
      const r = await this.it.next();
      if (!r.done) {
        this.takenThisPass++;
        return { inputTokens: r.value.inputTokens, outputTokens: r.value.outputTokens };
      }
      this.it = undefined;
      if (this.takenThisPass === 0)
        throw new TraceError(`${this.name}: no records to take token lengths from`);
    }
  }
}
