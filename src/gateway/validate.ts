/**
 * @module gateway/validate
 * Request schemas for the OpenAI surface. They check what the gateway relies on and what would
 * make an upstream fail; every other field passes through unchanged (loose objects).
 */
import { z } from 'zod';
import { SwitchyardError } from '../core/errors.js';
import { formatPath } from '../core/path.js';

const role = z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const contentPart = z.looseObject({ type: z.string() });
const message = z.looseObject({
  role,
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
});
const streamOptions = z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional();
const common = {
  model: z.string().min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: streamOptions,
  max_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  n: z.number().int().min(1).max(128).nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4)])
    .nullable()
    .optional(),
  user: z.string().optional(),
};

const chatSchema = z.looseObject({
  ...common,
  messages: z.array(message).min(1),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
});

const tokenArray = z.array(z.number().int().nonnegative());
const completionSchema = z.looseObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenArray.min(1), z.array(tokenArray).min(1)]),
});

const embeddingSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1), tokenArray.min(1), z.array(tokenArray).min(1)]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().positive().optional(),
  user: z.string().optional(),
});

/** The three inference operations the gateway proxies. */
export type Operation = 'chat' | 'completions' | 'embeddings';

const SCHEMAS = { chat: chatSchema, completions: completionSchema, embeddings: embeddingSchema } as const;

/** The fields the gateway reads; the original object (with every unknown field) is what is forwarded. */
export interface InferenceBody {
  model: string;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  [key: string]: unknown;
}

/** Validates `body` for `op`; throws SWY_ERR_INVALID_REQUEST naming the first bad field. */
export function validateBody(op: Operation, body: unknown): InferenceBody {
  parseWith<unknown>(SCHEMAS[op], body);
  // Validation passed: forward the caller's own object so unknown fields keep their exact values.
  return body as InferenceBody;
}

/** `body` parsed by `schema` (a JSON object); throws SWY_ERR_INVALID_REQUEST naming the first bad field. */
export function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new SwitchyardError('SWY_ERR_INVALID_REQUEST', 'request body must be a JSON object');
  }
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = formatPath(issue.path);
    const what = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    throw new SwitchyardError('SWY_ERR_INVALID_REQUEST', `${param || 'body'}: ${what}`, {
      param: param || null,
    });
  }
  return result.data;
}

/** A cheap prompt-size estimate in tokens (≈ 4 characters a token) for routing signals. */
export function estimatePromptTokens(op: Operation, body: Record<string, unknown>): number {
  let chars = 0;
  const visit = (v: unknown): void => {
    if (typeof v === 'string') chars += v.length;
    else if (Array.isArray(v)) for (const x of v) visit(x);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.content === 'string' || Array.isArray(o.content)) visit(o.content);
      else if (typeof o.text === 'string') chars += o.text.length;
    }
  };
  visit(op === 'chat' ? body.messages : op === 'completions' ? body.prompt : body.input);
  return Math.ceil(chars / 4);
}
