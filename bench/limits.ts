/**
 * @module bench/limits
 * `npm run bench:limits`: do per-key limits and tenant budgets hold across a fleet? Three
 * `switchyard serve` processes (default logging) share one PostgreSQL schema and one Redis, in
 * front of one mock upstream (bench/mock-upstream.ts), and open-loop clients spread their requests
 * round-robin over the three at well above the limits:
 *
 *   load ──┬──► gateway 1 ──┐
 *          ├──► gateway 2 ──┼──► mock upstream        PostgreSQL (one fresh schema)
 *          └──► gateway 3 ──┘                         Redis (one fresh key prefix)
 *
 * 1. Shared limits (Redis): two member keys, each `requestsPerMinute: 600, inputTokensPerMinute:
 *    100000`, loaded at once for whole UTC minutes: key `requests` with short prompts (the request
 *    limit binds) and key `tokens` with long ones (the token limit binds). Each minute's accepted
 *    requests and input tokens are compared with the limit. The gateway reserves a prompt's
 *    estimate (⌈characters / 4⌉) at admission and replaces it by the upstream's count when the
 *    request ends; the mock reports a known count a little below the estimate
 *    (`mock_prompt_tokens`), so both sums are reported.
 * 2. Budget (Redis): a second tenant with a small daily budget and priced pool; load until it is
 *    refused. The spend the admin usage API reports once the ledger has flushed is compared with
 *    the budget, and the overshoot with the cost of the requests in flight when it was reached.
 * 3. Per-process limits (no Redis): the three gateways restarted without Redis and scenario 1 run
 *    again: each process admits the whole limit, so the fleet lets through about three times it.
 *
 * Counts come from the client: a request is in the minute its answer arrived in. The limiter's
 * window is the minute of its admission, which lies between the request's send and its answer; the
 * answers that straddle a minute boundary are counted and reported (a window full before its end
 * can only have admitted them in the next one, which is where they are counted).
 *
 * Env (defaults): BENCH_LIMITS_MINUTES (2) minutes per limits scenario; BENCH_LIMITS_OVERLOAD (4)
 * offered load ÷ limit; BENCH_LIMITS_BUDGET_S (30) seconds of load the budget should last;
 * BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/test); BENCH_REDIS_URL (redis://127.0.0.1:6379);
 * BENCH_DOCS (docs/tenancy.md; 0 = do not write); BENCH_JSON (a path for the raw results).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Pool } from 'undici';
import { writeGeneratedSection } from './docs.js';
import { REPO, describeMachine, envNum } from './env.js';

const HERE = dirname(fileURLToPath(import.meta.url));

const CFG = {
  minutes: Math.max(1, Math.round(envNum('BENCH_LIMITS_MINUTES', 2))),
  overload: Math.max(1, envNum('BENCH_LIMITS_OVERLOAD', 4)),
  budgetS: Math.max(5, envNum('BENCH_LIMITS_BUDGET_S', 30)),
  pgUrl: process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/test',
  redisUrl: process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379',
  docs: process.env.BENCH_DOCS ?? join(REPO, 'docs', 'tenancy.md'),
  json: process.env.BENCH_JSON ?? '',
};

const REPLICAS = 3;
const MODEL = 'mock-gpt';
const RPM = 600;
const ITPM = 100_000;
/** The budget scenario's pool prices, USD per million tokens. */
const PRICES = { inputPerMTok: 5, outputPerMTok: 15 };
/** Completion tokens the mock reports; requests ask for exactly this many, so output reservations are exact. */
const COMPLETION_TOKENS = 8;
const MINUTE_MS = 60_000;
const ADMIN_KEY_ENV = 'SWY_BENCH_ADMIN_KEY';
/** In-flight cap per stream: past it a due request is skipped (counted), so a stalled gateway cannot pile up load. */
const MAX_IN_FLIGHT = 256;

/** One kind of request sent at a fixed rate with one key. */
interface StreamSpec {
  readonly name: string;
  readonly key: string;
  readonly rate: number;
  /** The gateway's estimate of the prompt (⌈chars / 4⌉). */
  readonly estimate: number;
  /** What the mock reports as `prompt_tokens`. */
  readonly upstreamTokens: number;
}

