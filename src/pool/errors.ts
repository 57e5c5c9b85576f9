/**
 * @module pool/errors
 * The errors a pool answers with when a request cannot run: queue drops (429 with Retry-After), a
 * pool with nothing usable or removed by a reload (503), a saturated pool a tier passes over.
 */
import { type ErrorCode, SwitchyardError } from '../core/errors.js';
import type { DropReason } from '../scheduler/types.js';

const DROP_CODES: Readonly<Record<Exclude<DropReason, 'cancelled'>, ErrorCode>> = {
  queue_full: 'SWY_ERR_QUEUE_FULL',
  shed: 'SWY_ERR_QUEUE_SHED',
  wait_timeout: 'SWY_ERR_QUEUE_TIMEOUT',
  deadline: 'SWY_ERR_DEADLINE_EXCEEDED',
};

/** The drop reason of a queue error code; undefined for other codes. */
export function dropReasonOf(code: ErrorCode): DropReason | undefined {
  for (const [reason, c] of Object.entries(DROP_CODES)) if (c === code) return reason as DropReason;
  return undefined;
}

export function queueError(
  pool: string,
  reason: Exclude<DropReason, 'cancelled'>,
  retryAfterS: number,
): SwitchyardError {
  const why = {
    queue_full: 'the queue is full',
    shed: 'it was shed from the queue for a more urgent request',
    wait_timeout: 'it waited in the queue past its limit',
    deadline: 'it can no longer meet its time-to-first-token deadline',
  }[reason];
  return new SwitchyardError(DROP_CODES[reason], `pool "${pool}" is saturated and ${why}`, { retryAfterS });
}

export function poolRemoved(pool: string): SwitchyardError {
  return new SwitchyardError(
    'SWY_ERR_NO_HEALTHY_ENDPOINT',
    `pool "${pool}" was removed by a configuration reload while the request waited`,
  );
}

export function noUsableEndpoint(pool: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_NO_HEALTHY_ENDPOINT', `no healthy endpoint for model "${pool}"`);
}

export function noReplicaYet(pool: string, reason: DropReason): SwitchyardError {
  const why = reason === 'queue_full' ? 'its queue is full' : 'the request waited past its limit';
  return new SwitchyardError(
    'SWY_ERR_NO_HEALTHY_ENDPOINT',
    `model "${pool}" is autoscaled and has no ready replica yet, and ${why}`,
  );
}

export function saturated(pool: string, why: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_OVERLOADED', `pool "${pool}" is saturated: ${why}`);
}
