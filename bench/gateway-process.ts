/**
 * @module bench/gateway-process
 * One Switchyard gateway in its own process for the overhead bench: one pool (`mock-gpt`) whose
 * only endpoint is `kind: http` at the mock upstream. Started by bench/overhead.ts with an IPC
 * channel (and pinned to its own CPU with taskset when available), so the gateway never shares an
 * event loop with the load generator or the mock.
 *
 * Env: BENCH_UPSTREAM_URL (required, e.g. http://127.0.0.1:PORT/v1), BENCH_MODEL (mock-gpt),
 * BENCH_UPSTREAM_CONNECTIONS (1024): the endpoint's pool size and maxConcurrency, which must exceed
 * the memory run's concurrent streams (the schema defaults, 128 connections and maxConcurrency 256,
 * would queue or refuse them).
 * IPC: sends `{type:'ready', port, pid}`; answers `{type:'mem'}` with process.memoryUsage();
 * `{type:'stop'}` (or SIGTERM, or the parent going away) drains for up to 1 s and exits.
 */
import { validateConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway/server.js';
import { createLogger } from '../src/obs/logger.js';

const upstream = process.env.BENCH_UPSTREAM_URL;
if (upstream === undefined || upstream === '') throw new Error('BENCH_UPSTREAM_URL is required');
const model = process.env.BENCH_MODEL ?? 'mock-gpt';
const connections = Number(process.env.BENCH_UPSTREAM_CONNECTIONS ?? 1024);

const config = validateConfig(
  {
    server: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    pools: {
      [model]: {
        endpoints: [{ name: 'mock', kind: 'http', url: upstream, maxConcurrency: connections, connections }],
      },
    },
  },
  'bench gateway config',
);
const gw = await Gateway.start({ config, logger: createLogger('silent'), processMetrics: false });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await gw.shutdown(1_000);
  process.exit(0);
}

process.on('message', (m: { type?: string }) => {
  if (m?.type === 'mem') process.send?.({ type: 'mem', ...process.memoryUsage() });
  else if (m?.type === 'stop') void stop();
});
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
process.send?.({ type: 'ready', port: gw.port, pid: process.pid });
