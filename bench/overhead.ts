/**
 * @module bench/overhead
 * `npm run bench:overhead`: what one Switchyard gateway process adds on top of a fast mock OpenAI
 * upstream, measured side by side in one run on loopback.
 *
 *   direct:  load generator ──────────────────────────► mock upstream
 *   gateway: load generator ──► Switchyard (1 process) ──► mock upstream
 *
 * Three processes: this one (the load generator, see bench/loadgen.ts), the mock
 * (bench/mock-upstream.ts) and the gateway, started as a user starts it: `switchyard serve --config
 * FILE` (dist/src/cli/main.js) with a config whose one pool has one `kind: http` endpoint at the
 * mock, default logging (`info`, to a pipe this process drains) and default metrics. With
 * `taskset`, CPU 0 runs the load generator and the mock and CPU 1 the gateway alone, so the gateway
 * never shares an event loop or a core with the load. The gateway's GC pauses and heap come from
 * its own `/metrics` (prom-client's process metrics), scraped between runs only.
 *
 * Measurements, each `BENCH_REPS` times with direct and gateway interleaved (order alternating per
 * rep), medians reported: latency at a fixed open-loop rate (added = gateway − direct, paired per
 * rep); max non-streamed throughput (closed loop); streamed chunks/s; then the gateway's resident
 * memory while `BENCH_HOLD_STREAMS` slow streams are open through it. Prints a markdown report and
 * writes it between the markers in docs/benchmarks.md.
 *
 * Env (defaults): BENCH_DURATION_S (5) BENCH_REPS (3) BENCH_RATE (1000) BENCH_MAX_CONNECTIONS (64)
 * BENCH_STREAM_CONNECTIONS (32) BENCH_STREAM_CHUNKS (100) BENCH_HOLD_STREAMS (1000)
 * BENCH_HOLD_S (3) BENCH_LOAD_CPU (0) BENCH_GW_CPU (1) BENCH_PIN (1; 0 = no taskset)
 * BENCH_DOCS (docs/benchmarks.md; 0 = do not write) BENCH_JSON (a path for the raw results)
 * BENCH_GW_NODE_FLAGS (node flags for the gateway process only, e.g. `--single-threaded-gc`).
 * BENCH_GW_LOG_LEVEL (the config's log.level; unset = the default, info).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ClosedResult,
  type RateResult,
  type StreamResult,
  holdStreams,
  runClosed,
  runRate,
  runStream,
} from './loadgen.js';
import {
  type Aggregate,
  type GcPauses,
  type MemoryResult,
  type RunRecord,
  aggregate,
  median,
  renderReport,
  updateDocs,
} from './report.js';
import { REPO, envNum, machineFacts } from './env.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The bench's knobs, all from the environment. */
export const CFG = {
  durationS: envNum('BENCH_DURATION_S', 5),
  reps: Math.max(1, envNum('BENCH_REPS', 3)),
  rate: envNum('BENCH_RATE', 1000),
  maxConnections: envNum('BENCH_MAX_CONNECTIONS', 64),
  streamConnections: envNum('BENCH_STREAM_CONNECTIONS', 32),
  streamChunks: envNum('BENCH_STREAM_CHUNKS', 100),
  holdStreams: envNum('BENCH_HOLD_STREAMS', 1000),
  holdS: envNum('BENCH_HOLD_S', 3),
  loadCpu: process.env.BENCH_LOAD_CPU ?? '0',
  gwCpu: process.env.BENCH_GW_CPU ?? '1',
  pin: process.env.BENCH_PIN !== '0',
  docs: process.env.BENCH_DOCS ?? join(REPO, 'docs', 'benchmarks.md'),
  json: process.env.BENCH_JSON ?? '',
  gwNodeFlags: (process.env.BENCH_GW_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
  gwLogLevel: process.env.BENCH_GW_LOG_LEVEL ?? '',
};

const MODEL = 'mock-gpt';
const BODY = JSON.stringify({
  model: MODEL,
  messages: [{ role: 'user', content: 'Say hello.' }],
  max_tokens: 16,
});
const SBODY = JSON.stringify({
  model: MODEL,
  messages: [{ role: 'user', content: 'Say hello.' }],
  max_tokens: 16,
  stream: true,
  mock_chunks: CFG.streamChunks,
});
/** Slow streams for the memory run: one chunk per 100 ms, long enough to outlast the hold. */
const HOLD_CHUNK_MS = 100;
const HOLD_CHUNKS = Math.ceil(((CFG.holdS + 20) * 1000) / HOLD_CHUNK_MS);
const HOLD_BODY = JSON.stringify({
  model: MODEL,
  messages: [{ role: 'user', content: 'Stream slowly.' }],
  stream: true,
  mock_chunks: HOLD_CHUNKS,
  mock_chunk_delay_ms: HOLD_CHUNK_MS,
});

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------ processes

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
}

