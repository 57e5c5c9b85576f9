/**
 * Runs the live gateway on virtual time: a real gateway, real HTTP, emulated engines in the same
 * process, and one {@link VirtualClock} for all of them. Time moves one timer at a time, and only
 * once every effect of the last one has landed (requests reached their engines, tokens reached the
 * client, scrapes and replica changes are done), so the live gateway takes each decision at the
 * same virtual instant the simulator does, from the same state.
 */
import OpenAI from 'openai';
import { validateConfig } from '../../src/config/load.js';
import type { SwitchyardConfig } from '../../src/config/schema.js';
import { VirtualClock } from '../../src/core/virtual-clock.js';
import { chatPromptText } from '../../src/emulator/server.js';
import { blockHashChain, tokenize } from '../../src/emulator/tokens.js';
import { getProfile } from '../../src/engine-model/profiles.js';
import { Gateway } from '../../src/gateway/server.js';
import { estimatePromptTokens } from '../../src/gateway/validate.js';
import { createLogger } from '../../src/obs/logger.js';
import type { DriverEvent } from '../../src/pool/driver.js';
import { PROMPT_BLOCK_TOKENS, promptBlockHashes, renderPrompt } from '../../src/router/prompt-blocks.js';
import type { TraceRecord } from '../../src/traces/record.js';

/** One request of the workload, as a client sends it. */
export interface LiveArrival {
  readonly atMs: number;
  readonly id: string;
  readonly model: string;
  readonly tenant: string;
  readonly messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  readonly maxTokens: number;
}

/** A decision with the pool that took it. */
export type PoolEvent = DriverEvent & { readonly pool: string };

/**
 * The trace record of `a` for the simulator: what the gateway and the engine compute from its body
 * (routing's prompt estimate and prefix hashes, the engine's token count and block hashes).
 */
export function recordOf(a: LiveArrival, profile: string): TraceRecord {
  const body = { model: a.model, messages: a.messages, max_tokens: a.maxTokens };
  const ids = tokenize(chatPromptText(a.messages));
  return {
    arrivalMs: a.atMs,
    inputTokens: Math.max(1, ids.length),
    outputTokens: a.maxTokens,
    promptTokensEstimate: estimatePromptTokens('chat', body),
    prefixHashes: promptBlockHashes(renderPrompt(body)),
    prefixBlockTokens: PROMPT_BLOCK_TOKENS,
    engineBlocks: {
      blockSize: getProfile(profile).blockSize,
      hashes: blockHashChain(ids, getProfile(profile).blockSize),
    },
    tenant: a.tenant,
    model: a.model,
  };
}

/** Runs `arrivals` through a live gateway of `raw` on virtual time; returns every pool's decisions in order. */
export async function runLive(
  raw: Record<string, unknown>,
  arrivals: readonly LiveArrival[],
  /** Reads the gateway's state once every request has ended, before it shuts down. */
  inspect?: (gw: Gateway) => void,
): Promise<PoolEvent[]> {
  const clock = new VirtualClock();
  const config = validateConfig({ ...raw, server: { port: 0, host: '127.0.0.1' } }) as SwitchyardConfig;
  const gw = await Gateway.start({ config, clock, logger: createLogger('silent'), processMetrics: false });
  const events: PoolEvent[] = [];
  const listen = (): void => {
    for (const p of gw.current.pools) p.driver.onEvent ??= (e) => events.push({ ...e, pool: p.name });
  };
  listen();
  const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
  const seen = { tokens: 0, ended: 0 };
  let sent = 0;
  const running: Promise<void>[] = [];
  const engines = () => {
    const out = [...gw.fleet.servers().values()];
    for (const s of gw.poolScalers.values()) out.push(...s.emulatedEngines().values());
    return out.map((s) => s.model.stats());
  };
  const quiet = (): boolean => {
    if (gw.backgroundWork !== 0) return false;
    let arrived = 0;
    let outstanding = 0;
    let refused = 0;
    for (const p of gw.current.pools) {
      arrived += p.driver.arrivals;
      outstanding += p.driver.ledger.outstanding;
    }
    for (const e of events) if (e.kind === 'drop' || e.kind === 'fail') refused++;
    let tokens = 0;
    let finished = 0;
    let inEngines = 0;
    for (const s of engines()) {
      tokens += s.generationTokens;
      finished += s.finishedRequests;
      inEngines += s.running + s.waiting + s.pending;
    }
    return (
      arrived === sent &&
      outstanding === inEngines &&
      seen.tokens === tokens &&
      seen.ended === finished + refused
    );
  };
  const settle = async (): Promise<void> => {
    const deadline = performance.now() + 10_000;
    let calm = 0;
    while (calm < 2) {
      await new Promise((r) => setImmediate(r));
      listen();
      calm = quiet() ? calm + 1 : 0;
      if (performance.now() > deadline)
        throw new Error(`the live gateway did not settle at ${clock.now()} ms`);
      if (calm === 1) await new Promise((r) => setTimeout(r, 1));
    }
  };
  const send = (a: LiveArrival): void => {
    sent++;
    running.push(
      (async () => {
        try {
          const stream = await client.chat.completions.create(
            {
              model: a.model,
              messages: a.messages,
              max_tokens: a.maxTokens,
              stream: true,
              stream_options: { include_usage: true },
            },
            { headers: { 'x-request-id': a.id, 'x-switchyard-tenant': a.tenant } },
          );
          for await (const chunk of stream) {
            const text = chunk.choices[0]?.delta?.content ?? '';
            for (const w of text.split(' ')) if (w.length > 0) seen.tokens++;
          }
        } catch (err) {
          if (!(err instanceof OpenAI.APIError)) throw err;
        } finally {
          seen.ended++;
        }
      })(),
    );
  };
  try {
    await settle();
    for (const a of arrivals) {
      while (clock.nextDueMs() <= a.atMs) {
        clock.step();
        await settle();
      }
      clock.runUntil(a.atMs);
      send(a);
      await settle();
    }
    while (seen.ended < sent && clock.step()) await settle();
    await Promise.all(running);
    inspect?.(gw);
    return events;
  } finally {
    await gw.shutdown(0);
  }
}
