/**
 * The engine model on a virtual clock, checked against outcomes computed by hand. The toy profile
 * makes the arithmetic exact: W = 0 and no attention terms, so a step of N tokens takes
 * 1 ms + 0.01 ms·N; blocks of 4 tokens and a budget of 64 tokens per step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '../../src/core/virtual-clock.js';
import { EngineModel } from '../../src/engine-model/engine-model.js';
import { ENGINE_PROFILES } from '../../src/engine-model/profiles.js';
import { stepTimeMs } from '../../src/engine-model/step-time.js';
import type { EngineProfile, EngineRequest, EngineRequestResult } from '../../src/engine-model/types.js';
import { TOY_PROFILE } from '../helpers/profiles.js';

const toy = TOY_PROFILE;

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

/** An engine on a fresh virtual clock that records every result and every token event. */
function harness(profile: EngineProfile = toy, options = {}) {
  const clock = new VirtualClock();
  const engine = new EngineModel(profile, clock, options);
  const results = new Map<string, EngineRequestResult>();
  const tokens = new Map<string, number>();
  const submit = (req: EngineRequest) =>
    engine.submit(req, {
      onTokens: (n) => tokens.set(req.id, (tokens.get(req.id) ?? 0) + n),
      onFinish: (r) => {
        assert.ok(!results.has(r.id), `${r.id} finished twice`);
        results.set(r.id, r);
      },
    });
  return { clock, engine, results, tokens, submit };
}

