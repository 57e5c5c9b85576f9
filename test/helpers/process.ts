/** Child-process checks shared by the actuator and live autoscaling tests. */
import assert from 'node:assert/strict';

/** Whether a process with this pid still exists (signal 0 probes without signalling). */
export function alive(pid: number | undefined): boolean {
  assert.ok(pid !== undefined, 'a replica without a pid was never spawned');
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