/** One request as the client saw it. */
interface Sample {
  readonly stream: string;
  readonly gw: number;
  readonly sendMs: number;
  readonly doneMs: number;
  /** HTTP status; 0: no answer (a transport error). */
  readonly status: number;
  readonly code: string | null;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly port: number;
}

function log(msg: string): void {
  process.stderr.write(`[bench:limits ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Exactly `n` characters of prose, so the gateway's estimate is exactly ⌈n / 4⌉. */
function prompt(n: number): string {
  const text = 'The quick brown fox jumps over the lazy dog while the limiter counts every token. ';
  return text.repeat(Math.ceil(n / text.length)).slice(0, n);
}

function body(s: Pick<StreamSpec, 'estimate' | 'upstreamTokens'>): string {
  return JSON.stringify({
    model: MODEL,
    messages: [{ role: 'user', content: prompt(s.estimate * 4) }],
    max_tokens: COMPLETION_TOKENS,
    mock_prompt_tokens: s.upstreamTokens,
  });
}

const children: Child[] = [];
let tmpDir = '';

async function startMock(): Promise<Child> {
  const proc = fork(join(HERE, 'mock-upstream.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('mock did not start within 20 s')), 20_000);
    proc.once('exit', (code) => reject(new Error(`mock exited with code ${code} before it was ready`)));
    proc.on('message', (m: { type?: string; port?: number }) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(m.port!);
    });
  });
  const child = { name: 'mock', proc, port };
  children.push(child);
  return child;
}

/** Times (epoch ms) and spend of the `budget exhausted` lines the gateways logged. */
const budgetExhausted: { timeMs: number; spentUsd: number; gateway: string }[] = [];

/**
 * `switchyard serve --config FILE --port 0`, as bench/overhead.ts starts it: the port from the
 * "listening" line; warnings and errors copied to stderr; `budget exhausted` lines recorded.
 */
async function startGateway(name: string, cfgFile: string, adminKey: string): Promise<Child> {
  const args = [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'serve', '--config', cfgFile, '--port', '0'];
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, [ADMIN_KEY_ENV]: adminKey },
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
    proc.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        let rec: { level?: number; msg?: string; url?: string; time?: string; spentUsd?: number } = {};
        try {
          rec = JSON.parse(line);
        } catch {
          process.stderr.write(`[${name}] ${line}\n`);
          continue;
        }
        if (rec.msg === 'budget exhausted') {
          budgetExhausted.push({
            timeMs: Date.parse(rec.time ?? ''),
            spentUsd: rec.spentUsd ?? 0,
            gateway: name,
          });
        } else if ((rec.level ?? 0) >= 40) process.stderr.write(`[${name}] ${line}\n`);
        const m = rec.msg?.startsWith('switchyard listening') ? /:(\d+)\/v1$/.exec(rec.url ?? '') : null;
        if (m !== null && m !== undefined) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }
    });
  });
  const child = { name, proc, port };
  children.push(child);
  return child;
}

async function stop(list: readonly Child[]): Promise<void> {
  for (const c of list) {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
    // The mock has an IPC channel; a `switchyard serve` drains and flushes its ledger on SIGTERM.
    if (c.proc.connected) c.proc.send({ type: 'stop' });
    else c.proc.kill('SIGTERM');
  }
  const until = Date.now() + 10_000;
  while (list.some((c) => c.proc.exitCode === null && c.proc.signalCode === null) && Date.now() < until) {
    await sleep(50);
  }
  for (const c of list) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  for (const c of list) children.splice(children.indexOf(c), 1);
}

function gatewayConfig(mockPort: number, schema: string, redisPrefix: string | null): string {
  tmpDir ||= mkdtempSync(join(os.tmpdir(), 'switchyard-bench-limits-'));
  const file = join(tmpDir, redisPrefix === null ? 'local.yaml' : 'redis.yaml');
  writeFileSync(
    file,
    [
      'server: { host: 127.0.0.1 }',
      'auth:',
      '  keys:',
      // The key reaches the gateway through its environment, as a deployment's would.
      `    - { name: bench-admin, key: "\${${ADMIN_KEY_ENV}}", roles: [admin] }`,
      `database: { url: "${CFG.pgUrl}", schema: ${schema} }`,
      ...(redisPrefix === null ? [] : [`redis: { url: "${CFG.redisUrl}", prefix: "${redisPrefix}" }`]),
      'pools:',
      `  ${MODEL}:`,
      '    endpoints:',
      `      - { name: mock, kind: http, url: "http://127.0.0.1:${mockPort}/v1" }`,
      `    prices: { inputPerMTok: ${PRICES.inputPerMTok}, outputPerMTok: ${PRICES.outputPerMTok} }`,
      '',
    ].join('\n'),
  );
  return file;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the admin API, read loosely
type Json = any;

async function admin(gw: Child, key: string, method: string, path: string, b?: unknown): Promise<Json> {
  const res = await fetch(`http://127.0.0.1:${gw.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(b === undefined ? {} : { body: JSON.stringify(b) }),
  });
  const json = (await res.json()) as Json;
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function send(
  pool: Pool,
  key: string,
  payload: string,
): Promise<Omit<Sample, 'stream' | 'gw' | 'sendMs' | 'doneMs'>> {
  try {
    const res = await pool.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: payload,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const json = JSON.parse(await res.body.text()) as Json;
    return {
      status: res.statusCode,
      code: res.statusCode === 200 ? null : (json?.error?.code ?? null),
      promptTokens: json?.usage?.prompt_tokens ?? 0,
      completionTokens: json?.usage?.completion_tokens ?? 0,
    };
  } catch {
    return { status: 0, code: 'transport', promptTokens: 0, completionTokens: 0 };
  }
}

