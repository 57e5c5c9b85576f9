/**
 * The process actuator with real child processes: `switchyard engine` replicas scaled 0→2→1→0,
 * health waits, drains before kills, cancelled cold starts, failed starts, crashes, serialised
 * applies, and no process left behind after close.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ProcessActuatorOptions, ProcessActuator } from '../../src/actuators/process.js';
import type { InstanceType, Placement } from '../../src/autoscaler/types.js';
import { alive } from '../helpers/process.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ENGINE = [
  process.execPath,
  MAIN,
  'engine',
  '--port',
  '{port}',
  '--profile',
  '{profile}',
  '--model',
  '{model}',
];
const CATALOG: InstanceType[] = [
  { name: 'small', profile: 'qwen2.5-1.5b-h100', capacity: 1, onDemandUsdPerHour: 1 },
  { name: 'cold', profile: 'qwen2.5-1.5b-h100', capacity: 1, onDemandUsdPerHour: 1 },
];
const small = (count: number): Placement[] => [{ type: 'small', tier: 'on-demand', count }];

/** Everything the hooks saw, in order, and a way to wait for a given event. */
function recorder() {
  const events: string[] = [];
  const waiters: { match: string; resolve: () => void }[] = [];
  const push = (e: string): void => {
    events.push(e);
    for (const w of waiters.filter((w) => e.startsWith(w.match))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  /** Resolves once `n` events starting with `prefix` have been seen in total. */
  const seen = (prefix: string, n = 1): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (events.filter((e) => e.startsWith(prefix)).length >= n) resolve();
        else waiters.push({ match: prefix, resolve: check });
      };
      check();
    });
  return { events, push, seen };
}

function actuator(rec: ReturnType<typeof recorder>, extra: Partial<ProcessActuatorOptions> = {}) {
  const pidsAtDrain = new Map<string, boolean>();
  const a: ProcessActuator = new ProcessActuator({
    commands: { small: ENGINE, cold: [...ENGINE, '--cold-start'] },
    catalog: CATALOG,
    healthIntervalMs: 50,
    onReady: (r, url) => rec.push(`ready ${r.id} ${url}`),
    drain: async (id) => {
      pidsAtDrain.set(id, alive(a.endpoints().find((e) => e.id === id)?.pid));
      rec.push(`drain ${id}`);
    },
    onStopped: (id) => rec.push(`stopped ${id}`),
    onExit: (id, code) => rec.push(`exit ${id} ${code}`),
    onStartFailed: (id, why) => rec.push(`failed ${id} ${why}`),
    ...extra,
  });
  return { a, pidsAtDrain };
}

const phases = (a: ProcessActuator) => a.replicas().map((r) => `${r.id}:${r.phase}`);

