/**
 * @module obs/logger
 * JSON logs (pino). Request-scoped lines carry `requestId`, the same id returned in `x-request-id`.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

/** A JSON logger to stdout at `level`. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'switchyard' }, timestamp: pino.stdTimeFunctions.isoTime });
}
