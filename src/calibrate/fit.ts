/**
 * @module calibrate/fit
 * Fits the step-time constants of an engine profile (docs/engine-model.md) to timings measured from
 * outside the engine. Pure: samples in, constants and their standard errors out.
 *
 *   TTFT of a request alone  = R + Σ_chunks [T0 + t_req + T_lin(n) + C_pf·n(c + n/2)/10^6]
 *   decode step of B requests = T0 + t_req·B + T_lin(B) + C_dec·Σctx/10^3
 *   T_lin(N) = (W^1.5 + (b·N/1000)^1.5)^(2/3)
 *
 * R, T0, t_req, C_pf and C_dec enter linearly: for given (W, b) they are solved by weighted least
 * squares with non-negativity (variable projection, Golub & Pereyra 1973). W and b are found by a
 * profile search: for each W (grid, then golden section) the best b (the same), so the p-norm term
 * needs no derivatives.
 *
 * Identifiability, by timing alone:
 * - T0 and W are both a constant cost of every small step; only their sum is pinned by decode
 *   steps. They separate through the knee of T_lin: W fades from a prefill's time as the chunk grows
 *   past N ≈ 1000·W/b tokens, T0 does not. The TTFT sweep must span that knee; the reported standard
 *   errors say how well it did.
 * - t_req and C_dec separate only when the decode sweep varies the batch size and the context per
 *   request independently (otherwise Σctx ∝ B).
 * - T0 and t_req are one column in TTFT (B = 1); decode steps at several B separate them.
 * - R (the per-request overhead outside the engine steps) is the TTFT intercept left after T0:
 *   it includes whatever the client sees besides the engine (network, HTTP, wake-up), less what the
 *   caller subtracts.
 * - The TP collective terms (a_ar, s_ar) are indistinguishable from T0 and b: they are folded in.
 */
import type { EngineProfile } from '../engine-model/types.js';

/** Time to first token of a request sent to an otherwise idle engine. */
export interface TtftSample {
  readonly kind: 'ttft';
  readonly promptTokens: number;
  /** Prompt tokens served from the prefix cache (not computed). */
  readonly cachedTokens: number;
  readonly ms: number;
}

/** Mean duration of `steps` consecutive steps in which the same `requests` requests all decode. */
export interface DecodeSample {
  readonly kind: 'decode';
  readonly requests: number;
  /** Mean over those steps of Σ context tokens read by the batch. */
  readonly contextTokens: number;
  readonly ms: number;
  readonly steps: number;
}

export type Sample = TtftSample | DecodeSample;

/** The fitted constants, in the units of {@link EngineProfile}. */
export type StepTimeConstants = Pick<
  EngineProfile,
  | 'weightsMs'
  | 'gemmMsPer1kTokens'
  | 'prefillAttnMsPerMPairs'
  | 'decodeAttnMsPer1kCtx'
  | 'stepOverheadMs'
  | 'perRequestMs'
> & { readonly requestOverheadMs: number };

export type ConstantName = keyof StepTimeConstants;

export interface StepTimeFit {
  readonly constants: StepTimeConstants;
  /** Approximate standard error of each constant (NaN: held at 0, or not identified by the data). */
  readonly stdErr: StepTimeConstants;
  /** Standard error of T0 + W, the combination decode steps pin even when the knee does not. */
  readonly overheadPlusWeightsStdErr: number;
  /** Weighted RMS residual per sample kind, ms. */
  readonly rmsMs: { readonly ttft: number; readonly decode: number };
  /** Samples used per kind, and the outliers left out. */
  readonly used: { readonly ttft: number; readonly decode: number; readonly outliers: number };
}

export interface FitOptions {
  /** The per-step token budget (max_num_batched_tokens): prompts longer than this prefill in chunks. */
  readonly maxNumBatchedTokens: number;
}

/** Linear parameters in column order. */
const LINEAR: readonly ConstantName[] = [
  'requestOverheadMs',
  'stepOverheadMs',
  'perRequestMs',
  'prefillAttnMsPerMPairs',
  'decodeAttnMsPer1kCtx',
];
const P = LINEAR.length;

