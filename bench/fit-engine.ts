/**
 * @module bench/fit-engine
 * Fits engine-profile constants to the measurements in fidelity/ (`npm run bench:fit-engine`),
 * one profile at a time, on that profile's experiments only: a coordinate search in log space
 * over the named constants, minimising the mean squared log error of each stage's TTFT mean,
 * TPOT and E2E mean (and p99 TTFT at a quarter weight); a stage the model cannot serve costs as
 * if every figure were 10× off. It prints the fitted constants; profiles.ts carries them with the
 * experiments they were fitted on (docs/engine-model.md).
 *
 *   FIT_PROFILE=llama3.1-8b-h100 FIT_PARAMS=stepOverheadMs,decodeAttnMsPer1kCtx,requestOverheadMs \
 *     npm run bench:fit-engine
 *
 * FIT_HOLD_OUT=ID,ID leaves experiments out of the fit and reports their loss afterwards;
 * FIT_START='{"stepOverheadMs":1.15}' starts from other constants than the shipped ones.
 */
import { join } from 'node:path';
import { getProfile } from '../src/engine-model/profiles.js';
import type { EngineProfile } from '../src/engine-model/types.js';
import { loadFidelityData } from '../src/fidelity/data.js';
import { replayExperiment } from '../src/fidelity/replay.js';
import { REPO } from './env.js';

type Param = keyof EngineProfile & string;

const DIR = process.env.FIT_DATA ?? join(REPO, 'fidelity');
const PROFILE = process.env.FIT_PROFILE ?? 'llama3.1-8b-h100';
const PARAMS = (process.env.FIT_PARAMS ?? 'stepOverheadMs,decodeAttnMsPer1kCtx,requestOverheadMs').split(
  ',',
) as Param[];
const ROUNDS = Number(process.env.FIT_ROUNDS ?? 6);
/** Experiments left out of the fit (checked afterwards). */
const HOLD_OUT = (process.env.FIT_HOLD_OUT ?? '').split(',').filter(Boolean);
const FRESH = process.env.FIT_FRESH_QUESTIONS === '1';
/** Starting constants (JSON), e.g. the values before a fit, so a held-out check starts where the fit did. */
const START = JSON.parse(process.env.FIT_START ?? '{}') as Partial<EngineProfile>;

const data = loadFidelityData(DIR);
const exps = data.experiments.filter((e) => e.profile === PROFILE);
const fitOn = exps.filter((e) => !HOLD_OUT.includes(e.id));

async function loss(p: EngineProfile, on = fitOn): Promise<number> {
  let sum = 0;
  let n = 0;
  for (const e of on) {
    for (const r of await replayExperiment(data, e, { profile: p, freshQuestions: FRESH })) {
      if (!Number.isFinite(r.real.e2e_mean)) continue;
      const term = (k: 'ttft_mean' | 'tpot' | 'e2e_mean' | 'ttft_p99') =>
        r.saturated ? Math.log(10) ** 2 : Math.log(r.sim[k] / r.real[k]) ** 2;
      sum += term('ttft_mean') + term('tpot') + term('e2e_mean') + 0.25 * term('ttft_p99');
      n++;
    }
  }
  return sum / Math.max(1, n);
}

async function main(): Promise<void> {
  let best: EngineProfile = { ...getProfile(PROFILE), ...START };
  for (const k of PARAMS) if (!(Number(best[k]) > 0)) best = { ...best, [k]: 1 }; // log search needs > 0
  let bestLoss = await loss(best);
  process.stderr.write(`start ${bestLoss.toFixed(5)} ${JSON.stringify(pick(best))}\n`);
  let step = Math.log(2);
  for (let round = 0; round < ROUNDS; round++, step /= 2) {
    for (const k of PARAMS) {
      for (const dir of [1, -1]) {
        for (;;) {
          const cand = { ...best, [k]: Number(best[k]) * Math.exp(dir * step) };
          const l = await loss(cand);
          if (!(l < bestLoss - 1e-7)) break;
          best = cand;
          bestLoss = l;
        }
      }
    }
    process.stderr.write(`round ${round} ${bestLoss.toFixed(5)} ${JSON.stringify(pick(best))}\n`);
  }
  const held = exps.filter((e) => HOLD_OUT.includes(e.id));
  const out = { profile: PROFILE, fitOn: fitOn.map((e) => e.id), loss: bestLoss, constants: pick(best) };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  if (held.length > 0) process.stdout.write(`held-out loss ${(await loss(best, held)).toFixed(5)}\n`);
}

function pick(p: EngineProfile): Record<string, number> {
  return Object.fromEntries(PARAMS.map((k) => [k, Number(Number(p[k]).toPrecision(4))]));
}

await main();
