/**
 * @module scheduler/predictor
 * Output-length prediction for shortest-job-first, learned online from completed requests, and
 * the rank statistics that say how well it orders requests.
 *
 * The model predicts log(1 + output tokens) as a linear function of features known at arrival,
 * fitted by exact recursive least squares (ridge prior, no forgetting: forgetting lets the
 * covariance of rarely seen features grow without bound). Features (D = 32):
 *
 * | index  | feature                                                                |
 * |--------|------------------------------------------------------------------------|
 * | 0      | bias                                                                   |
 * | 1      | log(1 + prompt tokens) / 8                                             |
 * | 2, 3   | log(1 + max_tokens) / 8, and whether max_tokens was given              |
 * | 4, 5   | whether the last user message is known, log(1 + its length) / 8       |
 * | 6      | a question mark in it                                                  |
 * | 7–12   | word groups in it: list, explain, write, code, summarize, translate    |
 * | 13     | it starts like a yes/no question (is, are, do, can, should, …)         |
 * | 14, 15 | whether the session has a previous output, log(1 + its length) / 8     |
 * | 16–23  | tenant, hashed one-hot                                                 |
 * | 24–31  | model, hashed one-hot                                                  |
 *
 * Words are read from the first and last {@link TEXT_WINDOW} characters only, so a long
 * message costs no more than a short one.
 *
 * Prefix families. Where a request has no text and no session with a known output (traces, API
 * clients that send neither), the best signal left is what requests with the same first prompt
 * blocks produced: they are turns of one conversation or calls of one program. The predictor keeps,
 * per family (the chained hash of the first d blocks, for each d in `familyDepths`), the count and
 * sum of log(1 + output tokens) seen, in one LRU table of at most `families` entries. For such a
 * request it predicts the mean of the deepest family with history, in log space, instead of the
 * regression; without one it backs off to the regression.
 *
 * predict + learn is O(D² + depths) = about 2 000 multiply-adds and allocates nothing but a table
 * entry for a new session or family.
 */
import { assert } from '../core/assert.js';
import { fnv1a } from '../core/hash.js';

/** What the predictor sees of a request at its arrival. */
export interface PredictorFeatures {
  promptTokens: number;
  maxTokens: number | null;
  tenant: string;
  model: string;
  lastUserText: string | null;
  sessionId: string | null;
  /** Chained prefix block hashes: entry i identifies the first i + 1 blocks (RoutingRequest.prefixHashes). */
  prefixHashes: readonly number[];
}

export interface PredictorOptions {
  /** Sessions whose last output length is remembered (least recently used forgotten first; default 10 000). */
  readonly sessions?: number;
  /** Largest prediction when the request gives no max_tokens (default 32 768). */
  readonly maxOutputTokens?: number;
  /** Prefix families remembered (least recently learned from forgotten first; default 10 000; 0 = off). */
  readonly families?: number;
  /** Family depths in prefix blocks, tried deepest first (default {@link FAMILY_DEPTHS}). */
  readonly familyDepths?: readonly number[];
}

/**
 * A family is keyed by its first 2 blocks. Measured on Mooncake's conversation trace (512-token
 * blocks; Kendall tau of the prediction, predicting and learning in trace order): depth 1 is no
 * family at all there (every prompt shares its first block, a common system prompt: 0.009), depth 2
 * is one conversation (0.213), and each deeper depth sees fewer of its turns (3: 0.197, 4: 0.181,
 * 8: 0.158). Backing off from depths 8, 6, 4, 3, 2 to the deepest with history gives 0.214, no
 * better for five times the table entries; adding depth 1 under 2 gives 0.196.
 */
export const FAMILY_DEPTHS: readonly number[] = [2];

/** Per prefix family: outputs seen and the sum of their log(1 + output tokens). */
interface Family {
  n: number;
  sumLog: number;
}

/** Characters read from each end of the last user message. */
export const TEXT_WINDOW = 256;

const D = 32;
const F_PROMPT = 1;
const F_MAX = 2;
const F_HAS_MAX = 3;
const F_HAS_TEXT = 4;
const F_TEXT_LEN = 5;
const F_QUESTION = 6;
const F_YES_NO = 13;
const F_HAS_PREV = 14;
const F_PREV = 15;
const F_TENANT = 16;
const F_MODEL = 24;
const HASH_SLOTS = 8;
const LOG_SCALE = 1 / 8;
/** P starts at PRIOR × I: a ridge penalty of 1 / PRIOR, weak enough for a few dozen samples to overrule. */
const PRIOR = 100;