/**
 * Open loop: stream s's request i is due at startMs + i / rate, whatever earlier ones do, and goes
 * to gateway i mod 3. Runs until `endMs` or until `stopWhen` says so; then waits for the answers.
 */
async function runLoad(
  streams: readonly StreamSpec[],
  pools: readonly Pool[],
  startMs: number,
  endMs: number,
  stopWhen: (samples: readonly Sample[], nowMs: number) => boolean = () => false,
): Promise<{ samples: Sample[]; skipped: number }> {
  const samples: Sample[] = [];
  const pending = new Set<Promise<void>>();
  const payloads = streams.map((s) => body(s));
  const next = streams.map(() => 0);
  const inFlight = streams.map(() => 0);
  let skipped = 0;
  while (Date.now() < startMs) await sleep(Math.min(200, startMs - Date.now()));
  for (;;) {
    const now = Date.now();
    if (now >= endMs || stopWhen(samples, now)) break;
    for (let j = 0; j < streams.length; j++) {
      const s = streams[j]!;
      while (startMs + (next[j]! * 1000) / s.rate <= now) {
        const i = next[j]!++;
        if (inFlight[j]! >= MAX_IN_FLIGHT) {
          skipped++;
          continue;
        }
        const gw = i % pools.length;
        inFlight[j]!++;
        const sendMs = Date.now();
        const p: Promise<void> = send(pools[gw]!, s.key, payloads[j]!).then((r) => {
          samples.push({ stream: s.name, gw, sendMs, doneMs: Date.now(), ...r });
          inFlight[j]!--;
          pending.delete(p);
        });
        pending.add(p);
      }
    }
    await sleep(5);
  }
  await Promise.race([Promise.all(pending), sleep(30_000)]);
  return { samples, skipped };
}

/** Waits for the next UTC minute boundary (the one after next when it is under 3 s away). */
function nextMinute(): number {
  const now = Date.now();
  let t = Math.ceil(now / MINUTE_MS) * MINUTE_MS;
  if (t - now < 3_000) t += MINUTE_MS;
  return t;
}

/** One minute window of one stream. */
interface WindowResult {
  readonly minute: string;
  readonly offered: number;
  readonly accepted: number;
  readonly refused: Record<string, number>;
  readonly failed: number;
  readonly straddling: number;
  readonly estimateTokens: number;
  readonly upstreamTokens: number;
  readonly acceptedPerGateway: number[];
}

