/**
 * @module bench/loadgen
 * HTTP/1.1 load generation on raw keep-alive sockets (node:net) with a minimal incremental
 * response parser (Content-Length or chunked), cheap enough to share one core with the mock
 * upstream. Loopback only.
 *
 * - {@link runRate}: open loop at a fixed rate. Request i is due at t0 + i/rate whatever earlier
 *   requests do; latency is measured from the request write to the last response byte.
 * - {@link runClosed}: closed loop, `connections` requests in flight at all times (max throughput).
 * - {@link runStream}: closed loop over streamed responses, counting SSE events (`data:` lines,
 *   `data: [DONE]` excluded) delivered per second.
 * - {@link holdStreams}: opens N streams and keeps them open until told to close (memory runs).
 *
 * Every run is bounded: a window of `durationMs` after `warmupMs`, a per-request timeout, and a
 * drain of at most 3 s at the end.
 */
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** Where requests go. */
export interface Target {
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

/** Parses a loopback URL; anything else is refused. */
export function targetOf(url: string): Target {
  const u = new URL(url);
  if (!/^(127\.\d+\.\d+\.\d+|localhost)$/.test(u.hostname))
    throw new Error(`loopback only, got ${u.hostname}`);
  return {
    host: u.hostname === 'localhost' ? '127.0.0.1' : u.hostname,
    port: Number(u.port || 80),
    path: u.pathname,
  };
}

/** The exact bytes of one POST request with a JSON body. */
export function postBytes(t: Target, body: string): Buffer {
  const b = Buffer.from(body);
  const head =
    `POST ${t.path} HTTP/1.1\r\nHost: ${t.host}:${t.port}\r\nContent-Type: application/json\r\n` +
    `Authorization: Bearer sk-bench\r\nContent-Length: ${b.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
/**
 * Counts occurrences of a pattern across a stream of buffers without copying them: a match split
 * between two reads is found through `carry`, the length of the pattern prefix the last read ended with.
 */
class PatternCounter {
  private carry = 0;

  constructor(private readonly pat: Buffer) {}

  reset(): void {
    this.carry = 0;
  }

  count(b: Buffer): number {
    const pat = this.pat;
    let n = 0;
    let from = 0;
    if (this.carry > 0) {
      const k = this.carry;
      const m = Math.min(pat.length - k, b.length);
      this.carry = 0;
      if (b.compare(pat, k, k + m, 0, m) === 0) {
        if (k + m < pat.length) {
          this.carry = k + m;
          return 0;
        }
        n++;
        from = m;
      }
    }
    for (let i = b.indexOf(pat, from); i !== -1; i = b.indexOf(pat, i + pat.length)) n++;
    // The longest proper prefix of the pattern that this read ends with (cheap: the last byte must match).
    for (let k = Math.min(pat.length - 1, b.length - from); k > 0; k--) {
      if (b[b.length - 1] === pat[k - 1] && b.compare(pat, 0, k, b.length - k) === 0) {
        this.carry = k;
        break;
      }
    }
    return n;
  }
}

enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailer,
}

/** What a connection reports to its driver. */
interface ConnHooks {
  onConnect(c: Conn): void;
  /** One response finished (status, SSE events seen, whether `[DONE]` was seen). */
  onResponse(c: Conn, status: number, events: number, done: boolean): void;
  /** First SSE event of the current response. */
  onFirstEvent?(c: Conn): void;
  /** `n` SSE events arrived for the current response. */
  onEvents?(c: Conn, n: number): void;
  /** The socket closed; `busy` when a response was in progress. */
  onClose(c: Conn, busy: boolean, reason: string): void;
}

/** One keep-alive connection with one request in flight at most. */
class Conn {
  busy = false;
  dead = false;
  sentAt = 0;
  dueAt = 0;
  private state = State.Head;
  private head: Buffer | null = null;
  private remaining = 0;
  private chunkSize = 0;
  private lineBytes = 0;
  private status = 0;
  private closeAfter = false;
  private events = 0;
  private doneSeen = false;
  private readonly dataCounter = new PatternCounter(DATA);
  private readonly doneCounter = new PatternCounter(DONE);
  private readonly sock: Socket;
  private lastError = '';

  constructor(
    target: Target,
    private readonly hooks: ConnHooks,
    private readonly countEvents: boolean,
  ) {
    this.sock = new Socket();
    this.sock.setNoDelay(true);
    this.sock.on('connect', () => hooks.onConnect(this));
    this.sock.on('data', (b: Buffer) => this.onData(b));
    this.sock.on('error', (e: NodeJS.ErrnoException) => {
      this.lastError = e.code ?? e.message;
    });
    this.sock.on('close', () => this.closed());
    this.sock.connect(target.port, target.host);
  }

  send(req: Buffer, dueAt: number): void {
    this.busy = true;
    this.dueAt = dueAt;
    this.state = State.Head;
    this.head = null;
    this.events = 0;
    this.doneSeen = false;
    this.dataCounter.reset();
    this.doneCounter.reset();
    this.sentAt = performance.now();
    this.sock.write(req);
  }

  destroy(): void {
    this.dead = true;
    this.sock.destroy();
  }

  private closed(): void {
    const wasBusy = this.busy;
    this.busy = false;
    this.dead = true;
    const reason =
      this.lastError || (this.state === State.Head ? 'closed_before_response' : 'closed_mid_response');
    this.hooks.onClose(this, wasBusy, reason);
  }

  private onData(b: Buffer): void {
    let p = 0;
    while (p < b.length && this.busy) {
      switch (this.state) {
        case State.Head:
          p = this.readHead(b, p);
          break;
        case State.Length: {
          const n = Math.min(this.remaining, b.length - p);
          this.body(b.subarray(p, p + n));
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) this.complete();
          break;
        }
        case State.ChunkSize:
        case State.Trailer:
          p = this.readLine(b, p);
          break;
        case State.ChunkData: {
          const n = Math.min(this.remaining, b.length - p);
          this.body(b.subarray(p, p + n));
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.ChunkEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkEnd: {
          const n = Math.min(this.remaining, b.length - p);
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
      }
    }
  }

  /** Consumes response head bytes from `b` at `p`; returns the new position. */
  private readHead(b: Buffer, p: number): number {
    const prev = this.head;
    const h = prev === null ? b.subarray(p) : Buffer.concat([prev, b.subarray(p)]);
    const e = h.indexOf(CRLFCRLF);
    if (e === -1) {
      this.head = Buffer.from(h);
      return b.length;
    }
    const consumed = e + 4 - (prev === null ? 0 : prev.length);
    const text = h.toString('latin1', 0, e).toLowerCase();
    this.head = null;
    this.status = Number(text.slice(9, 12));
    this.closeAfter = text.includes('\r\nconnection: close');
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(text);
    if (/\r\ntransfer-encoding:[^\r]*chunked/.test(text)) {
      this.state = State.ChunkSize;
      this.chunkSize = 0;
      this.lineBytes = 0;
    } else if (cl !== null) {
      this.remaining = Number(cl[1]);
      this.state = State.Length;
      if (this.remaining === 0) this.complete();
    } else {
      this.lastError = 'unsupported_framing';
      this.sock.destroy();
    }
    return p + consumed;
  }

  /**
   * Consumes a chunk-size line (hex digits, optional `;extensions`) or a trailer line, byte by
   * byte so that no string is built per chunk; returns the new position.
   */
  private readLine(b: Buffer, p: number): number {
    for (; p < b.length; p++) {
      const ch = b[p]!;
      if (ch === 10) {
        const empty = this.lineBytes === 0;
        const size = this.chunkSize;
        this.chunkSize = 0;
        this.lineBytes = 0;
        if (this.state === State.Trailer) {
          if (empty) this.complete();
        } else if (size === 0) this.state = State.Trailer;
        else {
          this.remaining = size;
          this.state = State.ChunkData;
        }
        return p + 1;
      }
      if (ch === 13) continue;
      if (this.state === State.ChunkSize && this.lineBytes >= 0) {
        const v = ch <= 57 ? ch - 48 : (ch | 32) - 87; // 0-9, a-f, A-F
        if (v >= 0 && v < 16) this.chunkSize = this.chunkSize * 16 + v;
        else this.lineBytes = -1; // a `;extension`: ignore the rest of the line
      }
      if (this.lineBytes >= 0) this.lineBytes++;
    }
    return p;
  }

  private body(b: Buffer): void {
    if (!this.countEvents || b.length === 0) return;
    const data = this.dataCounter.count(b);
    const done = this.doneCounter.count(b);
    if (done > 0) this.doneSeen = true;
    // `data: [DONE]` is not an event; when its two halves arrive in different reads, the `data:`
    // was counted first, so this read's delta is negative and corrects the count.
    const n = data - done;
    if (n === 0) return;
    const before = this.events;
    this.events += n;
    if (before <= 0 && this.events > 0) this.hooks.onFirstEvent?.(this);
    this.hooks.onEvents?.(this, n);
  }

  private complete(): void {
    this.busy = false;
    this.hooks.onResponse(this, this.status, this.events, this.doneSeen);
    if (this.closeAfter) this.destroy();
  }
}

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles of `xs` (ms). */
export function summarize(xs: readonly number[]): LatencySummary {
  const a = Float64Array.from(xs).sort();
  const pct = (p: number): number =>
    a.length === 0
      ? Number.NaN
      : a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))]!;
  let sum = 0;
  for (const x of a) sum += x;
  return {
    n: a.length,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    p999: pct(99.9),
    max: a.length ? a[a.length - 1]! : Number.NaN,
    mean: a.length ? sum / a.length : Number.NaN,
  };
}

/** Counters shared by every mode. */
export interface RunCounts {
  /** Responses completed inside the measurement window, per second. */
  rps: number;
  errors: number;
  non2xx: number;
  timeouts: number;
  errorKinds: Record<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Bookkeeping of one run: the measurement window and the connections it opened. */
class Run {
  readonly conns = new Set<Conn>();
  readonly latencies: number[] = [];
  readonly counts: RunCounts = { rps: 0, errors: 0, non2xx: 0, timeouts: 0, errorKinds: {} };
  completedInWindow = 0;
  windowStart = 0;
  windowEnd = 0;
  finished = false;

  constructor(
    readonly durationMs: number,
    readonly warmupMs: number,
  ) {}

  /** True inside the window; flipped by timers so hot paths need not read the clock. */
  open = false;

  start(): void {
    this.windowStart = performance.now() + this.warmupMs;
    this.windowEnd = this.windowStart + this.durationMs;
    setTimeout(() => {
      this.open = true;
    }, this.warmupMs);
    setTimeout(() => {
      this.open = false;
    }, this.warmupMs + this.durationMs);
  }

  inWindow(t: number): boolean {
    return t >= this.windowStart && t < this.windowEnd;
  }

  error(kind: string): void {
    this.counts.errors++;
    this.counts.errorKinds[kind] = (this.counts.errorKinds[kind] ?? 0) + 1;
  }

  /** Fails requests older than `timeoutMs` every 250 ms (cheaper than a timer per request). */
  sweep(timeoutMs: number): NodeJS.Timeout {
    return setInterval(() => {
      const t = performance.now();
      for (const c of this.conns) {
        if (c.busy && t - c.sentAt > timeoutMs) {
          this.counts.timeouts++;
          this.counts.errorKinds.timeout = (this.counts.errorKinds.timeout ?? 0) + 1;
          c.busy = false;
          c.destroy();
        }
      }
    }, 250);
  }

  closeAll(): void {
    this.finished = true;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
  }

  busyCount(): number {
    let n = 0;
    for (const c of this.conns) if (c.busy) n++;
    return n;
  }

  /** Waits (≤ maxMs) for requests sent inside the window to finish. */
  async drain(maxMs: number): Promise<number> {
    const until = performance.now() + maxMs;
    while (this.busyCount() > 0 && performance.now() < until) await sleep(5);
    return this.busyCount();
  }
}

/** Result of a fixed-rate run. */
export interface RateResult extends RunCounts {
  targetRate: number;
  latency: LatencySummary;
  /** Latency from the intended send time (includes waiting for a free connection). */
  latencyFromDue: LatencySummary;
  dropped: number;
  unfinished: number;
  maxQueue: number;
  connsOpened: number;
  /** Achieved ≥ 97 % of the rate with no errors, drops, or queueing in the generator. */
  sustained: boolean;
}

/** Open-loop run at `rate` req/s. */
export async function runRate(
  url: string,
  body: string,
  opts: { rate: number; durationMs: number; warmupMs: number; preopen?: number; maxConnections?: number },
): Promise<RateResult> {
  const target = targetOf(url);
  const req = postBytes(target, body);
  const run = new Run(opts.durationMs, opts.warmupMs);
  const idle: Conn[] = [];
  const queue: number[] = [];
  const maxConns = opts.maxConnections ?? 512;
  const fromDue: number[] = [];
  let dropped = 0;
  let maxQueue = 0;
  let connsOpened = 0;
  const hooks: ConnHooks = {
    onConnect: (c) => ready(c),
    onResponse: (c, status) => {
      const t = performance.now();
      if (status < 200 || status >= 300) run.counts.non2xx++;
      if (run.inWindow(c.dueAt)) {
        run.latencies.push(t - c.sentAt);
        fromDue.push(t - c.dueAt);
      }
      if (run.inWindow(t)) run.completedInWindow++;
      ready(c);
    },
    onClose: (c, busy, reason) => {
      run.conns.delete(c);
      const i = idle.indexOf(c);
      if (i !== -1) idle.splice(i, 1);
      if (busy && !run.finished) run.error(reason);
    },
  };
  const open = (): void => {
    connsOpened++;
    run.conns.add(new Conn(target, hooks, false));
  };
  const ready = (c: Conn): void => {
    if (run.finished || c.dead) return;
    const due = queue.shift();
    if (due !== undefined) c.send(req, due);
    else idle.push(c);
  };
  for (let i = 0; i < (opts.preopen ?? 64); i++) open();
  await sleep(200);
  const sweeper = run.sweep(10_000);
  run.start();
  const interval = 1000 / opts.rate;
  const t0 = performance.now();
  let next = t0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const t = performance.now();
      while (next <= t && next < run.windowEnd) {
        const c = idle.pop();
        if (c !== undefined) c.send(req, next);
        else {
          if (run.conns.size < maxConns) open();
          if (queue.length < opts.rate * 2) {
            queue.push(next);
            maxQueue = Math.max(maxQueue, queue.length);
          } else dropped++;
        }
        next += interval;
      }
      if (next >= run.windowEnd) resolve();
      else setTimeout(tick, Math.max(0, next - performance.now() - 0.2));
    };
    tick();
  });
  const unfinished = (await run.drain(3_000)) + queue.length;
  clearInterval(sweeper);
  run.closeAll();
  const latency = summarize(run.latencies);
  const due = summarize(fromDue);
  const rps = run.completedInWindow / (opts.durationMs / 1000);
  const c = run.counts;
  return {
    ...c,
    rps,
    targetRate: opts.rate,
    latency,
    latencyFromDue: due,
    dropped,
    unfinished,
    maxQueue,
    connsOpened,
    sustained:
      rps >= 0.97 * opts.rate &&
      dropped + unfinished + c.errors + c.timeouts + c.non2xx === 0 &&
      due.p99 < latency.p99 + 10,
  };
}

/** Result of a closed-loop run. */
export interface ClosedResult extends RunCounts {
  latency: LatencySummary;
}

/** Closed loop: `connections` requests in flight at all times for `durationMs` after `warmupMs`. */
export async function runClosed(
  url: string,
  body: string,
  opts: { connections: number; durationMs: number; warmupMs: number },
): Promise<ClosedResult> {
  const target = targetOf(url);
  const req = postBytes(target, body);
  const run = new Run(opts.durationMs, opts.warmupMs);
  const hooks: ConnHooks = {
    onConnect: (c) => c.send(req, performance.now()),
    onResponse: (c, status) => {
      const t = performance.now();
      if (status < 200 || status >= 300) run.counts.non2xx++;
      if (run.inWindow(t)) {
        run.completedInWindow++;
        run.latencies.push(t - c.sentAt);
      }
      if (!run.finished && !c.dead) c.send(req, t);
    },
    onClose: (c, busy, reason) => {
      run.conns.delete(c);
      if (run.finished) return;
      if (busy) run.error(reason);
      run.conns.add(new Conn(target, hooks, false));
    },
  };
  run.start();
  for (let i = 0; i < opts.connections; i++) run.conns.add(new Conn(target, hooks, false));
  const sweeper = run.sweep(10_000);
  await sleep(opts.warmupMs + opts.durationMs);
  clearInterval(sweeper);
  run.closeAll();
  return {
    ...run.counts,
    rps: run.completedInWindow / (opts.durationMs / 1000),
    latency: summarize(run.latencies),
  };
}

/** Result of a streaming run. */
export interface StreamResult extends RunCounts {
  /** SSE events (chunks) received inside the window, per second. */
  chunksPerS: number;
  /** Time from the request write to the first event. */
  firstChunk: LatencySummary;
  /** Completed streams whose event count differed from `expectChunks` or that lacked `[DONE]`. */
  badStreams: number;
}

/** Closed loop over streamed responses, counting SSE events per second. */
export async function runStream(
  url: string,
  body: string,
  opts: { connections: number; durationMs: number; warmupMs: number; expectChunks: number },
): Promise<StreamResult> {
  const target = targetOf(url);
  const req = postBytes(target, body);
  const run = new Run(opts.durationMs, opts.warmupMs);
  let eventsInWindow = 0;
  let badStreams = 0;
  const hooks: ConnHooks = {
    onConnect: (c) => c.send(req, performance.now()),
    onFirstEvent: (c) => {
      if (run.inWindow(c.sentAt)) run.latencies.push(performance.now() - c.sentAt);
    },
    onEvents: (_c, n) => {
      if (run.open) eventsInWindow += n;
    },
    onResponse: (c, status, events, done) => {
      const t = performance.now();
      if (status < 200 || status >= 300) run.counts.non2xx++;
      if (run.inWindow(t)) {
        run.completedInWindow++;
        if (events !== opts.expectChunks || !done) badStreams++;
      }
      if (!run.finished && !c.dead) c.send(req, t);
    },
    onClose: (c, busy, reason) => {
      run.conns.delete(c);
      if (run.finished) return;
      if (busy) run.error(reason);
      run.conns.add(new Conn(target, hooks, true));
    },
  };
  run.start();
  for (let i = 0; i < opts.connections; i++) run.conns.add(new Conn(target, hooks, true));
  const sweeper = run.sweep(20_000);
  await sleep(opts.warmupMs + opts.durationMs);
  clearInterval(sweeper);
  run.closeAll();
  const secs = opts.durationMs / 1000;
  return {
    ...run.counts,
    rps: run.completedInWindow / secs,
    chunksPerS: eventsInWindow / secs,
    firstChunk: summarize(run.latencies),
    badStreams,
  };
}

/** Streams held open by {@link holdStreams}. */
export interface HeldStreams {
  /** Streams that have received at least one event and not yet ended. */
  open(): number;
  /** Streams that ended (finished or failed) before being closed. */
  ended(): number;
  errors(): number;
  /** Destroys every connection. */
  close(): void;
}

/**
 * Opens `count` streams (in batches of `batch` every `batchGapMs`, to stay under accept backlogs)
 * and returns once all have their first event or `timeoutMs` passed. Streams must outlast the hold.
 */
export async function holdStreams(
  url: string,
  body: string,
  opts: { count: number; batch: number; batchGapMs: number; timeoutMs: number },
): Promise<HeldStreams> {
  const target = targetOf(url);
  const req = postBytes(target, body);
  const conns = new Set<Conn>();
  const started = new Set<Conn>();
  let ended = 0;
  let errors = 0;
  let closing = false;
  const hooks: ConnHooks = {
    onConnect: (c) => c.send(req, performance.now()),
    onFirstEvent: (c) => {
      started.add(c);
    },
    onResponse: (c, status) => {
      if (status !== 200) errors++;
      started.delete(c);
      ended++;
    },
    onClose: (c, busy) => {
      if (closing) return;
      started.delete(c);
      if (busy) {
        errors++;
        ended++;
      }
    },
  };
  for (let i = 0; i < opts.count; i += opts.batch) {
    for (let j = i; j < Math.min(opts.count, i + opts.batch); j++) conns.add(new Conn(target, hooks, true));
    await sleep(opts.batchGapMs);
  }
  const until = performance.now() + opts.timeoutMs;
  while (started.size + ended < opts.count && performance.now() < until) await sleep(20);
  return {
    open: () => started.size,
    ended: () => ended,
    errors: () => errors,
    close: () => {
      closing = true;
      for (const c of conns) c.destroy();
    },
  };
}