describe('ProcessActuator', () => {
  it('scales 0 → 2 → 1 → 0 with health waits and drains before each kill', async () => {
    const rec = recorder();
    const { a, pidsAtDrain } = actuator(rec);
    await a.apply(small(2));
    // Spawned, not yet healthy: node has not even loaded the engine yet.
    assert.deepEqual(phases(a), ['small-on-demand-1:starting', 'small-on-demand-2:starting']);
    await rec.seen('ready', 2);
    assert.deepEqual(phases(a), ['small-on-demand-1:ready', 'small-on-demand-2:ready']);
    const eps = a.endpoints();
    for (const ep of eps) {
      assert.equal((await fetch(`${ep.url}/health`)).status, 200);
      const models = (await (await fetch(`${ep.url}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data[0]?.id, 'Qwen/Qwen2.5-1.5B-Instruct'); // {model} from the profile
      assert.ok(rec.events.includes(`ready ${ep.id} ${ep.url}`));
    }
    assert.notEqual(eps[0]?.port, eps[1]?.port);

    await a.apply(small(1));
    await rec.seen('stopped small-on-demand-2');
    // The newest ready replica went; it was drained while its process still ran.
    assert.deepEqual(pidsAtDrain, new Map([['small-on-demand-2', true]]));
    assert.ok(
      rec.events.indexOf('drain small-on-demand-2') < rec.events.indexOf('stopped small-on-demand-2'),
    );
    assert.equal(alive(eps[1]?.pid), false);
    assert.deepEqual(phases(a), ['small-on-demand-1:ready']);

    await a.apply(small(1)); // idempotent: nothing spawned, nothing stopped
    assert.deepEqual(phases(a), ['small-on-demand-1:ready']);

    await a.apply(small(0));
    await rec.seen('stopped small-on-demand-1');
    assert.deepEqual(phases(a), []);
    assert.equal(alive(eps[0]?.pid), false);
    assert.equal(rec.events.filter((e) => e.startsWith('exit') || e.startsWith('failed')).length, 0);
    await a.close();
  });

  it('removes the newest starting replica before a serving one, without draining it', async () => {
    const rec = recorder();
    const { a } = actuator(rec);
    await a.apply([{ type: 'cold', tier: 'spot', count: 1 }, ...small(1)]);
    await rec.seen('ready small-on-demand-2');
    // The cold one waits out a 20 s cold start (503 on /health), so it is still starting.
    assert.deepEqual(phases(a), ['cold-spot-1:starting', 'small-on-demand-2:ready']);
    const t0 = performance.now();
    await a.apply(small(2)); // the cold one is no longer wanted; a second small one is
    assert.deepEqual(phases(a), [
      'cold-spot-1:draining',
      'small-on-demand-2:ready',
      'small-on-demand-3:starting',
    ]);
    await rec.seen('stopped cold-spot-1');
    // It exited on SIGTERM mid cold start, without waiting for SIGKILL (killGraceMs 5 000).
    assert.ok(performance.now() - t0 < 4_000);
    await a.apply(small(1)); // newest first: the starting small-3 goes, the serving small-2 stays
    await rec.seen('stopped', 2);
    assert.deepEqual(phases(a), ['small-on-demand-2:ready']);
    assert.deepEqual(rec.events.filter((e) => e.startsWith('drain') || e.startsWith('stopped')).sort(), [
      'stopped cold-spot-1',
      'stopped small-on-demand-3',
    ]);
    await a.close();
    assert.deepEqual(rec.events.slice(-2), ['drain small-on-demand-2', 'stopped small-on-demand-2']);
  });

  it('serialises applies: only the latest queued target is carried out', async () => {
    const rec = recorder();
    const { a } = actuator(rec);
    await Promise.all([a.apply(small(1)), a.apply(small(3)), a.apply(small(2))]);
    // The first reconciles to 1; of the two queued meanwhile only the latest (2) runs after it.
    assert.deepEqual(phases(a), ['small-on-demand-1:starting', 'small-on-demand-2:starting']);
    await a.close();
    assert.deepEqual(rec.events.filter((e) => e.startsWith('stopped')).sort(), [
      'stopped small-on-demand-1',
      'stopped small-on-demand-2',
    ]);
  });

  it('kills a replica that is not healthy in time, reports it, and retries on the next apply', async () => {
    const rec = recorder();
    const hang = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];
    const { a } = actuator(rec, { commands: { small: hang }, readyTimeoutMs: 300 });
    await a.apply(small(1));
    const pid = a.endpoints()[0]?.pid;
    await rec.seen('stopped small-on-demand-1');
    assert.match(rec.events[0] ?? '', /^failed small-on-demand-1 not healthy within 300 ms$/);
    assert.equal(alive(pid), false);
    assert.deepEqual(phases(a), []);
    await a.apply(small(1));
    assert.deepEqual(phases(a), ['small-on-demand-2:starting']);
    await a.close();
  });

  it('reports a spawn that fails as a failed start', async () => {
    const rec = recorder();
    const { a } = actuator(rec, { commands: { small: ['/nonexistent/switchyard-engine'] } });
    await a.apply(small(1));
    await rec.seen('stopped small-on-demand-1');
    assert.match(rec.events[0] ?? '', /^failed small-on-demand-1 spawn failed: .*ENOENT/);
    assert.deepEqual(phases(a), []);
    await a.close();
  });

  it('reports a replica that dies on its own and replaces it on the next apply', async () => {
    const rec = recorder();
    const { a } = actuator(rec);
    await a.apply(small(1));
    await rec.seen('ready');
    process.kill(a.endpoints()[0]!.pid!, 'SIGKILL');
    await rec.seen('exit');
    assert.equal(rec.events.at(-1), 'exit small-on-demand-1 null');
    assert.deepEqual(phases(a), []);
    await a.apply(small(1));
    await rec.seen('ready small-on-demand-2');
    await a.close();
    assert.equal(rec.events.filter((e) => e.startsWith('stopped')).join(), 'stopped small-on-demand-2');
  });

  it('stops a replica whose drain never finishes once the drain timeout passes', async () => {
    const rec = recorder();
    const { a } = actuator(rec, { drain: () => new Promise(() => {}), drainTimeoutMs: 200 });
    await a.apply(small(1));
    await rec.seen('ready');
    const pid = a.endpoints()[0]?.pid;
    const t0 = performance.now();
    await a.apply(small(0));
    await rec.seen('stopped');
    assert.ok(performance.now() - t0 >= 200);
    assert.equal(alive(pid), false);
    await a.close();
  });

  it('close drains every serving replica and leaves no process behind', async () => {
    const rec = recorder();
    const { a, pidsAtDrain } = actuator(rec);
    await a.apply([...small(2), { type: 'cold', tier: 'on-demand', count: 1 }]);
    await rec.seen('ready', 2);
    const pids = a.endpoints().map((e) => e.pid);
    assert.equal(pids.length, 3);
    await a.close();
    assert.deepEqual(
      pids.map((p) => alive(p)),
      [false, false, false],
    );
    assert.deepEqual([...pidsAtDrain.keys()].sort(), ['small-on-demand-1', 'small-on-demand-2']);
    assert.deepEqual(phases(a), []);
    await assert.rejects(a.apply(small(1)), /closed/);
  });

  it('rejects a target it cannot carry out, before changing anything', async () => {
    const { a } = actuator(recorder());
    await assert.rejects(
      a.apply([{ type: 'gpu-x', tier: 'spot', count: 1 }]),
      /no command for instance type "gpu-x"/,
    );
    await assert.rejects(a.apply([{ type: 'small', tier: 'spot', count: 1.5 }]), /count: 1.5/);
    assert.throws(() => new ProcessActuator({}), /command/);
    assert.deepEqual(phases(a), []);
  });
});