/** One sample as a regression row: y − Σ T_lin(n) = x·θ. */
interface Row {
  readonly kind: Sample['kind'];
  readonly x: readonly number[];
  /** Token counts of the steps whose T_lin the sample sums. */
  readonly linTokens: readonly number[];
  readonly y: number;
  /** Relative precision: decode samples average `steps` steps. */
  readonly scale: number;
}

/** T_lin(N) of the step-time formula. */
export function linearMs(weightsMs: number, gemmMsPer1kTokens: number, tokens: number): number {
  const g = (gemmMsPer1kTokens * tokens) / 1000;
  return (weightsMs ** 1.5 + g ** 1.5) ** (2 / 3);
}

/** The prefill chunks (new tokens n, tokens already in KV c) of a prompt served alone. */
export function prefillChunks(s: TtftSample, budget: number): { n: number; c: number }[] {
  const chunks: { n: number; c: number }[] = [];
  for (let c = s.cachedTokens; c < s.promptTokens; ) {
    const n = Math.min(budget, s.promptTokens - c);
    chunks.push({ n, c });
    c += n;
  }
  return chunks;
}

function toRow(s: Sample, budget: number): Row {
  if (s.kind === 'decode') {
    return {
      kind: 'decode',
      x: [0, 1, s.requests, 0, s.contextTokens / 1e3],
      linTokens: [s.requests],
      y: s.ms,
      scale: s.steps,
    };
  }
  const chunks = prefillChunks(s, budget);
  const pairs = chunks.reduce((sum, { n, c }) => sum + n * (c + n / 2), 0);
  return {
    kind: 'ttft',
    x: [1, chunks.length, chunks.length, pairs / 1e6, 0],
    linTokens: chunks.map((ch) => ch.n),
    y: s.ms,
    scale: 1,
  };
}

/** What the model predicts for `s` under constants `c`. */
export function predictMs(c: StepTimeConstants, s: Sample, options: FitOptions): number {
  const row = toRow(s, options.maxNumBatchedTokens);
  let y = 0;
  for (let j = 0; j < P; j++) y += row.x[j]! * c[LINEAR[j]!];
  for (const n of row.linTokens) y += linearMs(c.weightsMs, c.gemmMsPer1kTokens, n);
  return y;
}

// ------------------------------------------------------------------ weighted non-negative LS

/**
 * Solves A·x = r over the columns in `free` (the others 0) by Gauss–Jordan with partial pivoting.
 * When the columns are dependent, `dependent` is the first one that adds nothing to those before it.
 */
function solveSubset(
  a: readonly number[][],
  r: readonly number[],
  free: readonly number[],
): { x: number[]; dependent?: undefined } | { x?: undefined; dependent: number } {
  const m = free.length;
  const aug = free.map((i) => [...free.map((j) => a[i]![j]!), r[i]!]);
  const scale = Math.max(...free.map((i) => Math.abs(a[i]![i]!)), 1e-300);
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let k = col + 1; k < m; k++) if (Math.abs(aug[k]![col]!) > Math.abs(aug[piv]![col]!)) piv = k;
    if (Math.abs(aug[piv]![col]!) <= 1e-11 * scale) return { dependent: free[col]! };
    [aug[col], aug[piv]] = [aug[piv]!, aug[col]!];
    for (let k = 0; k < m; k++) {
      if (k === col) continue;
      const f = aug[k]![col]! / aug[col]![col]!;
      for (let j = col; j <= m; j++) aug[k]![j]! -= f * aug[col]![j]!;
    }
  }
  const x = new Array<number>(a.length).fill(0);
  free.forEach((i, k) => {
    x[i] = aug[k]![m]! / aug[k]![k]!;
  });
  return { x };
}

/**
 * Non-negative least squares on normal equations (A = XᵀWX, r = XᵀWy) by an active set in the
 * manner of Lawson & Hanson (1974, ch. 23): solve on the free set, pin the most negative parameter
 * at 0, free a pinned one whose gradient says it would help. A column the data cannot tell from the
 * ones before it (T0 and t_req with decode steps at one batch size only) is pinned at 0 too.
 */