function windows(
  samples: readonly Sample[],
  s: StreamSpec,
  startMs: number,
  minutes: number,
): WindowResult[] {
  const out: WindowResult[] = [];
  for (let w = 0; w < minutes; w++) {
    const from = startMs + w * MINUTE_MS;
    const to = from + MINUTE_MS;
    const mine = samples.filter((x) => x.stream === s.name);
    const ok = mine.filter((x) => x.status === 200 && x.doneMs >= from && x.doneMs < to);
    const refused: Record<string, number> = {};
    for (const x of mine)
      if (x.status === 429 && x.doneMs >= from && x.doneMs < to)
        refused[x.code ?? '?'] = (refused[x.code ?? '?'] ?? 0) + 1;
    out.push({
      minute: new Date(from).toISOString().slice(11, 16),
      offered: mine.filter((x) => x.sendMs >= from && x.sendMs < to).length,
      accepted: ok.length,
      refused,
      failed: mine.filter((x) => x.status !== 200 && x.status !== 429 && x.doneMs >= from && x.doneMs < to)
        .length,
      straddling: ok.filter((x) => Math.floor(x.sendMs / MINUTE_MS) !== Math.floor(x.doneMs / MINUTE_MS))
        .length,
      estimateTokens: ok.length * s.estimate,
      upstreamTokens: ok.reduce((a, x) => a + x.promptTokens, 0),
      acceptedPerGateway: Array.from({ length: REPLICAS }, (_, g) => ok.filter((x) => x.gw === g).length),
    });
  }
  return out;
}

interface BudgetResult {
  readonly budgetUsd: number;
  readonly rate: number;
  readonly costPerRequestUsd: number;
  readonly reservationPerRequestUsd: number;
  readonly sent: number;
  readonly served: number;
  readonly refusedBudget: number;
  readonly otherStatus: number;
  readonly clientCostUsd: number;
  readonly ledgerSpendUsd: number;
  readonly ledgerRequests: number;
  readonly ledgerErrors: number;
  readonly redisCounterUsd: number | null;
  /** Seconds from the first request to the `budget exhausted` log line (or first refusal). */
  readonly reachedAfterS: number;
  readonly reachedBy: 'log' | 'first refusal';
  readonly inFlightAtReach: number;
  readonly inFlightCostUsd: number;
  readonly servedAfterReach: number;
  readonly overshootUsd: number;
}

async function budgetScenario(
  pools: readonly Pool[],
  gw: Child,
  adminKey: string,
  redis: Redis,
  prefix: string,
  tenant: string,
  budgetUsd: number,
  spec: StreamSpec,
): Promise<BudgetResult> {
  budgetExhausted.length = 0;
  const startMs = Date.now() + 500;
  let firstRefusalMs = Number.POSITIVE_INFINITY;
  const { samples } = await runLoad([spec], pools, startMs, startMs + 4 * CFG.budgetS * 1000, (ss, now) => {
    if (firstRefusalMs === Number.POSITIVE_INFINITY) {
      const r = ss.find((x) => x.code === 'SWY_ERR_BUDGET_EXCEEDED');
      if (r !== undefined) firstRefusalMs = r.doneMs;
    }
    return now > firstRefusalMs + 5_000;
  });
  // Every request is a ledger row (refusals too): wait until all are written.
  let usage: Json = { data: [] };
  const sum = (f: string) => usage.data.reduce((a: number, b: Json) => a + Number(b[f]), 0);
  const answered = samples.filter((x) => x.status !== 0).length;
  for (const until = Date.now() + 20_000; Date.now() < until; await sleep(500)) {
    usage = await admin(gw, adminKey, 'GET', `/admin/v1/usage?tenant=${tenant}&from=${startMs - 60_000}`);
    if (sum('requests') >= answered) break;
  }
  const served = samples.filter((x) => x.status === 200);
  const cost = (x: Sample) =>
    (x.promptTokens * PRICES.inputPerMTok + x.completionTokens * PRICES.outputPerMTok) / 1e6;
  const logged = budgetExhausted[0];
  const reachMs = logged?.timeMs ?? firstRefusalMs;
  const inFlight = served.filter((x) => x.sendMs <= reachMs && x.doneMs > reachMs);
  let redisCounterUsd: number | null = null;
  const keys = await redis.keys(`${prefix}budget:tenant:${tenant}:*`);
  const counter = keys.find((k) => /:\d+$/.test(k));
  if (counter !== undefined) redisCounterUsd = Number(await redis.get(counter)) / 1e6;
  const spend = sum('costUsd');
  return {
    budgetUsd,
    rate: spec.rate,
    costPerRequestUsd:
      (spec.upstreamTokens * PRICES.inputPerMTok + COMPLETION_TOKENS * PRICES.outputPerMTok) / 1e6,
    reservationPerRequestUsd:
      (spec.estimate * PRICES.inputPerMTok + COMPLETION_TOKENS * PRICES.outputPerMTok) / 1e6,
    sent: samples.length,
    served: served.length,
    refusedBudget: samples.filter((x) => x.code === 'SWY_ERR_BUDGET_EXCEEDED').length,
    otherStatus: samples.filter((x) => x.status !== 200 && x.code !== 'SWY_ERR_BUDGET_EXCEEDED').length,
    clientCostUsd: served.reduce((a, x) => a + cost(x), 0),
    ledgerSpendUsd: spend,
    ledgerRequests: sum('requests'),
    ledgerErrors: sum('errors'),
    redisCounterUsd,
    reachedAfterS: (reachMs - startMs) / 1000,
    reachedBy: logged === undefined ? 'first refusal' : 'log',
    inFlightAtReach: inFlight.length,
    inFlightCostUsd: inFlight.reduce((a, x) => a + cost(x), 0),
    servedAfterReach: served.filter((x) => x.sendMs > reachMs).length,
    overshootUsd: spend - budgetUsd,
  };
}

