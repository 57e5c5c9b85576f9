/**
 * @module tenancy/prices
 * A request's cost in USD from its token counts and its pool's prices per million tokens. Cached
 * prompt tokens, cache writes and reasoning tokens have their own prices (each defaulting to the
 * plain input or output price): gateways that bill them all as plain tokens overcharge cache hits
 * and, where reasoning is dearer, undercharge reasoning.
 */
import type { PoolConfig } from '../config/schema.js';

export type Prices = NonNullable<PoolConfig['prices']>;

export interface TokenCounts {
  /** All prompt tokens, cached ones included (as OpenAI's `prompt_tokens`). */
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly cacheWriteTokens?: number;
  /** All completion tokens, reasoning ones included (as OpenAI's `completion_tokens`). */
  readonly outputTokens: number;
  readonly reasoningTokens: number;
}

/** USD for `t` at `p` (0 without prices). */
export function costUsd(p: Prices | undefined, t: TokenCounts): number {
  if (p === undefined) return 0;
  const cached = Math.min(t.cachedInputTokens, t.inputTokens);
  const writes = Math.min(t.cacheWriteTokens ?? 0, t.inputTokens - cached);
  const plainIn = t.inputTokens - cached - writes;
  const reasoning = Math.min(t.reasoningTokens, t.outputTokens);
  const micro =
    plainIn * p.inputPerMTok +
    cached * (p.cachedInputPerMTok ?? p.inputPerMTok) +
    writes * (p.cacheWritePerMTok ?? p.inputPerMTok) +
    (t.outputTokens - reasoning) * p.outputPerMTok +
    reasoning * (p.reasoningPerMTok ?? p.outputPerMTok);
  return micro / 1e6;
}