const hashes = (prefix: string, n: number): number[] =>
  Array.from({ length: n }, (_, i) => {
    let h = 2166136261;
    for (const c of `${prefix}:${i}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    return h;
  });

describe('engine model: step time', () => {
  it('matches the reference outputs of the fitted model for Llama-3.1-8B on H100', () => {
    const p = ENGINE_PROFILES['llama3.1-8b-h100']!;
    // The fitted profile's outputs (docs/engine-model.md): fresh 1k prefill ≈ 26.4 ms, 4k ≈ 101.9 ms;
    // decode step at ctx 2k: B=1 ≈ 7.27, B=32 ≈ 10.32 ms.
    const prefill = (n: number) =>
      stepTimeMs(p, { requests: 1, tokens: n, prefillPairs: n * (n / 2), decodeContext: 0 });
    const decode = (b: number) =>
      stepTimeMs(p, { requests: b, tokens: b, prefillPairs: 0, decodeContext: b * 2000 });
    assert.ok(Math.abs(prefill(1000) - 26.4) < 0.1, `1k prefill ${prefill(1000)}`);
    assert.ok(Math.abs(prefill(4000) - 101.9) < 0.1, `4k prefill ${prefill(4000)}`);
    assert.ok(Math.abs(decode(1) - 7.27) < 0.01, `decode B=1 ${decode(1)}`);
    assert.ok(Math.abs(decode(32) - 10.32) < 0.01, `decode B=32 ${decode(32)}`);
  });

  it('the three required profiles and their names are shipped', () => {
    for (const name of ['llama3.1-8b-h100', 'qwen2.5-7b-h100', 'qwen2.5-1.5b-h100']) {
      assert.equal(ENGINE_PROFILES[name]?.name, name);
    }
  });
});

describe('engine model: one request', () => {
  it('TTFT and end-to-end time equal the formula (chunked prefill, then decode)', () => {
    const { clock, results, tokens, submit } = harness();
    assert.ok(submit({ id: 'a', promptTokens: 100, outputTokens: 5 }));
    clock.runAll();
    const r = results.get('a')!;
    // Prefill in chunks of 64 and 36 tokens: 1.64 + 1.36 = 3.00 ms, which samples token 1;
    // then 4 decode steps of 1 token each at 1.01 ms.
    close(r.firstTokenMs, 3.0, 'TTFT');
    close(r.finishedMs, 3.0 + 4 * 1.01, 'end-to-end');
    assert.equal(r.reason, 'length');
    assert.equal(r.outputTokens, 5);
    assert.equal(tokens.get('a'), 5);
    assert.equal(r.cachedTokens, 0);
  });

  it('a real profile: TTFT of a 1,000-token prompt is one step of the calibrated formula', () => {
    const p = ENGINE_PROFILES['qwen2.5-7b-h100']!;
    const { clock, results, submit } = harness(p);
    submit({ id: 'a', promptTokens: 1000, outputTokens: 3 });
    clock.runAll();
    const r = results.get('a')!;
    // The request waits the profile's API overhead R before its prefill step.
    const ttft =
      (p.requestOverheadMs ?? 0) +
      p.stepOverheadMs +
      p.perRequestMs +
      (p.weightsMs ** 1.5 + ((p.gemmMsPer1kTokens * 1000) / 1000) ** 1.5) ** (2 / 3) +
      (p.prefillAttnMsPerMPairs * 1000 * 500) / 1e6;
    const decode = (ctx: number) =>
      p.stepOverheadMs +
      p.perRequestMs +
      (p.weightsMs ** 1.5 + ((p.gemmMsPer1kTokens * 1) / 1000) ** 1.5) ** (2 / 3) +
      (p.decodeAttnMsPer1kCtx * ctx) / 1e3;
    close(r.firstTokenMs, ttft, 'TTFT');
    close(r.finishedMs, ttft + decode(1001) + decode(1002), 'end-to-end');
  });

  it('requests arriving together share steps (continuous batching)', () => {
    const { clock, results, submit } = harness();
    submit({ id: 'a', promptTokens: 20, outputTokens: 2 });
    submit({ id: 'b', promptTokens: 20, outputTokens: 2 });
    clock.runAll();
    // One step prefills both (40 tokens: 1.40 ms), one decodes both (2 tokens: 1.02 ms).
    for (const id of ['a', 'b']) {
      close(results.get(id)!.firstTokenMs, 1.4, `${id} TTFT`);
      close(results.get(id)!.finishedMs, 2.42, `${id} end`);
    }
  });

  it('a per-request overhead delays the request before the queue: TTFT and end to end grow by it', () => {
    const { clock, engine, results, submit } = harness({ ...toy, requestOverheadMs: 7 });
    submit({ id: 'a', promptTokens: 100, outputTokens: 5 });
    submit({ id: 'gone', promptTokens: 100, outputTokens: 5 });
    assert.equal(engine.stats().waiting, 0, 'still in the API server, not in the queue');
    engine.cancel('gone'); // a client that leaves before the engine saw its request
    clock.runAll();
    const r = results.get('a')!;
    close(r.arrivalMs, 0, 'arrival');
    close(r.firstScheduledMs, 7, 'first scheduled');
    close(r.firstTokenMs, 7 + 3.0, 'TTFT');
    close(r.finishedMs, 7 + 3.0 + 4 * 1.01, 'end-to-end');
    assert.equal(results.get('gone')!.reason, 'cancelled');
    assert.ok(Number.isNaN(results.get('gone')!.firstScheduledMs), 'the cancelled request never ran');
  });

  it('a cold engine serves nothing until its cold start has passed', () => {
    const { clock, engine, results, submit } = harness(toy, { coldStart: true });
    submit({ id: 'a', promptTokens: 10, outputTokens: 1 });
    assert.equal(engine.stats().ready, false);
    clock.runAll();
    close(results.get('a')!.firstScheduledMs, 500, 'first scheduled');
    close(results.get('a')!.finishedMs, 500 + 1.1, 'finished');
  });
});

describe('engine model: prefix cache', () => {
  it('a second request with a shared prefix reuses exactly the cached blocks', () => {
    const { clock, engine, results, submit } = harness();
    const a = hashes('a', 10); // 40 tokens, 10 full blocks
    submit({ id: 'a', promptTokens: 40, outputTokens: 1, blockHashes: a });
    clock.runAll();
    const b = [...a.slice(0, 8), ...hashes('b', 4)]; // shares 8 blocks (32 tokens), then diverges
    const t0 = clock.now();
    submit({ id: 'b', promptTokens: 48, outputTokens: 1, blockHashes: b });
    clock.runAll();
    const r = results.get('b')!;
    assert.equal(r.cachedTokens, 32);
    close(r.finishedMs - t0, 1 + 0.16, 'only the 16 uncached tokens are computed');
    const s = engine.stats();
    assert.equal(s.prefixQueryTokens, 40 + 48);
    assert.equal(s.prefixHitTokens, 32);
    assert.equal(s.promptTokensComputed, 40 + 16);
  });

  it('a fully cached prompt still computes its last token, as vLLM does', () => {
    const { clock, results, submit } = harness();
    const a = hashes('a', 10);
    submit({ id: 'a', promptTokens: 40, outputTokens: 1, blockHashes: a });
    clock.runAll();
    submit({ id: 'again', promptTokens: 40, outputTokens: 1, blockHashes: a });
    clock.runAll();
    assert.equal(results.get('again')!.cachedTokens, 36);
  });

  it('without block hashes nothing is shared (no invented hits)', () => {
    const { clock, results, submit } = harness();
    submit({ id: 'a', promptTokens: 40, outputTokens: 1 });
    clock.runAll();
    submit({ id: 'b', promptTokens: 40, outputTokens: 1 });
    clock.runAll();
    assert.equal(results.get('b')!.cachedTokens, 0);
  });

  it('the LRU evicts the oldest unreferenced blocks, and a hit refreshes a block', () => {
    const p = { ...toy, numKvBlocks: 8 };
    const { clock, engine, results, submit } = harness(p);
    const run = (id: string, h: number[]) => {
      submit({ id, promptTokens: h.length * 4, outputTokens: 1, blockHashes: h });
      clock.runAll();
    };
    const cached = (h: number[]) => h.map((x) => engine.isCached(x));
    const [a, b, c] = [hashes('a', 2), hashes('b', 2), hashes('c', 2)];
    run('a', a); // each takes 2 of the 8 blocks and leaves them cached when it ends
    run('b', b);
    run('c', c);
    run('b-again', [...b, ...hashes('x', 1)]); // hits both of b's blocks: b is now the most recently used
    assert.equal(results.get('b-again')!.cachedTokens, 8);
    assert.deepEqual(cached([...a, ...b, ...c]), [true, true, true, true, true, true]);
    run('d', hashes('d', 3)); // 3 fresh blocks: the last empty one, then a's (least recently freed)
    assert.deepEqual(cached([...a, ...b, ...c]), [false, false, true, true, true, true]);
    run('e', hashes('e', 3)); // next oldest are c's, not b's (refreshed by its hit)
    assert.deepEqual(cached([...b, ...c]), [true, true, false, false]);
  });
});

describe('engine model: KV exhaustion', () => {
  it('preempts the newest running request, which recomputes and still finishes exactly once', () => {
    // 10 blocks of 4 tokens; each request ends holding 12 + 20 - 1 = 31 tokens = 8 blocks, so the two
    // cannot both finish in KV. At 21 tokens each needs a 6th block with none free: b is preempted.
    const p = { ...toy, numKvBlocks: 10 };
    const { clock, engine, results, tokens, submit } = harness(p);
    submit({ id: 'a', promptTokens: 12, outputTokens: 20 });
    submit({ id: 'b', promptTokens: 12, outputTokens: 20 });
    clock.runAll();
    const [a, b] = [results.get('a')!, results.get('b')!];
    assert.equal(a.preemptions, 0);
    assert.equal(b.preemptions, 1);
    assert.equal(engine.stats().preemptions, 1);
    assert.equal(a.outputTokens, 20);
    assert.equal(b.outputTokens, 20);
    assert.equal(tokens.get('b'), 20, 'no token is emitted twice after a recompute');
    assert.ok(b.finishedMs > a.finishedMs, 'b resumes only after a frees its blocks');
    assert.equal(engine.stats().kvUsage, 0);
  });

  it('refuses what can never fit, and a full waiting queue', () => {
    const { submit } = harness({ ...toy, numKvBlocks: 10 }, { maxWaiting: 1 });
    assert.equal(submit({ id: 'huge', promptTokens: 100, outputTokens: 1 }), false);
    assert.equal(submit({ id: 'too-long', promptTokens: 4000, outputTokens: 100 }), false);
    assert.equal(submit({ id: 'a', promptTokens: 4, outputTokens: 1 }), true);
    assert.equal(submit({ id: 'b', promptTokens: 4, outputTokens: 1 }), false);
  });
});

describe('engine model: cancellation and determinism', () => {
  it('cancel frees the batch slot and KV at once and reports once', () => {
    const { clock, engine, results, submit } = harness();
    submit({ id: 'a', promptTokens: 40, outputTokens: 1000 });
    submit({ id: 'w', promptTokens: 40, outputTokens: 100 });
    clock.runUntil(5);
    assert.equal(engine.stats().running, 2);
    engine.cancel('a');
    engine.cancel('a');
    assert.equal(results.get('a')!.reason, 'cancelled');
    clock.runAll();
    assert.equal(engine.stats().running, 0);
    assert.equal(engine.stats().kvUsage, 0);
    assert.equal(results.get('w')!.reason, 'length');
  });

  it('the same submissions give identical results', () => {
    const once = () => {
      const { clock, results, submit } = harness({ ...toy, numKvBlocks: 40 });
      for (let i = 0; i < 30; i++) {
        clock.runUntil(i * 0.7);
        submit({ id: `r${i}`, promptTokens: 10 + ((i * 37) % 50), outputTokens: 1 + ((i * 11) % 30) });
      }
      clock.runAll();
      return JSON.stringify([...results.values()]);
    };
    assert.equal(once(), once());
  });
});