interface LimitsRun {
  readonly label: string;
  readonly startMs: number;
  readonly skipped: number;
  readonly streams: { spec: StreamSpec; windows: WindowResult[] }[];
}

async function limitsScenario(
  label: string,
  pools: readonly Pool[],
  streams: StreamSpec[],
): Promise<LimitsRun> {
  const startMs = nextMinute();
  log(`${label}: waiting ${((startMs - Date.now()) / 1000).toFixed(0)} s for the minute to start`);
  const { samples, skipped } = await runLoad(streams, pools, startMs, startMs + CFG.minutes * MINUTE_MS);
  const run = {
    label,
    startMs,
    skipped,
    streams: streams.map((spec) => ({ spec, windows: windows(samples, spec, startMs, CFG.minutes) })),
  };
  for (const s of run.streams)
    for (const w of s.windows)
      log(
        `${label} ${s.spec.name} ${w.minute}: offered ${w.offered}, accepted ${w.accepted} ` +
          `(${w.acceptedPerGateway.join('/')}), upstream tokens ${w.upstreamTokens}, refused ${JSON.stringify(w.refused)}`,
      );
  return run;
}

const pct = (x: number, of: number) =>
  `${x >= of ? '+' : '−'}${((Math.abs(x - of) / of) * 100).toFixed(2)} %`;
const int = (n: number) => n.toLocaleString('en-US');
const usd = (n: number) => `$${n.toFixed(4)}`;

/** The limit a stream's load is sized to hit, and what of a window counts against it. */
function binding(spec: StreamSpec): { name: string; limit: number; of: (w: WindowResult) => number } {
  return spec.name === 'requests'
    ? { name: 'requests', limit: RPM, of: (w) => w.accepted }
    : { name: 'input tokens', limit: ITPM, of: (w) => w.upstreamTokens };
}

function limitsTable(run: LimitsRun): string[] {
  const lines = [
    '| key | minute (UTC) | offered | accepted (gw 1/2/3) | input tokens: upstream / estimate | binding limit | counted | vs limit | refused (429) | answers across the boundary |',
    '|---|---|---:|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const s of run.streams) {
    const b = binding(s.spec);
    for (const w of s.windows) {
      const refused = Object.values(w.refused).reduce((a, n) => a + n, 0);
      lines.push(
        `| \`${s.spec.name}\` | ${w.minute} | ${int(w.offered)} | ${int(w.accepted)} (${w.acceptedPerGateway.join('/')}) | ` +
          `${int(w.upstreamTokens)} / ${int(w.estimateTokens)} | ${b.name} ${int(b.limit)} | ${int(b.of(w))} | ` +
          `${pct(b.of(w), b.limit)} | ${int(refused)}${w.failed > 0 ? ` (+${w.failed} failed)` : ''} | ${w.straddling} |`,
      );
    }
  }
  if (run.skipped > 0) lines.push('', `Requests skipped by the client's in-flight cap: ${run.skipped}.`);
  return lines;
}

