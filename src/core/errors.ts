/**
 * @module core/errors
 * The one error catalogue. Every error a client can see has a stable machine code (`SWY_ERR_*`),
 * an HTTP status and an OpenAI error `type`. The wire format is produced in exactly one place
 * (gateway/errors.ts); docs/errors.md lists every code and a test keeps the two in step.
 */

interface ErrorSpec {
  readonly status: number;
  readonly type: string;
  /** Seconds for `Retry-After`, for errors a client should retry later. */
  readonly retryAfterS?: number;
}

/** Every error code the gateway can return, with its status and OpenAI error type. */
export const ERROR_CATALOGUE = {
  SWY_ERR_INVALID_JSON: { status: 400, type: 'invalid_request_error' },
  SWY_ERR_INVALID_REQUEST: { status: 400, type: 'invalid_request_error' },
  SWY_ERR_UNAUTHORIZED: { status: 401, type: 'authentication_error' },
  SWY_ERR_FORBIDDEN: { status: 403, type: 'permission_error' },
  SWY_ERR_MODEL_NOT_ALLOWED: { status: 403, type: 'permission_error' },
  SWY_ERR_CONFLICT: { status: 409, type: 'invalid_request_error' },
  SWY_ERR_NOT_FOUND: { status: 404, type: 'invalid_request_error' },
  SWY_ERR_MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error' },
  SWY_ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error' },
  SWY_ERR_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error' },
  SWY_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, type: 'invalid_request_error' },
  SWY_ERR_OVERLOADED: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_QUEUE_FULL: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_QUEUE_SHED: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_QUEUE_TIMEOUT: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_DEADLINE_EXCEEDED: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_RATE_LIMIT_REQUESTS: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_RATE_LIMIT_INPUT_TOKENS: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_RATE_LIMIT_OUTPUT_TOKENS: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_CONCURRENCY_LIMIT: { status: 429, type: 'rate_limit_error', retryAfterS: 1 },
  SWY_ERR_BUDGET_EXCEEDED: { status: 429, type: 'insufficient_quota', retryAfterS: 3600 },
  SWY_ERR_UPSTREAM_ERROR: { status: 502, type: 'upstream_error' },
  SWY_ERR_NO_HEALTHY_ENDPOINT: { status: 503, type: 'service_unavailable', retryAfterS: 5 },
  SWY_ERR_SHUTTING_DOWN: { status: 503, type: 'service_unavailable', retryAfterS: 1 },
  SWY_ERR_LOCAL_POOLS_UNAVAILABLE: { status: 503, type: 'service_unavailable', retryAfterS: 5 },
  SWY_ERR_UPSTREAM_TIMEOUT: { status: 504, type: 'timeout_error' },
  SWY_ERR_INTERNAL: { status: 500, type: 'internal_error' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable machine code from {@link ERROR_CATALOGUE}. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An operating error with a catalogue code; mapped to the wire at the gateway boundary. */
export class SwitchyardError extends Error {
  override name = 'SwitchyardError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  /** The request field at fault, as OpenAI's `param` (e.g. `messages[0].content`). */
  readonly param: string | null;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { param?: string | null; retryAfterS?: number } = {}) {
    super(message);
    const spec: ErrorSpec = ERROR_CATALOGUE[code];
    this.code = code;
    this.status = spec.status;
    this.type = spec.type;
    this.param = opts.param ?? null;
    this.retryAfterS = opts.retryAfterS ?? spec.retryAfterS;
  }
}
