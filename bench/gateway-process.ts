/**
 * @module bench/gateway-process
 * One Switchyard gateway in its own process for the overhead bench: one pool (`mock-gpt`) whose
 * only endpoint is `kind: http` at the mock upstream. Started by bench/overhead.ts with an IPC
 * channel (and pinned to its own CPU with taskset when available), so the gateway never shares an
 * event loop with the load generator or the mock.
 *
 * Env: BENCH_UPSTREAM_URL (required, e.g. http://127.0.0.1:PORT/v1), BENCH_MODEL (mock-gpt), BENCH_PORT (0),
 * BENCH_UPSTREAM_CONNECTIONS (1024): the endpoint's pool size and maxConcurrency, which must exceed
 * the memory run's concurrent streams (the schema defaults, 128 connections and maxConcurrency 256,
 * would queue or refuse them).
 * IPC: sends `{type:'ready', port, pid}`; answers `{type:'mem'}` with process.memoryUsage() and
 * `{type:'gc'}` with the GC pauses since the last `gc` message (observed with a PerformanceObserver,
 * one callback per GC, so the cost is nil); `{type:'stop'}` (or SIGTERM, or the parent going away)
 * drains for up to 1 s and exits.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { validateConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway/server.js';
import { createLogger } from '../src/obs/logger.js';

const upstream = process.env.BENCH_UPSTREAM_URL;
if (upstream === undefined || upstream === '') throw new Error('BENCH_UPSTREAM_URL is required');
const model = process.env.BENCH_MODEL ?? 'mock-gpt';
const connections = Number(process.env.BENCH_UPSTREAM_CONNECTIONS ?? 1024);

const config = validateConfig(
  {
    server: { host: '127.0.0.1', port: Number(process.env.BENCH_PORT ?? 0) },
    log: { level: 'silent' },
    pools: {
      [model]: {
        endpoints: [{ name: 'mock', kind: 'http', url: upstream, maxConcurrency: connections, connections }],
      },
    },
  },
  'bench gateway config',
);
// Process metrics (event-loop lag, GC, memory) are on, as in `switchyard serve`; BENCH_GW_PROCESS_METRICS=0 turns them off.
const processMetrics = process.env.BENCH_GW_PROCESS_METRICS !== '0';
const gw = await Gateway.start({ config, logger: createLogger('silent'), processMetrics });

/** GC pauses by kind since the last report: scavenges (minor) and mark-compacts (major). */
const gc = { minorCount: 0, minorMs: 0, majorCount: 0, majorMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      gc.minorCount++;
      gc.minorMs += e.duration;
    } else {
      gc.majorCount++;
      gc.majorMs += e.duration;
    }
    gc.maxMs = Math.max(gc.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await gw.shutdown(1_000);
  process.exit(0);
}

process.on('message', (m: { type?: string }) => {
  if (m?.type === 'mem') process.send?.({ type: 'mem', ...process.memoryUsage() });
  else if (m?.type === 'gc') {
    process.send?.({ type: 'gc', ...gc });
    Object.assign(gc, { minorCount: 0, minorMs: 0, majorCount: 0, majorMs: 0, maxMs: 0 });
  } else if (m?.type === 'stop') void stop();
});
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
if (process.send) process.send({ type: 'ready', port: gw.port, pid: process.pid });
else process.stdout.write(`switchyard bench gateway on ${gw.baseUrl} pid=${process.pid}\n`);
