/**
 * @module router/prompt-blocks
 * The live prefix signal: a request's prompt rendered canonically and cut into fixed-size blocks,
 * each hashed together with everything before it (a chain), so two prompts share block hash k
 * exactly when their first (k+1) blocks of text are equal.
 *
 * Block size. Engines cache KV in blocks of 16 tokens (vLLM, SGLang pages of 1–64). The gateway has
 * no tokenizer for every model it fronts, so it counts characters: one prefix block is
 * {@link PROMPT_BLOCK_CHARS} characters ≈ {@link PROMPT_BLOCK_TOKENS} tokens at the ~4 characters
 * per token of English BPE text, i.e. sixteen engine blocks. Only equality of blocks matters for
 * routing, so the approximation only blurs the estimate of how many tokens a match saves (by one
 * block at most — a few ms of prefill — plus the drift of the 4:1 ratio on code or non-Latin
 * text), never which endpoint holds the longer prefix. The block is this coarse because the prefix
 * index does work per block on every request: 256 tokens keeps an 8k-token prompt at 32 blocks and
 * a decision within its 20 µs budget at 64 endpoints (docs/routing.md).
 */
import { mix32 } from '../core/hash.js';

export const PROMPT_BLOCK_TOKENS = 256;
export const PROMPT_BLOCK_CHARS = PROMPT_BLOCK_TOKENS * 4;
const CHAIN_SEED = 0x9e3779b1;
// Separators that cannot appear in JSON-decoded text without escaping in the original request.
const FIELD = '\u0000';
const RECORD = '\u0001';

/**
 * The prompt as the engine will see it, up to templating: tools first (chat templates put them in
 * the system prompt), then each message's role and content. Non-text content parts contribute their
 * JSON, so two requests with different images never look equal.
 */
export function renderPrompt(request: object): string {
  const body = request as { messages?: unknown; prompt?: unknown; tools?: unknown };
  if (typeof body.prompt === 'string') return body.prompt;
  if (Array.isArray(body.prompt)) return body.prompt.map(String).join(RECORD);
  let out = body.tools === undefined ? '' : JSON.stringify(body.tools) + RECORD;
  if (!Array.isArray(body.messages)) return out;
  for (const m of body.messages as { role?: unknown; content?: unknown }[]) {
    out += `${String(m?.role)}${FIELD}`;
    const c = m?.content;
    if (typeof c === 'string') out += c;
    else if (Array.isArray(c)) {
      for (const part of c as { type?: unknown; text?: unknown }[]) {
        out += part?.type === 'text' && typeof part.text === 'string' ? part.text : JSON.stringify(part);
      }
    } else if (c !== undefined && c !== null) out += JSON.stringify(c);
    out += RECORD;
  }
  return out;
}

/** Chained hashes of the full {@link PROMPT_BLOCK_CHARS}-character blocks of `text`. */
export function promptBlockHashes(text: string): number[] {
  const full = Math.floor(text.length / PROMPT_BLOCK_CHARS);
  const out = new Array<number>(full);
  let chain = CHAIN_SEED;
  for (let b = 0; b < full; b++) {
    // FNV-1a over the block's characters, without slicing the string.
    let h = 0x811c9dc5;
    const end = (b + 1) * PROMPT_BLOCK_CHARS;
    for (let i = b * PROMPT_BLOCK_CHARS; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    chain = mix32(chain, h >>> 0);
    out[b] = chain;
  }
  return out;
}