/** Word → feature index: groups of words that announce long or structured answers. */
const WORD_GROUPS: readonly (readonly [number, readonly string[]])[] = [
  [7, ['list', 'enumerate', 'steps', 'outline']],
  [8, ['explain', 'describe', 'why', 'how']],
  [9, ['write', 'essay', 'story', 'draft', 'article', 'poem', 'email']],
  [10, ['code', 'function', 'implement', 'program', 'script', 'python', 'javascript', 'sql', 'bug']],
  [11, ['summarize', 'summarise', 'summary', 'tldr']],
  [12, ['translate', 'translation']],
];
const YES_NO_STARTERS = [
  'is',
  'are',
  'am',
  'do',
  'does',
  'did',
  'can',
  'could',
  'should',
  'will',
  'would',
  'was',
  'were',
  'has',
  'have',
];

const WORD_FEATURE = new Map<number, number>();
for (const [index, words] of WORD_GROUPS) for (const w of words) WORD_FEATURE.set(fnv1a(w), index);
const YES_NO = new Set(YES_NO_STARTERS.map((w) => fnv1a(w)));

/** Output-length predictor learned online; see the module comment. */
export class OutputLengthPredictor {
  private readonly theta = new Float64Array(D);
  /** Inverse of the regularised Gram matrix (symmetric, row-major). */
  private readonly p = new Float64Array(D * D);
  private readonly x = new Float64Array(D);
  private readonly px = new Float64Array(D);
  private readonly sessions = new Map<string, number>();
  private readonly maxSessions: number;
  private readonly maxOutputTokens: number;
  /** Prefix family → its outputs, least recently learned from first. */
  private readonly familyTable = new Map<number, Family>();
  private readonly maxFamilies: number;
  /** Deepest first. */
  private readonly depths: readonly number[];
  private n = 0;

  constructor(opts: PredictorOptions = {}) {
    this.maxSessions = opts.sessions ?? 10_000;
    this.maxOutputTokens = opts.maxOutputTokens ?? 32_768;
    this.maxFamilies = opts.families ?? 10_000;
    this.depths = [...(opts.familyDepths ?? FAMILY_DEPTHS)].sort((a, b) => b - a);
    assert(
      Number.isInteger(this.maxSessions) && this.maxSessions >= 0,
      'predictor: sessions must be a whole number ≥ 0',
    );
    assert(this.maxOutputTokens >= 1, 'predictor: maxOutputTokens must be ≥ 1');
    assert(
      Number.isInteger(this.maxFamilies) && this.maxFamilies >= 0,
      'predictor: families must be a whole number ≥ 0',
    );
    assert(
      this.depths.every((d) => Number.isInteger(d) && d >= 1),
      'predictor: familyDepths must be whole numbers ≥ 1',
    );
    for (let i = 0; i < D; i++) this.p[i * D + i] = PRIOR;
  }

  /** Completed requests learned from. */
  get samples(): number {
    return this.n;
  }

  /** Prefix families remembered (at most `families`). */
  get familyCount(): number {
    return this.familyTable.size;
  }

  /** Predicted output tokens, within [1, max_tokens] (or [1, maxOutputTokens] without max_tokens). */
  predict(f: PredictorFeatures): number {
    this.encode(f);
    let y = 0;
    for (let i = 0; i < D; i++) y += this.theta[i]! * this.x[i]!;
    // Text and a session's last output are this request's own signals; the family is the fallback.
    const family = f.lastUserText === null && this.x[F_HAS_PREV] === 0 ? this.family(f) : undefined;
    if (family !== undefined) y = family.sumLog / family.n;
    const cap = f.maxTokens ?? this.maxOutputTokens;
    return Math.max(1, y < Math.log1p(cap) ? Math.expm1(y) : cap);
  }