function nnls(
  a: readonly number[][],
  r: readonly number[],
): { theta: number[]; free: number[]; identified: number[] } {
  let free = [...Array(a.length).keys()].filter((i) => a[i]![i]! > 0);
  const pinned = new Set<number>();
  let theta = new Array<number>(a.length).fill(0);
  for (let iter = 0; iter < 4 * a.length; iter++) {
    let sol = solveSubset(a, r, free);
    while (sol.x === undefined) {
      pinned.add(sol.dependent);
      free = free.filter((i) => i !== sol.dependent);
      sol = solveSubset(a, r, free);
    }
    theta = sol.x;
    let worst = -1;
    for (const i of free) if (theta[i]! < 0 && (worst < 0 || theta[i]! < theta[worst]!)) worst = i;
    if (worst >= 0) {
      free = free.filter((i) => i !== worst);
      continue;
    }
    // KKT: a pinned parameter with a positive gradient of −RSS/2 (r − A·θ) would lower the residual.
    let enter = -1;
    let best = 1e-12;
    for (let i = 0; i < a.length; i++) {
      if (free.includes(i) || pinned.has(i) || a[i]![i]! <= 0) continue;
      let g = r[i]!;
      for (let j = 0; j < a.length; j++) g -= a[i]![j]! * theta[j]!;
      if (g / Math.sqrt(a[i]![i]!) > best) [enter, best] = [i, g / Math.sqrt(a[i]![i]!)];
    }
    if (enter < 0) break;
    free = [...free, enter].sort((x, y) => x - y);
  }
  const identified = [...Array(a.length).keys()].filter((i) => a[i]![i]! > 0 && !pinned.has(i));
  return { theta, free, identified };
}

interface Inner {
  readonly theta: number[];
  /** Columns the data determine (others are 0 for want of data that separate them). */
  readonly identified: number[];
  readonly rss: number;
}

/** The linear parameters' best values for given (W, b), and the weighted residual sum of squares. */
function solveLinear(rows: readonly Row[], w: readonly number[], W: number, b: number): Inner {
  const a = Array.from({ length: P }, () => new Array<number>(P).fill(0));
  const r = new Array<number>(P).fill(0);
  const ys = rows.map((row) => row.y - row.linTokens.reduce((s, n) => s + linearMs(W, b, n), 0));
  rows.forEach((row, i) => {
    const wi = w[i]!;
    for (let j = 0; j < P; j++) {
      const xj = row.x[j]!;
      if (xj === 0) continue;
      r[j]! += wi * xj * ys[i]!;
      for (let k = 0; k < P; k++) a[j]![k]! += wi * xj * row.x[k]!;
    }
  });
  const { theta, identified } = nnls(a, r);
  let rss = 0;
  rows.forEach((row, i) => {
    let e = ys[i]!;
    for (let j = 0; j < P; j++) e -= row.x[j]! * theta[j]!;
    rss += w[i]! * e * e;
  });
  return { theta, identified, rss };
}

// ------------------------------------------------------------------ 1-D searches

const GOLDEN = (Math.sqrt(5) - 1) / 2;

/** Minimises f over [lo, hi]: a grid of `n` points, then golden section in the best point's bracket. */
export function gridGoldenMin(f: (x: number) => number, lo: number, hi: number, n = 24): number {
  const xs = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const fs = xs.map(f);
  const k = fs.indexOf(Math.min(...fs));
  let a = xs[Math.max(0, k - 1)]!;
  let b = xs[Math.min(n - 1, k + 1)]!;
  let c = b - GOLDEN * (b - a);
  let d = a + GOLDEN * (b - a);
  let fc = f(c);
  let fd = f(d);
  for (let i = 0; i < 48 && b - a > 1e-7 * (hi - lo); i++) {
    if (fc < fd) {
      [b, d, fd] = [d, c, fc];
      c = b - GOLDEN * (b - a);
      fc = f(c);
    } else {
      [a, c, fc] = [c, d, fd];
      d = a + GOLDEN * (b - a);
      fd = f(d);
    }
  }
  const mid = fc < fd ? c : d;
  return Math.min(fc, fd) <= fs[k]! ? mid : xs[k]!;
}

// ------------------------------------------------------------------ the fit

interface Solution extends Inner {
  readonly W: number;
  readonly b: number;
}