const children: Child[] = [];
let tasksetOk = false;

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
}

/** Starts a bench script in its own process (pinned to `cpu` when possible) and waits for `ready`. */
async function startChild(
  name: string,
  script: string,
  cpu: string,
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): Promise<Child> {
  const file = join(HERE, script);
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
  const opts = { stdio, env: { ...process.env, ...env } };
  const proc = tasksetOk
    ? spawn('taskset', ['-c', cpu, process.execPath, ...nodeFlags, file], opts)
    : spawn(process.execPath, [...nodeFlags, file], opts);
  const ready = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s`)), 20_000);
    proc.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
    proc.on('message', (m: { type?: string; port?: number; pid?: number }) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve({ port: m.port!, pid: m.pid! });
    });
  });
  const child = { name, proc, pid: ready.pid, port: ready.port };
  children.push(child);
  return child;
}

async function stopChildren(): Promise<void> {
  for (const c of children) {
    if (c.proc.exitCode !== null) continue;
    // The mock has an IPC channel; the gateway, a `switchyard serve`, drains on SIGTERM.
    if (c.proc.connected) c.proc.send({ type: 'stop' });
    else c.proc.kill('SIGTERM');
  }
  const until = Date.now() + 3_000;
  while (children.some((c) => c.proc.exitCode === null && c.proc.signalCode === null) && Date.now() < until) {
    await sleep(50);
  }
  for (const c of children)
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}

/** The gateway's `/metrics` as series (`name{labels}`) → value. */
async function scrape(c: Child): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${c.port}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const sp = line.lastIndexOf(' ');
      out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
  } catch {
    // a failed scrape leaves the figures NaN
  }
  return out;
}

const GC_SERIES = 'nodejs_gc_duration_seconds';
/** prom-client's GC kinds: incremental marking steps and weak callbacks count with the major GCs. */
const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;

/**
 * GC pauses between two scrapes of the gateway's `/metrics`. The longest pause is not exported;
 * `maxMs` is the longest event-loop stall instead (`nodejs_eventloop_lag_max_seconds`, which
 * prom-client resets at each scrape, 10 ms resolution): a GC pause or anything else that held the
 * loop.
 */
function gcBetween(a: Map<string, number>, b: Map<string, number>): GcPauses {
  // A kind with no GC yet has no series: 0, unless the scrape itself failed.
  const d = (name: string): number => (b.size === 0 ? Number.NaN : (b.get(name) ?? 0) - (a.get(name) ?? 0));
  const sum = (kind: string): number => d(`${GC_SERIES}_sum{kind="${kind}"}`) * 1000;
  const count = (kind: string): number => d(`${GC_SERIES}_count{kind="${kind}"}`);
  const [minor, ...major] = GC_KINDS;
  return {
    minorCount: count(minor),
    minorMs: sum(minor),
    majorCount: count('major'),
    majorMs: major.reduce((t, k) => t + (sum(k) || 0), 0),
    maxMs: (b.get('nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000,
  };
}

// ------------------------------------------------------------------------------------------ /proc

/** utime + stime of `pid` in clock ticks (100 Hz). */
function procTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Per-CPU [busy, total] ticks. */
function cpuTicks(): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const l of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(l);
    if (m === null) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    const idle = v[3]! + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out.set(m[1]!, [total - idle, total]);
  }
  return out;
}

/** VmRSS of `pid` in MB (10^6 bytes; the kernel reports KiB), or NaN. */
function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (Number(m[1]) * 1024) / 1e6 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

interface CpuUse {
  gwCpuPct: number;
  mockCpuPct: number;
  loadCpuBusyPct: number;
  gwCpuBusyPct: number;
}

/** Runs `fn` and reports the CPU used meanwhile by the gateway, the mock and each core. */
async function withCpu<T>(gw: Child, mock: Child, fn: () => Promise<T>): Promise<[T, CpuUse]> {
  const t0 = performance.now();
  const g0 = procTicks(gw.pid);
  const m0 = procTicks(mock.pid);
  const c0 = cpuTicks();
  const r = await fn();
  const secs = (performance.now() - t0) / 1000;
  const c1 = cpuTicks();
  const busy = (cpu: string): number => {
    const a = c0.get(cpu);
    const b = c1.get(cpu);
    return a && b && b[1] > a[1] ? (100 * (b[0] - a[0])) / (b[1] - a[1]) : Number.NaN;
  };
  return [
    r,
    {
      gwCpuPct: (procTicks(gw.pid) - g0) / secs,
      mockCpuPct: (procTicks(mock.pid) - m0) / secs,
      loadCpuBusyPct: busy(CFG.loadCpu),
      gwCpuBusyPct: busy(CFG.gwCpu),
    },
  ];
}

/** Waits (≤ 5 s) until the gateway is idle, so one run's backlog never leaks into the next. */
async function settle(gw: Child): Promise<void> {
  const until = Date.now() + 5_000;
  while (Date.now() < until) {
    const a = procTicks(gw.pid);
    await sleep(200);
    if (procTicks(gw.pid) - a <= 1) break;
  }
  await sleep(200);
}

// ------------------------------------------------------------------------------------------ runs

interface Peer {
  readonly name: 'direct' | 'gateway';
  readonly url: string;
}

async function smoke(p: Peer): Promise<void> {
  const post = (body: string): Promise<Response> =>
    fetch(p.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const r1 = await post(BODY);
  const j = (await r1.json().catch(() => null)) as { choices?: unknown[] } | null;
  if (r1.status !== 200 || !Array.isArray(j?.choices))
    throw new Error(`${p.name}: plain request gave ${r1.status}`);
  const r2 = await post(SBODY);
  const text = await r2.text();
  const events = (text.match(/^data:/gm) ?? []).length - (text.match(/^data: \[DONE\]/gm) ?? []).length;
  if (r2.status !== 200 || events !== CFG.streamChunks || !text.includes('[DONE]')) {
    throw new Error(`${p.name}: stream gave ${r2.status} with ${events} events: ${text.slice(0, 200)}`);
  }
}

type Kind = 'rate' | 'max' | 'stream';

async function measure(kind: Kind, p: Peer): Promise<RateResult | ClosedResult | StreamResult> {
  const durationMs = CFG.durationS * 1000;
  if (kind === 'rate') return runRate(p.url, BODY, { rate: CFG.rate, durationMs, warmupMs: 1_000 });
  if (kind === 'max')
    return runClosed(p.url, BODY, { connections: CFG.maxConnections, durationMs, warmupMs: 1_000 });
  return runStream(p.url, SBODY, {
    connections: CFG.streamConnections,
    durationMs,
    warmupMs: 1_000,
    expectChunks: CFG.streamChunks,
  });
}

async function warmUp(peers: readonly Peer[]): Promise<void> {
  for (const p of peers) {
    log(`warm-up ${p.name}`);
    await runClosed(p.url, BODY, { connections: CFG.maxConnections, durationMs: 2_000, warmupMs: 0 });
    await runStream(p.url, SBODY, {
      connections: CFG.streamConnections,
      durationMs: 1_000,
      warmupMs: 0,
      expectChunks: CFG.streamChunks,
    });
  }
}

function describe(kind: Kind, r: RateResult | ClosedResult | StreamResult, cpu: CpuUse): string {
  const errs = r.errors + r.timeouts + r.non2xx;
  const base = `gw ${cpu.gwCpuPct.toFixed(0)}% cpu${CFG.loadCpu} ${cpu.loadCpuBusyPct.toFixed(0)}%${errs ? ` ERRORS ${errs}` : ''}`;
  if (kind === 'stream') return `${(r as StreamResult).chunksPerS.toFixed(0)} chunks/s ${base}`;
  const l = (r as RateResult | ClosedResult).latency;
  const sus = kind === 'rate' && !(r as RateResult).sustained ? ' NOT SUSTAINED' : '';
  return `${r.rps.toFixed(0)} req/s p50 ${l.p50.toFixed(3)} p99 ${l.p99.toFixed(3)} ms${sus} ${base}`;
}

async function runAll(peers: readonly Peer[], gw: Child, mock: Child): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (let rep = 1; rep <= CFG.reps; rep++) {
    const order = rep % 2 === 1 ? peers : [...peers].reverse();
    for (const kind of ['rate', 'max', 'stream'] as const) {
      for (const p of order) {
        await settle(gw);
        const before = await scrape(gw);
        const [r, cpu] = await withCpu(gw, mock, () => measure(kind, p));
        const gc = p.name === 'gateway' ? gcBetween(before, await scrape(gw)) : null;
        runs.push({ rep, kind, peer: p.name, result: r, ...cpu, gc });
        log(`rep ${rep} ${kind.padEnd(6)} ${p.name.padEnd(7)} ${describe(kind, r, cpu)}`);
      }
    }
  }
  return runs;
}

const HEAP_USED = 'nodejs_heap_size_used_bytes';

/** Holds `CFG.holdStreams` slow streams open through the gateway and samples its RSS. */
async function memoryRun(gw: Child, label: string): Promise<MemoryResult> {
  await settle(gw);
  const idleRssMB = rssMB(gw.pid);
  const idleHeap = await scrape(gw);
  log(
    `memory (${label}): opening ${CFG.holdStreams} streams through the gateway (idle RSS ${idleRssMB.toFixed(1)} MB)`,
  );
  const t0 = performance.now();
  const held = await holdStreams(`http://127.0.0.1:${gw.port}/v1/chat/completions`, HOLD_BODY, {
    count: CFG.holdStreams,
    batch: 100,
    batchGapMs: 20,
    timeoutMs: 15_000,
  });
  const openAfterMs = performance.now() - t0;
  const openAtStart = held.open();
  let peak = 0;
  const samples: number[] = [];
  const until = performance.now() + CFG.holdS * 1000;
  while (performance.now() < until) {
    const r = rssMB(gw.pid);
    samples.push(r);
    peak = Math.max(peak, r);
    await sleep(200);
  }
  const heldMem = await scrape(gw);
  const openAtEnd = held.open();
  const errors = held.errors();
  held.close();
  log(`memory (${label}): ${openAtStart} open at start, ${openAtEnd} at end, peak RSS ${peak.toFixed(1)} MB`);
  await sleep(1_000);
  return {
    label,
    streams: CFG.holdStreams,
    chunkIntervalMs: HOLD_CHUNK_MS,
    openAtStart,
    openAtEnd,
    errors,
    openAfterMs,
    idleRssMB,
    peakRssMB: peak,
    medianRssMB: median(samples),
    idleHeapUsedMB: (idleHeap.get(HEAP_USED) ?? Number.NaN) / 1e6,
    heldHeapUsedMB: (heldMem.get(HEAP_USED) ?? Number.NaN) / 1e6,
    heldExternalMB: (heldMem.get('nodejs_external_memory_bytes') ?? Number.NaN) / 1e6,
    afterRssMB: rssMB(gw.pid),
  };
}