  /** Learns from a completed request: `f` as seen at its arrival, and the output tokens it produced. */
  learn(f: PredictorFeatures, outputTokens: number): void {
    assert(
      Number.isFinite(outputTokens),
      `predictor: learn() needs a finite output length, got ${outputTokens}`,
    );
    this.encode(f);
    const { x, px, p, theta } = this;
    let err = Math.log1p(Math.max(0, outputTokens));
    let denom = 1;
    for (let i = 0; i < D; i++) {
      err -= theta[i]! * x[i]!;
      let s = 0;
      const row = i * D;
      for (let j = 0; j < D; j++) s += p[row + j]! * x[j]!;
      px[i] = s;
      denom += x[i]! * s;
    }
    // Sherman–Morrison: P ← P − (Px)(Px)ᵀ / (1 + xᵀPx); θ ← θ + Px · err / (1 + xᵀPx).
    for (let i = 0; i < D; i++) {
      const gi = px[i]! / denom;
      theta[i] = theta[i]! + gi * err;
      const row = i * D;
      for (let j = 0; j < D; j++) p[row + j] = p[row + j]! - gi * px[j]!;
    }
    this.n++;
    if (f.sessionId !== null) this.remember(f.sessionId, outputTokens);
    if (this.maxFamilies > 0) this.learnFamilies(f.prefixHashes, Math.log1p(Math.max(0, outputTokens)));
  }

  /** The deepest of the request's families with history, if any. */
  private family(f: PredictorFeatures): Family | undefined {
    for (const d of this.depths) {
      if (d > f.prefixHashes.length) continue;
      const fam = this.familyTable.get(f.prefixHashes[d - 1]!);
      if (fam !== undefined) return fam;
    }
    return undefined;
  }

  private learnFamilies(hashes: readonly number[], y: number): void {
    const table = this.familyTable;
    for (const d of this.depths) {
      if (d > hashes.length) continue;
      const key = hashes[d - 1]!;
      let fam = table.get(key);
      if (fam === undefined) fam = { n: 0, sumLog: 0 };
      else table.delete(key); // re-inserted last: the most recently learned from
      fam.n++;
      fam.sumLog += y;
      table.set(key, fam);
      if (table.size > this.maxFamilies) table.delete(table.keys().next().value!);
    }
  }

  private remember(session: string, outputTokens: number): void {
    if (this.maxSessions === 0) return;
    this.sessions.delete(session);
    this.sessions.set(session, outputTokens);
    if (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
  }

  private encode(f: PredictorFeatures): void {
    const x = this.x;
    x.fill(0);
    x[0] = 1;
    x[F_PROMPT] = Math.log1p(Math.max(0, f.promptTokens)) * LOG_SCALE;
    if (f.maxTokens !== null) {
      x[F_MAX] = Math.log1p(Math.max(0, f.maxTokens)) * LOG_SCALE;
      x[F_HAS_MAX] = 1;
    }
    if (f.lastUserText !== null) this.encodeText(f.lastUserText);
    const prev = f.sessionId === null ? undefined : this.sessions.get(f.sessionId);
    if (prev !== undefined) {
      x[F_HAS_PREV] = 1;
      x[F_PREV] = Math.log1p(prev) * LOG_SCALE;
    }
    x[F_TENANT + (fnv1a(f.tenant) % HASH_SLOTS)] = 1;
    x[F_MODEL + (fnv1a(f.model) % HASH_SLOTS)] = 1;
  }

  /** Lexical features, hashing words as it goes (no substring or lower-case copy is made). */
  private encodeText(text: string): void {
    const x = this.x;
    x[F_HAS_TEXT] = 1;
    x[F_TEXT_LEN] = Math.log1p(text.length) * LOG_SCALE;
    const n = text.length;
    const firstEnd = Math.min(n, TEXT_WINDOW);
    this.scanWords(text, 0, firstEnd, true);
    if (n > firstEnd) this.scanWords(text, Math.max(firstEnd, n - TEXT_WINDOW), n, false);
  }

  private scanWords(text: string, from: number, to: number, atStart: boolean): void {
    const x = this.x;
    let h = 0x811c9dc5;
    let len = 0;
    let first = atStart;
    for (let i = from; i <= to; i++) {
      let c = i < to ? text.charCodeAt(i) : 32;
      if (c >= 65 && c <= 90) c += 32; // ASCII lower case
      if (c >= 97 && c <= 122) {
        h = Math.imul(h ^ c, 0x01000193);
        len++;
        continue;
      }
      if (c === 63) x[F_QUESTION] = 1; // '?'
      if (len === 0) continue;
      const word = h >>> 0;
      const feature = WORD_FEATURE.get(word);
      if (feature !== undefined) x[feature] = 1;
      if (first && YES_NO.has(word)) x[F_YES_NO] = 1;
      first = false;
      h = 0x811c9dc5;
      len = 0;
    }
  }
}

/**
 * Spearman's rank correlation: Pearson's correlation of the samples' ranks, ties given their mean
 * rank. O(n log n); NaN when either sample is constant or has fewer than two values.
 */
export function spearmanRho(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  assert(
    xs.length === ys.length,
    `rank statistics need samples of one length, got ${xs.length} and ${ys.length}`,
  );
  const rx = ranks(xs);
  const ry = ranks(ys);
  const n = rx.length;
  const mean = (n + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = rx[i]! - mean;
    const dy = ry[i]! - mean;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** 1-based ranks, ties sharing their mean rank. */
function ranks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => compare(v[a]!, v[b]!));
  const out = new Float64Array(n);
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && v[order[end]!] === v[order[start]!]) end++;
    const rank = (start + 1 + end) / 2; // mean of ranks start+1 … end
    for (let k = start; k < end; k++) out[order[k]!] = rank;
    start = end;
  }
  return out;
}