/** The best (W, b) and linear parameters for weights `w`: W profiled over b. */
function searchNonlinear(rows: readonly Row[], w: readonly number[]): Solution {
  const used = rows.filter((_, i) => w[i]! > 0);
  const decode = used.filter((r) => r.kind === 'decode');
  // Every term is non-negative, so a step is never shorter than its T_lin, hence W ≤ any decode step;
  // and T_lin(N) ≥ b·N/1000, so b ≤ 1000·TTFT/prompt for every TTFT sample.
  const wMax = Math.min(...(decode.length > 0 ? decode : used).map((r) => r.y));
  const bMax = Math.min(
    ...used
      .filter((r) => r.kind === 'ttft')
      .map((r) => (1000 * r.y) / r.linTokens.reduce((s, n) => s + n, 0)),
  );
  const logHi = Math.log10(bMax);
  const bestB = (W: number): number =>
    10 ** gridGoldenMin((lb) => solveLinear(rows, w, W, 10 ** lb).rss, logHi - 4, logHi, 32);
  const W = gridGoldenMin((x) => solveLinear(rows, w, x, bestB(x)).rss, 0, wMax, 20);
  const b = bestB(W);
  return { ...solveLinear(rows, w, W, b), W, b };
}

/** Residual of each row under a solution. */
function residuals(rows: readonly Row[], s: Solution): number[] {
  return rows.map((row) => {
    let e = row.y;
    for (let j = 0; j < P; j++) e -= row.x[j]! * s.theta[j]!;
    for (const n of row.linTokens) e -= linearMs(s.W, s.b, n);
    return e;
  });
}

/** Robust scale (1.4826·median |r|) of residuals normalised to one unit of precision. */
function robustSigma(norm: readonly number[]): number {
  if (norm.length === 0) return 1;
  const abs = norm.map(Math.abs).sort((x, y) => x - y);
  return Math.max(1.4826 * abs[Math.floor(abs.length / 2)]!, 1e-6);
}

/** Huber's tuning constant: full weight within 1.345 σ, then weight falling as σ/|r| (Huber 1964). */
const HUBER = 1.345;
/** A sample further than this many robust σ from the robust fit is left out of the final one. */
const OUTLIER_SIGMAS = 5;

/**
 * Fits the constants to `samples`. Each sample is weighed by the inverse variance of its kind,
 * robustly estimated from the previous pass (a decode sample's variance shrinks with its step
 * count). A first least-squares pass, then iteratively reweighted passes with Huber's weights so a
 * stalled timer or a collection pause cannot drag the fit, then a last plain pass without the
 * samples more than 5 robust σ off (reported as outliers).
 */
export function fitStepTime(samples: readonly Sample[], options: FitOptions): StepTimeFit {
  const rows = samples.map((s) => toRow(s, options.maxNumBatchedTokens));
  const nTtft = rows.filter((r) => r.kind === 'ttft').length;
  if (nTtft < 3 || rows.length - nTtft < 3)
    throw new Error(`too few samples to fit: ${nTtft} TTFT, ${rows.length - nTtft} decode (need 3 of each)`);
  const decodeScales = rows.filter((r) => r.kind === 'decode').map((r) => r.scale);
  const meanScale = decodeScales.reduce((s, x) => s + x, 0) / decodeScales.length;
  /** How much more precise than an average sample of its kind a row is (variance ratio). */
  const precision = (r: Row): number => (r.kind === 'decode' ? r.scale / meanScale : 1);
  let sigma = { ttft: 1, decode: 1 };
  let robust = rows.map(() => 1);
  let norm: number[] = [];
  for (let pass = 0; pass < 4; pass++) {
    const sol = searchNonlinear(
      rows,
      rows.map((r, i) => (precision(r) * robust[i]!) / sigma[r.kind] ** 2),
    );
    norm = residuals(rows, sol).map((e, i) => e * Math.sqrt(precision(rows[i]!)));
    const kindSigma = (kind: Row['kind']): number =>
      robustSigma(norm.filter((_, i) => rows[i]!.kind === kind));
    sigma = { ttft: kindSigma('ttft'), decode: kindSigma('decode') };
    robust = norm.map((e, i) => Math.min(1, (HUBER * sigma[rows[i]!.kind]) / Math.abs(e)));
  }
  const w = rows.map((r, i) =>
    Math.abs(norm[i]!) <= OUTLIER_SIGMAS * sigma[r.kind] ? precision(r) / sigma[r.kind] ** 2 : 0,
  );
  return summarize(rows, w, searchNonlinear(rows, w));
}

