/**
 * @module gateway/body
 * Reading a request body: bounded before it is buffered (413), and parsed as JSON with an error in
 * the API's shape. Shared by the inference path and the admin API.
 */
import type { IncomingMessage } from 'node:http';
import { SwitchyardError } from '../core/errors.js';

/** Reads the body up to `limit` bytes; a larger body is refused with 413 before it is buffered. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  // Plain listeners, not an async iterator: this runs for every request and allocates less.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new SwitchyardError('SWY_ERR_INVALID_REQUEST', 'the client closed the connection mid-body'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(limit: number): SwitchyardError {
  return new SwitchyardError('SWY_ERR_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`);
}

export function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new SwitchyardError(
      'SWY_ERR_INVALID_JSON',
      `request body is not valid JSON: ${(err as Error).message}`,
    );
  }
}