function render(
  shared: LimitsRun,
  local: LimitsRun,
  budget: BudgetResult,
  meta: { t0: number; t1: number },
): string {
  const [req, tok] = shared.streams.map((s) => s.spec) as [StreamSpec, StreamSpec];
  /** Largest |counted − limit| ÷ limit over a stream's windows. */
  const worst = (run: LimitsRun, name: string) => {
    const s = run.streams.find((x) => x.spec.name === name)!;
    const b = binding(s.spec);
    return Math.max(...s.windows.map((w) => Math.abs(b.of(w) - b.limit) / b.limit));
  };
  const ws = { r: worst(shared, req.name), t: worst(shared, tok.name) };
  const ratio = (run: LimitsRun, name: string) => {
    const s = run.streams.find((x) => x.spec.name === name)!;
    const b = binding(s.spec);
    return s.windows.map((w) => `${(b.of(w) / b.limit).toFixed(2)}×`).join(', ');
  };
  const b = budget;
  return [
    `\`npm run bench:limits\`, ${new Date(meta.t0).toISOString().slice(0, 16)}Z, ${((meta.t1 - meta.t0) / 60_000).toFixed(1)} min; ${describeMachine()}.`,
    'Three `switchyard serve` processes (default logging) on one PostgreSQL schema, one mock upstream, ' +
      `open-loop load spread round-robin over the three at ${CFG.overload}× the limits. Two member keys, each ` +
      '`requestsPerMinute: 600, inputTokensPerMinute: 100000`, loaded at once: ' +
      `\`${req.name}\` at ${req.rate.toFixed(1)} req/s with ${req.estimate * 4}-character prompts (estimate ${req.estimate} tokens, the upstream reports ${req.upstreamTokens}), ` +
      `\`${tok.name}\` at ${tok.rate.toFixed(1)} req/s with ${tok.estimate * 4}-character prompts (estimate ${tok.estimate}, upstream ${tok.upstreamTokens}). ` +
      'A request counts in the minute its answer arrived in; "answers across the boundary" were sent in the minute before ' +
      '(the limiter admitted them in one of the two).',
    '',
    `**Shared limits (Redis).** Largest deviation from the limit in any minute: requests ${(ws.r * 100).toFixed(2)} %, ` +
      `input tokens ${(ws.t * 100).toFixed(2)} % (target: within 1 %). The token limit counts the upstream's tokens: ` +
      'the estimate is reserved at admission and replaced by the upstream count when the request ends, so with an upstream ' +
      `that counts ${(((tok.estimate - tok.upstreamTokens) / tok.estimate) * 100).toFixed(0)} % fewer tokens than the estimate ` +
      'the estimates of the accepted requests add up to more than the limit. A minute ends short of the limit by less than ' +
      `one request's estimate (${tok.estimate} tokens, ${((tok.estimate / ITPM) * 100).toFixed(1)} %).`,
    '',
    ...limitsTable(shared),
    '',
    `**Per-process limits (no Redis).** The same load after restarting the three gateways without \`redis.url\`: each process ` +
      `enforces the limits alone. Accepted ÷ limit per minute: requests ${ratio(local, req.name)}; ` +
      `input tokens ${ratio(local, tok.name)} (expected: about 3×, one limit per process).`,
    '',
    ...limitsTable(local),
    '',
    `**Budget (Redis).** A second tenant with \`budget: { usd: ${b.budgetUsd}, period: day }\` and a key without limits, ` +
      `${b.rate} req/s round-robin (prompts estimated at ${tok.estimate} tokens, upstream ${tok.upstreamTokens}; \`max_tokens: ${COMPLETION_TOKENS}\`; ` +
      `pool prices $${PRICES.inputPerMTok} / $${PRICES.outputPerMTok} per million input / output tokens): a request costs ${usd(b.costPerRequestUsd)} ` +
      `and reserves ${usd(b.reservationPerRequestUsd)}.`,
    '',
    '| | |',
    '|---|---:|',
    `| budget | ${usd(b.budgetUsd)} |`,
    `| reached after (${b.reachedBy === 'log' ? 'the `budget exhausted` log line' : 'the first refusal'}) | ${b.reachedAfterS.toFixed(1)} s |`,
    `| requests sent / served / refused for the budget / other | ${int(b.sent)} / ${int(b.served)} / ${int(b.refusedBudget)} / ${b.otherStatus} |`,
    `| spend at the stop (admin usage API, after the ledger flushed) | ${usd(b.ledgerSpendUsd)} |`,
    `| overshoot (spend − budget) | ${usd(b.overshootUsd)} (${pct(b.ledgerSpendUsd, b.budgetUsd)}, ${(b.overshootUsd / b.costPerRequestUsd).toFixed(2)} requests' cost) |`,
    `| requests in flight when it was reached, their cost | ${b.inFlightAtReach}, ${usd(b.inFlightCostUsd)} |`,
    `| overshoot within the cost in flight when it was reached | ${b.overshootUsd <= b.inFlightCostUsd + 1e-9 ? 'yes' : '**no**'} |`,
    `| requests admitted after it was reached (settlements gave back reservations) | ${b.servedAfterReach} |`,
    `| cost of the served answers (client's count) / Redis budget counter | ${usd(b.clientCostUsd)} / ${b.redisCounterUsd === null ? 'n/a' : usd(b.redisCounterUsd)} |`,
    `| ledger rows (requests / errors) | ${int(b.ledgerRequests)} / ${int(b.ledgerErrors)} |`,
    '',
    'A request is admitted while spend plus outstanding reservations is under the budget, so the one admitted last ' +
      'overshoots it by less than its own reservation; a settlement below the reservation gives the difference back, which ' +
      'can let one more request in after the budget was first reached. Against a mock that answers in milliseconds few ' +
      'requests are in flight at any moment; against a real model the in-flight cost, and so the bound, is larger.',
  ].join('\n');
}

