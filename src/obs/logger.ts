/**
 * @module obs/logger
 * JSON logs (pino). Request-scoped lines carry `requestId`, the same id returned in `x-request-id`.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * Credentials that must never reach a log line, wherever an object carrying them is logged
 * (the gateway itself logs key ids and prefixes only; this guards against a careless `headers`).
 */
const REDACT = [
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  'headers["api-key"]',
  '*.headers["api-key"]',
  'token',
  '*.token',
];

/** A JSON logger at `level`, to stdout or to `destination` (tests read what was logged). */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const opts = {
    level,
    base: { service: 'switchyard' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  return destination === undefined ? pino(opts) : pino(opts, destination);
}