/** Pair counts behind Kendall's tau-b and pairwise accuracy. */
interface PairCounts {
  /** All pairs, n(n − 1) / 2. */
  readonly pairs: number;
  /** Pairs tied in xs, tied in ys, tied in both. */
  readonly tiesX: number;
  readonly tiesY: number;
  readonly tiesXY: number;
  /** Pairs ordered oppositely by xs and ys. */
  readonly discordant: number;
}

/**
 * Kendall's tau-b between two equally long samples, in O(n log n) (Knight's algorithm: sort by
 * (x, y), count discordant pairs as the swaps of a merge sort by y). NaN when either sample is
 * constant (tau-b is undefined) or has fewer than two values.
 */
export function kendallTau(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  const c = pairCounts(xs, ys);
  const concordantMinusDiscordant = c.pairs - c.tiesX - c.tiesY + c.tiesXY - 2 * c.discordant;
  return concordantMinusDiscordant / Math.sqrt((c.pairs - c.tiesX) * (c.pairs - c.tiesY));
}

/**
 * Pairwise accuracy of `predicted` as a ranking of `actual`: over the pairs whose actual values
 * differ, the share that `predicted` orders the same way (a tie in `predicted` counts half).
 * O(n log n); NaN when every actual value is the same.
 */
export function pairwiseAccuracy(predicted: ArrayLike<number>, actual: ArrayLike<number>): number {
  const c = pairCounts(predicted, actual);
  const concordant = c.pairs - c.tiesX - c.tiesY + c.tiesXY - c.discordant;
  return (concordant + 0.5 * (c.tiesX - c.tiesXY)) / (c.pairs - c.tiesY);
}

function pairCounts(xs: ArrayLike<number>, ys: ArrayLike<number>): PairCounts {
  assert(
    xs.length === ys.length,
    `rank statistics need samples of one length, got ${xs.length} and ${ys.length}`,
  );
  const n = xs.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => compare(xs[a]!, xs[b]!) || compare(ys[a]!, ys[b]!));
  let tiesX = 0;
  let tiesXY = 0;
  let runX = 1;
  let runXY = 1;
  for (let k = 1; k <= n; k++) {
    const a = order[k - 1]!;
    const b = order[k];
    const sameX = b !== undefined && xs[a] === xs[b];
    const sameXY = sameX && ys[a] === ys[b!];
    if (sameX) runX++;
    else {
      tiesX += (runX * (runX - 1)) / 2;
      runX = 1;
    }
    if (sameXY) runXY++;
    else {
      tiesXY += (runXY * (runXY - 1)) / 2;
      runXY = 1;
    }
  }
  const ySorted = Float64Array.from(order, (i) => ys[i]!);
  const discordant = mergeSortSwaps(ySorted, new Float64Array(n));
  let tiesY = 0;
  let runY = 1;
  for (let k = 1; k <= n; k++) {
    if (k < n && ySorted[k] === ySorted[k - 1]) runY++;
    else {
      tiesY += (runY * (runY - 1)) / 2;
      runY = 1;
    }
  }
  return { pairs: (n * (n - 1)) / 2, tiesX, tiesY, tiesXY, discordant };
}

const compare = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorts `a` ascending (bottom-up merge sort) and returns the number of strictly inverted pairs. */
function mergeSortSwaps(a: Float64Array, tmp: Float64Array): number {
  const n = a.length;
  let swaps = 0;
  let src = a;
  let dst = tmp;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        if (src[j]! < src[i]!) {
          swaps += mid - i;
          dst[k++] = src[j++]!;
        } else dst[k++] = src[i++]!;
      }
      while (i < mid) dst[k++] = src[i++]!;
      while (j < hi) dst[k++] = src[j++]!;
    }
    [src, dst] = [dst, src];
  }
  if (src !== a) a.set(src);
  return swaps;
}
