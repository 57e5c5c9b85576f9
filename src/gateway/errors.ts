/**
 * @module gateway/errors
 * The one boundary where errors become the wire format:
 * `{"error":{"message","type","param","code"}}` with the catalogue's status and `Retry-After`.
 */
import type { ServerResponse } from 'node:http';
import { SwitchyardError } from '../core/errors.js';

/** Converts anything thrown on the request path into a catalogue error (unknown → 500). */
export function asSwitchyardError(err: unknown): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  return new SwitchyardError('SWY_ERR_INTERNAL', 'internal error');
}

/** The OpenAI-style JSON body for an error. */
export function errorBody(err: SwitchyardError): string {
  return JSON.stringify({
    error: { message: err.message, type: err.type, param: err.param, code: err.code },
  });
}

/** Writes an error response unless headers were already sent; returns the status written. */
export function writeError(
  res: ServerResponse,
  err: SwitchyardError,
  extraHeaders?: Record<string, string>,
): number {
  if (res.headersSent) return err.status;
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    ...extraHeaders,
  };
  if (err.retryAfterS !== undefined) headers['retry-after'] = String(err.retryAfterS);
  const body = errorBody(err);
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(err.status, headers);
  res.end(body);
  return err.status;
}
