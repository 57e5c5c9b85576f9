/**
 * @module tiers/signals
 * What tier rules read from one request: the prompt's size, the text of its last user message, PII
 * in any of its text, and headers. Texts are extracted and scanned only when a rule asks, once.
 */
import { type PiiKind, detectPii } from './pii.js';

/** A request body; prompt text is read from `messages` (chat), `prompt` or `input`. */
export type PromptBody = Readonly<Record<string, unknown>>;

/** Request headers as Node gives them: lower-case names. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Header naming the tenant of a gateway without authentication (ignored when keys are on). */
export const TENANT_HEADER = 'x-switchyard-tenant';

/** The signals of one request, computed lazily and memoised. */
export class TierSignals {
  private lastUser: string | undefined;
  private piiKind: PiiKind | null | undefined;

  constructor(
    private readonly body: PromptBody,
    private readonly headers: HeaderBag,
    /** The gateway's prompt size estimate, in tokens. */
    readonly promptTokens: number,
    /** The tenant from the caller's key; undefined: the tenant header names it (no authentication). */
    private readonly keyTenant?: string,
  ) {}

  /** The last user message of a chat (its text parts joined), or the prompt / input text. */
  get lastUserText(): string {
    this.lastUser ??= lastUserTextOf(this.body);
    return this.lastUser;
  }

  /** The first kind of PII found in any message, tool-call argument, prompt or input; null if none. */
  get pii(): PiiKind | null {
    if (this.piiKind === undefined) this.piiKind = piiOf(this.body);
    return this.piiKind;
  }

  /** A header's value (`name` in lower case); a repeated header gives its first value. */
  header(name: string): string | undefined {
    const v = this.headers[name];
    return typeof v === 'string' ? v : v?.[0];
  }

  /**
   * The tenant the request belongs to: its key's when authentication is on (the header is then
   * ignored: a client could name any tenant in it), else the `x-switchyard-tenant` header's.
   */
  get tenant(): string | undefined {
    return this.keyTenant ?? this.header(TENANT_HEADER);
  }
}

function lastUserTextOf(body: PromptBody): string {
  if (Array.isArray(body.messages)) {
    for (let i = body.messages.length - 1; i >= 0; i--) {
      const m = body.messages[i] as { role?: unknown; content?: unknown } | null;
      if (m?.role === 'user') return contentText(m.content);
    }
    return '';
  }
  return stringsOf(body.prompt ?? body.input).join('\n');
}

function piiOf(body: PromptBody): PiiKind | null {
  if (!Array.isArray(body.messages)) {
    for (const s of stringsOf(body.prompt ?? body.input)) {
      const kind = detectPii(s);
      if (kind !== null) return kind;
    }
    return null;
  }
  for (const raw of body.messages) {
    const m = raw as { content?: unknown; tool_calls?: unknown } | null;
    const kind = detectPii(contentText(m?.content)) ?? detectPii(toolArguments(m?.tool_calls));
    if (kind !== null) return kind;
  }
  return null;
}

/** Text of a message's content: a string, or the `text` of its parts (images and audio are skipped). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    const text = (part as { text?: unknown } | null)?.text;
    if (typeof text === 'string') out += out === '' ? text : `\n${text}`;
  }
  return out;
}

function toolArguments(calls: unknown): string {
  if (!Array.isArray(calls)) return '';
  let out = '';
  for (const call of calls) {
    const args = (call as { function?: { arguments?: unknown } } | null)?.function?.arguments;
    if (typeof args === 'string') out += `${args}\n`;
  }
  return out;
}

/** The strings of a prompt or input (token-id arrays carry no text). */
function stringsOf(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}
