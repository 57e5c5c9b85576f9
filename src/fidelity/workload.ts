/**
 * @module fidelity/workload
 * The requests kubernetes-sigs/inference-perf sends for a `shared_prefix` template with the
 * `constant` load timer, as its code generates them:
 *
 * - **Arrivals** (`inference_perf/loadgen/load_timer.py`, ConstantLoadTimer): per stage,
 *   ⌊rate × duration⌋ requests with exponential gaps normalised so that they sum to the duration;
 *   stages follow each other.
 * - **Prompts** (`inference_perf/datagen/shared_prefix_datagen.py`): `groups` random system
 *   prompts of `sys` tokens and `groups × users` random questions of `q` tokens. With multi-turn
 *   chat on (every campaign here), request i goes to user session i mod (groups × users) and
 *   carries question i mod (groups × users) after the session's context, which is its group's
 *   system prompt; the sessions are shuffled against the questions, so a slot's system prompt is
 *   a random group's. Each slot sends the same prompt every round: the measured prompt lengths do
 *   not grow with rounds (the context is not accumulated; BLIS found the same,
 *   inference-sim/inference-sim `sim/workload/inference_perf.go`), so from its second round a
 *   slot's whole prompt can be in the prefix cache.
 * - **Lengths**: random token ids decoded to text and tokenised again come out longer; the
 *   measured Llama-2-70B prompts were 5.1 % longer than `sys + q` (574.9 against 547 tokens,
 *   inference-sim/training `default_args/20260217-202857-llama-2-70b-tp4-general`), which
 *   {@link PROMPT_TOKEN_FACTOR} applies to both parts. Outputs are exact (`ignore_eos`).
 *
 * Not modelled: a session holds its next round until the previous one has finished (at these
 * rates a session's rounds are 5–29 s apart against end-to-end times of 2–23 s, so this rarely binds).
 */
import { SeededRng } from '../core/rng.js';
import type { TraceRecord } from '../traces/record.js';
import type { FidelityWorkload } from './data.js';

/** Measured prompt tokens ÷ template tokens (see the module comment). */
export const PROMPT_TOKEN_FACTOR = 574.9 / 547;

/** The generated requests, in arrival order, and each one's stage index. */
export interface FidelityRequests {
  readonly records: readonly TraceRecord[];
  readonly stageOf: Uint8Array;
  /** Each stage's [start, end), ms. */
  readonly stages: readonly { readonly startMs: number; readonly endMs: number; readonly rate: number }[];
}

/**
 * The requests of `w`, with prefix block ids in blocks of `blockTokens` tokens. `freshQuestions`:
 * every request's question is new (only the system prompt is shared), as BLIS models these runs.
 */
export function inferencePerfRequests(
  w: FidelityWorkload,
  blockTokens: number,
  seed: number,
  freshQuestions = false,
): FidelityRequests {
  const rng = new SeededRng(seed);
  const slots = w.groups * w.users;
  const groupOf = shuffledGroups(w.groups, w.users, rng);
  const sysTokens = Math.round(w.sys * PROMPT_TOKEN_FACTOR);
  const promptTokens = Math.round((w.sys + w.q) * PROMPT_TOKEN_FACTOR);
  const blocksOf = Array.from({ length: slots }, (_, k) =>
    slotBlocks(k, groupOf[k]!, promptTokens, sysTokens, blockTokens),
  );
  const records: TraceRecord[] = [];
  const stageIdx: number[] = [];
  const stages: FidelityRequests['stages'][number][] = [];
  let startMs = 0;
  let i = 0;
  for (const [s, [rate, durationS]] of w.stages.entries()) {
    const durationMs = durationS * 1000;
    for (const t of normalisedExponentialTimes(rate, durationS, rng)) {
      const slot = i++ % slots;
      const blocks = freshQuestions
        ? slotBlocks(slots + i, groupOf[slot]!, promptTokens, sysTokens, blockTokens)
        : blocksOf[slot]!;
      records.push({
        arrivalMs: startMs + t,
        inputTokens: promptTokens,
        outputTokens: w.out,
        hashIds: blocks,
        hashBlockTokens: blockTokens,
        session: `user-${slot}`,
      });
      stageIdx.push(s);
    }
    stages.push({ startMs, endMs: startMs + durationMs, rate });
    startMs += durationMs;
  }
  return { records, stageOf: Uint8Array.from(stageIdx), stages };
}

/** ConstantLoadTimer: ⌊rate·d⌋ exponential gaps scaled to sum to d; the times (ms) within the stage. */
function normalisedExponentialTimes(rate: number, durationS: number, rng: SeededRng): number[] {
  const n = Math.floor(rate * durationS);
  const gaps = Array.from({ length: n }, () => -Math.log(1 - rng.next()) / rate);
  const scale = (durationS * 1000) / gaps.reduce((a, b) => a + b, 0);
  let t = 0;
  return gaps.map((g) => (t += g * scale));
}

/** Sessions are created group by group, then shuffled (Fisher–Yates): slot k's group. */
function shuffledGroups(groups: number, users: number, rng: SeededRng): number[] {
  const g = Array.from({ length: groups * users }, (_, k) => Math.floor(k / users));
  for (let k = g.length - 1; k > 0; k--) {
    const j = Math.floor(rng.next() * (k + 1));
    [g[k], g[j]] = [g[j]!, g[k]!];
  }
  return g;
}

/** Block ids of slot k's prompt: blocks wholly inside the system prompt are its group's, the rest the slot's own. */
function slotBlocks(
  k: number,
  group: number,
  promptTokens: number,
  sysTokens: number,
  blockTokens: number,
): number[] {
  const ids: number[] = [];
  for (let b = 0; (b + 1) * blockTokens <= promptTokens; b++) {
    ids.push((b + 1) * blockTokens <= sysTokens ? group * 100_000 + b : 1e9 + k * 100_000 + b);
  }
  return ids;
}
