/**
 * @module tiers/cascade
 * The checks a cascade runs on the small tier's buffered chat answer. When one fails, the gateway
 * asks the large tier instead and returns its answer. Checks run in the order configured; the first
 * that fails names the escalation (`x-switchyard-cascade: escalated:<check>`).
 */
import type { CascadeCheck } from '../config/schema.js';

/** Where a refusal shows: models open with it, so only the start of an answer is read. */
const REFUSAL_WINDOW_CHARS = 200;
const OPENER = String.raw`(?:(?:(?:i'm|i am)\s+)?sorry|unfortunately|apologies)[,.!]?\s+(?:but\s+)?`;
const AS_AI = String.raw`as an ai(?:\s+(?:language\s+)?model)?,?\s+`;
const CANNOT = String.raw`(?:can'?t|cannot|can not|won'?t(?: be able to)?|will not(?: be able to)?|(?:'m|am|'re|are)\s+(?:unable|not able) to|must decline to)`;
const ACT =
  '(?:help|assist|comply|provide|fulfil|fulfill|answer|do that|support|engage|create|generate|share)';
/**
 * "I can't help with that", "I'm sorry, but I cannot assist", "As an AI, I am unable to provide"…
 * but not "I can't help but notice".
 */
const REFUSAL = new RegExp(
  String.raw`^\s*(?:${OPENER})?(?:${AS_AI})?(?:i|we)\s*${CANNOT}\s+(?:\w+\s+){0,2}?${ACT}\b(?!\s+but\b)`,
  'i',
);
const CURLY_APOSTROPHE = /\u2019/g;

interface ChatMessage {
  content?: unknown;
  refusal?: unknown;
  tool_calls?: unknown;
  function_call?: unknown;
}

/** Whether a request asked for JSON output (`response_format` `json_object` or `json_schema`). */
export function wantsJson(body: Readonly<Record<string, unknown>>): boolean {
  const type = (body.response_format as { type?: unknown } | null | undefined)?.type;
  return type === 'json_object' || type === 'json_schema';
}

/**
 * The first of `checks` that the parsed chat completion `answer` fails, or null when it passes
 * them all. A check fails when it fails for any choice; an answer without choices is empty.
 * `invalid-json` applies only when `jsonRequested`, and tests that the text parses, not that it
 * matches a `json_schema`.
 */
export function failedCheck(
  checks: readonly CascadeCheck[],
  answer: unknown,
  jsonRequested: boolean,
): CascadeCheck | null {
  const raw = (answer as { choices?: unknown } | null)?.choices;
  const messages: ChatMessage[] = Array.isArray(raw)
    ? raw.map((c) => ((c as { message?: unknown } | null)?.message ?? {}) as ChatMessage)
    : [];
  for (const check of checks) {
    if (check === 'empty' && (messages.length === 0 || messages.some(isEmpty))) return check;
    if (check === 'refusal' && messages.some(isRefusal)) return check;
    if (check === 'invalid-json' && jsonRequested && messages.some(isInvalidJson)) return check;
  }
  return null;
}

/** No text, no tool call and no refusal (a refusal is its own check). */
function isEmpty(m: ChatMessage): boolean {
  if (hasToolCall(m) || hasRefusalField(m)) return false;
  return typeof m.content !== 'string' || m.content.trim() === '';
}

function isRefusal(m: ChatMessage): boolean {
  if (hasRefusalField(m)) return true;
  if (typeof m.content !== 'string') return false;
  return REFUSAL.test(m.content.slice(0, REFUSAL_WINDOW_CHARS).replace(CURLY_APOSTROPHE, "'"));
}

function isInvalidJson(m: ChatMessage): boolean {
  if (hasToolCall(m)) return false;
  if (typeof m.content !== 'string') return true;
  try {
    JSON.parse(m.content);
    return false;
  } catch {
    return true;
  }
}

function hasToolCall(m: ChatMessage): boolean {
  return (Array.isArray(m.tool_calls) && m.tool_calls.length > 0) || m.function_call != null;
}

/** OpenAI's structured-output refusal: `message.refusal` holds the text and `content` is null. */
function hasRefusalField(m: ChatMessage): boolean {
  return typeof m.refusal === 'string' && m.refusal !== '';
}
