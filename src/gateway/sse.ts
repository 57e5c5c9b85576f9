/**
 * @module gateway/sse
 * Relays an upstream Server-Sent-Events body event by event (never the whole response), notes
 * token usage from the usage chunk, and can hide that chunk when the gateway asked for it on the
 * client's behalf (`stream_options.include_usage` injected for metering).
 */
import { StringDecoder } from 'node:string_decoder';

/** Token usage as OpenAI reports it. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** Reads usage from a parsed response or chunk; null when absent. */
export function readUsage(obj: unknown): Usage | null {
  const u = (obj as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } } | null)?.usage;
  if (u === null || u === undefined || typeof u !== 'object') return null;
  const p = typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0;
  const c = typeof u.completion_tokens === 'number' ? u.completion_tokens : 0;
  return { promptTokens: p, completionTokens: c };
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

/**
 * Feed upstream bytes with {@link push}; it returns the complete events to send on (possibly '').
 * An incomplete trailing event is held until its terminating blank line arrives.
 */
export class SseRelay {
  usage: Usage | null = null;
  /** Whether an event carrying generated content (any non-usage chunk) has been seen. */
  sawContent = false;
  sawDone = false;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  /** @param stripUsageChunk drop the final usage-only chunk (choices: []) the client did not ask for */
  constructor(private readonly stripUsageChunk: boolean) {}

  push(chunk: Buffer): string {
    const text = this.pending + this.decoder.write(chunk);
    let start = 0;
    let out = '';
    for (;;) {
      const end = findEventEnd(text, start);
      if (end === -1) break;
      const sep = text.charCodeAt(end) === 13 ? 4 : 2;
      if (this.keep(text.slice(start, end))) out += text.slice(start, end + sep);
      start = end + sep;
    }
    this.pending = text.slice(start);
    return out;
  }

  /** Whatever is left when the upstream ends (a final event without its blank line). */
  flush(): string {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest.length > 0 && this.keep(rest) ? rest : '';
  }

  private keep(event: string): boolean {
    const dataAt = event.indexOf('data:');
    if (dataAt === -1) return true;
    const data = event.slice(dataAt + 5).trim();
    if (data === '[DONE]') {
      this.sawDone = true;
      return true;
    }
    // Only the usage chunk is parsed; content chunks pass as bytes.
    if (!data.includes('"usage":{')) {
      this.sawContent = true;
      return true;
    }
    let parsed: { choices?: unknown[] } | null = null;
    try {
      parsed = JSON.parse(data) as { choices?: unknown[] };
    } catch {
      this.sawContent = true;
      return true;
    }
    this.usage = readUsage(parsed) ?? this.usage;
    const usageOnly = Array.isArray(parsed?.choices) && parsed.choices.length === 0;
    if (!usageOnly) this.sawContent = true;
    return !(usageOnly && this.stripUsageChunk);
  }
}

/** Index of the blank line ending the event that starts at `from` ("\n\n" or "\r\n\r\n"), or -1. */
function findEventEnd(text: string, from: number): number {
  const lf = text.indexOf('\n\n', from);
  const crlf = text.indexOf('\r\n\r\n', from);
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return crlf;
  return lf;
}