let tmpDir = '';

/**
 * `switchyard serve --config FILE --port 0`, as a user runs it, with one `kind: http` pool at the
 * mock. The endpoint's `maxConcurrency` (and so its connection pool) must exceed the memory run's
 * concurrent streams: the default, 256, would queue or refuse them. The port is read from the
 * "listening" log line; stdout stays drained after that, and warnings and errors go to stderr.
 */
async function startGateway(name: string, mock: Child): Promise<Child> {
  tmpDir ||= mkdtempSync(join(os.tmpdir(), 'switchyard-bench-'));
  const cfgFile = join(tmpDir, 'gateway.yaml');
  const limit = Math.max(1024, CFG.holdStreams + 64);
  writeFileSync(
    cfgFile,
    [
      'server: { host: 127.0.0.1 }',
      ...(CFG.gwLogLevel ? [`log: { level: ${CFG.gwLogLevel} }`] : []),
      'pools:',
      `  ${MODEL}:`,
      '    endpoints:',
      `      - { name: mock, kind: http, url: "http://127.0.0.1:${mock.port}/v1", maxConcurrency: ${limit} }`,
      '',
    ].join('\n'),
  );
  const args = [
    ...CFG.gwNodeFlags,
    join(REPO, 'dist', 'src', 'cli', 'main.js'),
    'serve',
    '--config',
    cfgFile,
    '--port',
    '0',
  ];
  const stdio: ['ignore', 'pipe', 'inherit'] = ['ignore', 'pipe', 'inherit'];
  const proc = tasksetOk
    ? spawn('taskset', ['-c', CFG.gwCpu, process.execPath, ...args], { stdio })
    : spawn(process.execPath, args, { stdio });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s`)), 20_000);
    proc.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        let rec: { level?: number; msg?: string; url?: string } = {};
        try {
          rec = JSON.parse(line);
        } catch {
          process.stderr.write(`[${name}] ${line}\n`);
          continue;
        }
        if ((rec.level ?? 0) >= 40) process.stderr.write(`[${name}] ${line}\n`);
        const m = rec.msg?.startsWith('switchyard listening') ? /:(\d+)\/v1$/.exec(rec.url ?? '') : null;
        if (m !== null && m !== undefined) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }
    });
  });
  // With taskset, proc.pid is the gateway itself: taskset execs node.
  const child = { name, proc, pid: proc.pid!, port };
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  tasksetOk = CFG.pin && hasTaskset();
  if (tasksetOk)
    execFileSync('taskset', ['-a', '-p', '-c', CFG.loadCpu, String(process.pid)], { stdio: 'ignore' });
  log(
    tasksetOk
      ? `pinned: CPU ${CFG.loadCpu} load+mock, CPU ${CFG.gwCpu} gateway`
      : 'not pinned (no taskset or < 2 CPUs)',
  );
  const mock = await startChild('mock', 'mock-upstream.js', CFG.loadCpu, {
    MOCK_STREAM_CHUNKS: String(CFG.streamChunks),
  });
  const gw = await startGateway('gateway', mock);
  const startRssMB = rssMB(gw.pid);
  const peers: Peer[] = [
    { name: 'direct', url: `http://127.0.0.1:${mock.port}/v1/chat/completions` },
    { name: 'gateway', url: `http://127.0.0.1:${gw.port}/v1/chat/completions` },
  ];
  for (const p of peers) await smoke(p);
  log('smoke checks passed');
  await warmUp(peers);
  const runs = await runAll(peers, gw, mock);
  const memory: MemoryResult[] = [];
  if (CFG.holdStreams > 0) {
    memory.push(await memoryRun(gw, 'after the throughput runs'));
    memory.push(await memoryRun(await startGateway('gateway-fresh', mock), 'fresh process'));
  }
  await stopChildren();
  const agg: Aggregate = aggregate(runs, CFG.durationS + 1);
  const meta = { t0, t1: Date.now(), machine: machineFacts(), pinned: tasksetOk, cfg: CFG, startRssMB };
  const md = renderReport(agg, runs, memory, meta);
  process.stdout.write(`${md}\n`);
  if (CFG.json) writeFileSync(CFG.json, JSON.stringify({ meta, agg, memory, runs }, null, 1));
  if (CFG.docs !== '0') {
    updateDocs(CFG.docs, md);
    log(`wrote ${CFG.docs}`);
  }
}

for (const s of ['SIGINT', 'SIGTERM'] as const) {
  process.on(s, () => {
    log(`got ${s}, stopping`);
    void stopChildren().then(() => process.exit(130));
  });
}
// The whole run is bounded: a hard stop well past the expected length.
const expectedS = 60 + CFG.reps * 3 * 2 * (CFG.durationS + 2.5) + 2 * (CFG.holdS + 25);
setTimeout(() => {
  log(`hard stop after ${expectedS.toFixed(0)} s`);
  void stopChildren().then(() => process.exit(1));
}, expectedS * 1000).unref();

main().then(
  () => process.exit(0),
  async (err: Error) => {
    log(`error: ${err.stack ?? err.message}`);
    await stopChildren();
    process.exit(1);
  },
);