/** Constants, standard errors from the Jacobian at the optimum, RMS residuals per kind. */
function summarize(rows: readonly Row[], w: readonly number[], s: Solution): StepTimeFit {
  const constants = Object.fromEntries([
    ...LINEAR.map((name, j) => [name, s.theta[j]!]),
    ['weightsMs', s.W],
    ['gemmMsPer1kTokens', s.b],
  ]) as unknown as StepTimeConstants;
  const cov = covariance(rows, w, s);
  const se = (k: number): number => (k < 0 ? Number.NaN : Math.sqrt(Math.max(0, cov[k]![k]!)));
  const index = new Map<ConstantName, number>();
  s.identified.forEach((j, k) => {
    index.set(LINEAR[j]!, k);
  });
  index.set('weightsMs', s.identified.length);
  index.set('gemmMsPer1kTokens', s.identified.length + 1);
  const stdErr = Object.fromEntries(
    [...LINEAR, 'weightsMs', 'gemmMsPer1kTokens'].map((name) => [
      name,
      cov.length === 0 ? Number.NaN : se(index.get(name as ConstantName) ?? -1),
    ]),
  ) as unknown as StepTimeConstants;
  const t0 = index.get('stepOverheadMs');
  const wi = s.identified.length;
  // With W at 0 the sum is T0 alone.
  const sumVar =
    cov.length === 0 || t0 === undefined
      ? Number.NaN
      : s.W > 1e-9
        ? cov[t0]![t0]! + cov[wi]![wi]! + 2 * cov[t0]![wi]!
        : cov[t0]![t0]!;
  const res = residuals(rows, s);
  const rms = (kind: Row['kind']): number => {
    const e = res.filter((_, i) => rows[i]!.kind === kind && w[i]! > 0);
    return Math.sqrt(e.reduce((acc, x) => acc + x * x, 0) / Math.max(1, e.length));
  };
  const count = (kind: Row['kind']) => rows.filter((r, i) => r.kind === kind && w[i]! > 0).length;
  return {
    constants,
    stdErr,
    overheadPlusWeightsStdErr: Math.sqrt(Math.max(0, sumVar)),
    rmsMs: { ttft: rms('ttft'), decode: rms('decode') },
    used: { ttft: count('ttft'), decode: count('decode'), outliers: w.filter((x) => x === 0).length },
  };
}

/**
 * s²·(JᵀWJ)⁻¹ over the identified linear parameters, then W (unless it sits at 0, where T_lin has no
 * slope in W) and b: Gauss–Newton at the optimum, as if no bound held, so it says how well the data
 * pin each constant, also one that sits at 0. Empty when the data leave it singular.
 */
function covariance(rows: readonly Row[], w: readonly number[], s: Solution): number[][] {
  const withW = s.W > 1e-9;
  const jac = rows.map((row) => {
    let dW = 0;
    let db = 0;
    for (const n of row.linTokens) {
      const g = (s.b * n) / 1000;
      const inv = (s.W ** 1.5 + g ** 1.5) ** (-1 / 3);
      dW += inv * Math.sqrt(s.W);
      db += (inv * Math.sqrt(g) * n) / 1000;
    }
    return [...s.identified.map((j) => row.x[j]!), ...(withW ? [dW] : []), db];
  });
  const m = jac[0]!.length;
  const a = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  jac.forEach((jr, i) => {
    for (let p = 0; p < m; p++) for (let q = 0; q < m; q++) a[p]![q]! += w[i]! * jr[p]! * jr[q]!;
  });
  const n = w.filter((x) => x > 0).length;
  const s2 = s.rss / Math.max(1, n - m);
  const all = [...Array(m).keys()];
  const cols = all.map(
    (k) =>
      solveSubset(
        a,
        all.map((i) => (i === k ? 1 : 0)),
        all,
      ).x,
  );
  if (cols.some((c) => c === undefined)) return [];
  const cov = all.map((p) => all.map((q) => s2 * cols[q]![p]!));
  if (withW) return cov;
  // W held at 0: a row and column of NaN in its place keep the indices of b.
  const k = s.identified.length;
  return Array.from({ length: m + 1 }, (_, p) =>
    Array.from({ length: m + 1 }, (_, q) =>
      p === k || q === k ? Number.NaN : cov[p > k ? p - 1 : p]![q > k ? q - 1 : q]!,
    ),
  );
}
