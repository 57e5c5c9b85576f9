/**
 * @module gateway/sse
 * Relays an upstream Server-Sent-Events body event by event (never the whole response), notes
 * token usage from the usage chunk, and can hide that chunk when the gateway asked for it on the
 * client's behalf (`stream_options.include_usage` injected for metering).
 */

/** Token usage as OpenAI reports it. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from the engine's prefix cache, when the engine reports them. */
  cachedTokens: number | null;
  /** Reasoning tokens (inside `completionTokens`, as OpenAI counts them), when reported. */
  reasoningTokens: number | null;
}

/** Reads usage from a parsed response or chunk; null when absent. */
export function readUsage(obj: unknown): Usage | null {
  const u = (
    obj as {
      usage?: {
        prompt_tokens?: unknown;
        completion_tokens?: unknown;
        prompt_tokens_details?: { cached_tokens?: unknown } | null;
        completion_tokens_details?: { reasoning_tokens?: unknown } | null;
      };
    } | null
  )?.usage;
  if (u === null || u === undefined || typeof u !== 'object') return null;
  const p = typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0;
  const c = typeof u.completion_tokens === 'number' ? u.completion_tokens : 0;
  const cached = u.prompt_tokens_details?.cached_tokens;
  const reasoning = u.completion_tokens_details?.reasoning_tokens;
  return {
    promptTokens: p,
    completionTokens: c,
    cachedTokens: typeof cached === 'number' ? cached : null,
    reasoningTokens: typeof reasoning === 'number' ? reasoning : null,
  };
}

const USAGE_KEY = Buffer.from('"usage"');

/**
 * Usage of a whole JSON response body without parsing all of it: only the object under the last
 * `"usage"` key is parsed. An unescaped `"usage"` can only be a key (inside strings the quotes are
 * escaped), and OpenAI-compatible servers put the top-level usage last.
 */
export function usageOfJsonBody(buf: Buffer): Usage | null {
  const at = buf.lastIndexOf(USAGE_KEY);
  if (at === -1) return null;
  let i = skipSpace(buf, at + USAGE_KEY.length);
  if (buf[i] !== 0x3a /* : */) return null;
  i = skipSpace(buf, i + 1);
  if (buf[i] !== 0x7b /* { */) return null;
  let depth = 0;
  let inString = false;
  for (let j = i; j < buf.length; j++) {
    const c = buf[j];
    if (inString) {
      if (c === 0x5c /* \ */) j++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22 /* " */) inString = true;
    else if (c === 0x7b) depth++;
    else if (c === 0x7d /* } */ && --depth === 0) {
      try {
        return readUsage({ usage: JSON.parse(buf.toString('utf8', i, j + 1)) });
      } catch {
        return null;
      }
    }
  }
  return null;
}

function skipSpace(buf: Buffer, i: number): number {
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i++;
  return i;
}

const LF2 = Buffer.from('\n\n');
const CRLF2 = Buffer.from('\r\n\r\n');
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
const USAGE_OBJECT = Buffer.from('"usage":{');
/** A delta with an empty text: the role-only chunk some servers send before the first token. */
const EMPTY_CONTENT = Buffer.from('"content":""');
/** An empty delta or text: the chunk that only carries the finish reason, after the last token. */
const EMPTY_DELTA = Buffer.from('"delta":{}');
const EMPTY_TEXT = Buffer.from('"text":""');
const TOOL_CALLS = Buffer.from('"tool_calls"');
const EMPTY = Buffer.alloc(0);

/**
 * Feed upstream bytes with {@link push}; it returns the complete events to send on (possibly empty),
 * as byte slices of the input: content events are never decoded or copied. Only an event that
 * carries a usage object is parsed. An incomplete trailing event is held until its terminating
 * blank line arrives (a blank line is ASCII, so cutting there never splits a UTF-8 character).
 */
export class SseRelay {
  usage: Usage | null = null;
  /** Whether an event carrying generated content (any non-usage chunk) has been seen. */
  sawContent = false;
  /**
   * Events that carried generated content so far: one per token from vLLM-style servers (a server
   * that packs several tokens in one event is counted low until its usage arrives).
   */
  contentEvents = 0;
  sawDone = false;
  private pending: Buffer = EMPTY;

  /** @param stripUsageChunk drop the final usage-only chunk (choices: []) the client did not ask for */
  constructor(private readonly stripUsageChunk: boolean) {}

  push(chunk: Buffer): Buffer {
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let start = 0;
    let keptFrom = 0;
    let parts: Buffer[] | null = null;
    for (;;) {
      const end = findEventEnd(data, start);
      if (end === -1) break;
      const next = end + (data[end] === 13 ? 4 : 2);
      if (!this.keep(data.subarray(start, end))) {
        // Rare (the injected usage chunk): send what came before it, skip the event.
        parts ??= [];
        if (start > keptFrom) parts.push(data.subarray(keptFrom, start));
        keptFrom = next;
      }
      start = next;
    }
    this.pending = start < data.length ? Buffer.from(data.subarray(start)) : EMPTY;
    if (parts === null) return data.subarray(0, start);
    if (start > keptFrom) parts.push(data.subarray(keptFrom, start));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Whatever is left when the upstream ends (a final event without its blank line). */
  flush(): Buffer {
    const rest = this.pending;
    this.pending = EMPTY;
    return rest.length > 0 && this.keep(rest) ? rest : EMPTY;
  }

  private keep(event: Buffer): boolean {
    const dataAt = event.indexOf(DATA);
    if (dataAt === -1) return true;
    if (
      event.indexOf(DONE, dataAt) !== -1 &&
      event
        .subarray(dataAt + 5)
        .toString('latin1')
        .trim() === '[DONE]'
    ) {
      this.sawDone = true;
      return true;
    }
    // Only the usage chunk is parsed; content chunks pass as bytes.
    if (event.indexOf(USAGE_OBJECT, dataAt) === -1) {
      this.content(event, dataAt);
      return true;
    }
    let parsed: { choices?: unknown[] } | null = null;
    try {
      parsed = JSON.parse(event.subarray(dataAt + 5).toString('utf8')) as { choices?: unknown[] };
    } catch {
      this.content(event, dataAt);
      return true;
    }
    this.usage = readUsage(parsed) ?? this.usage;
    const usageOnly = Array.isArray(parsed?.choices) && parsed.choices.length === 0;
    if (!usageOnly) this.content(event, dataAt);
    return !(usageOnly && this.stripUsageChunk);
  }

  /** A non-usage event: content, unless its delta has no text (a role-only or a finish-only chunk). */
  private content(event: Buffer, dataAt: number): void {
    const empty =
      event.indexOf(EMPTY_CONTENT, dataAt) !== -1 ||
      event.indexOf(EMPTY_DELTA, dataAt) !== -1 ||
      event.indexOf(EMPTY_TEXT, dataAt) !== -1;
    if (empty && event.indexOf(TOOL_CALLS, dataAt) === -1) return;
    this.sawContent = true;
    this.contentEvents++;
  }
}

/** Index of the blank line ending the event that starts at `from` ("\n\n" or "\r\n\r\n"), or -1. */
function findEventEnd(data: Buffer, from: number): number {
  const lf = data.indexOf(LF2, from);
  const crlf = data.indexOf(CRLF2, from);
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return crlf;
  return lf;
}