async function cleanup(schema: string, redis: Redis | null, prefix: string): Promise<void> {
  await stop([...children]);
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  tmpDir = '';
  try {
    const c = new pg.Client({ connectionString: CFG.pgUrl });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  } catch (err) {
    log(`could not drop schema ${schema}: ${(err as Error).message}`);
  }
  if (redis !== null) {
    try {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    } catch (err) {
      log(`could not delete the Redis keys under ${prefix}: ${(err as Error).message}`);
    }
  }
}

let cleanupNow: () => Promise<void> = async () => {
  await stop([...children]);
};

async function main(): Promise<void> {
  const t0 = Date.now();
  const id = `${t0.toString(36)}_${randomBytes(3).toString('hex')}`;
  const schema = `swy_bench_limits_${id}`;
  const prefix = `swy-bench-limits-${id}:`;
  const adminKey = `sk-bench-admin-${randomBytes(16).toString('hex')}`;
  const redis = new Redis(CFG.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  cleanupNow = () => cleanup(schema, redis, prefix);

  const mock = await startMock();
  const startFleet = async (redisPrefix: string | null) => {
    const cfg = gatewayConfig(mock.port, schema, redisPrefix);
    const gws: Child[] = [];
    // One at a time: each migrates on start (they would take turns on the advisory lock anyway).
    for (let i = 0; i < REPLICAS; i++) gws.push(await startGateway(`gw${i + 1}`, cfg, adminKey));
    const pools = gws.map((g) => new Pool(`http://127.0.0.1:${g.port}`, { connections: 64 }));
    return { gws, pools };
  };
  let fleet = await startFleet(prefix);
  log(`3 gateways with Redis on ports ${fleet.gws.map((g) => g.port).join(', ')}, schema ${schema}`);

  const g0 = fleet.gws[0]!;
  await admin(g0, adminKey, 'POST', '/admin/v1/tenants', { id: 'bench' });
  const limits = { requestsPerMinute: RPM, inputTokensPerMinute: ITPM };
  const newKey = async (tenant: string, name: string, l: Record<string, number> = {}) =>
    (await admin(g0, adminKey, 'POST', '/admin/v1/keys', { tenant, name, limits: l })).key as string;
  const reqKey = await newKey('bench', 'requests', limits);
  const tokKey = await newKey('bench', 'tokens', limits);
  const smokeKey = await newKey('bench', 'smoke');

  // Short prompts: 600 a minute stay under the token limit, so the request limit binds.
  const reqSpec: StreamSpec = {
    name: 'requests',
    key: reqKey,
    rate: (CFG.overload * RPM) / 60,
    estimate: 100,
    upstreamTokens: 95,
  };
  // Long prompts: the token limit binds at ~260 a minute, well under the request limit.
  const tokSpec: StreamSpec = {
    name: 'tokens',
    key: tokKey,
    rate: (CFG.overload * ITPM) / 400 / 60,
    estimate: 400,
    upstreamTokens: 380,
  };

  // Smoke: every gateway answers, and the mock reports the count the bench asked for.
  for (const p of fleet.pools) {
    const r = await send(p, smokeKey, body(tokSpec));
    if (r.status !== 200 || r.promptTokens !== tokSpec.upstreamTokens)
      throw new Error(`smoke request failed: ${JSON.stringify(r)}`);
  }
  log('smoke checks passed');

  const shared = await limitsScenario('redis', fleet.pools, [reqSpec, tokSpec]);

  const budgetSpec: StreamSpec = { ...tokSpec, name: 'budget', key: '', rate: 20 };
  const costPerRequest =
    (budgetSpec.upstreamTokens * PRICES.inputPerMTok + COMPLETION_TOKENS * PRICES.outputPerMTok) / 1e6;
  const budgetUsd = Math.max(0.01, Math.round(budgetSpec.rate * CFG.budgetS * costPerRequest * 100) / 100);
  await admin(g0, adminKey, 'POST', '/admin/v1/tenants', {
    id: 'bench-budget',
    budget: { usd: budgetUsd, period: 'day' },
  });
  const budgetKey = await newKey('bench-budget', 'budget');
  log(`budget: $${budgetUsd} at ${budgetSpec.rate} req/s of ${usd(costPerRequest)}`);
  const budget = await budgetScenario(fleet.pools, g0, adminKey, redis, prefix, 'bench-budget', budgetUsd, {
    ...budgetSpec,
    key: budgetKey,
  });
  log(
    `budget: spend ${usd(budget.ledgerSpendUsd)} of ${usd(budgetUsd)}, ${budget.inFlightAtReach} in flight at reach`,
  );

  for (const p of fleet.pools) await p.close();
  await stop(fleet.gws);
  fleet = await startFleet(null);
  log(`3 gateways without Redis on ports ${fleet.gws.map((g) => g.port).join(', ')}`);
  const local = await limitsScenario('local', fleet.pools, [reqSpec, tokSpec]);
  for (const p of fleet.pools) await p.close();

  await cleanupNow();
  const meta = { t0, t1: Date.now() };
  const md = render(shared, local, budget, meta);
  process.stdout.write(`${md}\n`);
  if (CFG.json) writeFileSync(CFG.json, JSON.stringify({ meta, cfg: CFG, shared, local, budget }, null, 1));
  if (CFG.docs !== '0') {
    writeGeneratedSection(CFG.docs, 'limits', md);
    log(`wrote ${CFG.docs}`);
  }
}

for (const s of ['SIGINT', 'SIGTERM'] as const) {
  process.on(s, () => {
    log(`got ${s}, stopping`);
    void cleanupNow().then(() => process.exit(130));
  });
}
// Bounded: two aligned scenarios (each up to a minute's wait), the budget run, starts and stops.
const expectedS = 2 * (60 + CFG.minutes * 60 + 40) + 4 * CFG.budgetS + 120;
setTimeout(() => {
  log(`hard stop after ${expectedS.toFixed(0)} s`);
  void cleanupNow().then(() => process.exit(1));
}, expectedS * 1000).unref();

main().then(
  () => process.exit(0),
  async (err: Error) => {
    log(`error: ${err.stack ?? err.message}`);
    await cleanupNow();
    process.exit(1);
  },
);
