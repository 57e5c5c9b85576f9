/**
 * @module router/ledger
 * What a pool's router knows beyond the endpoints' own views, kept per endpoint id so it outlives
 * the router that wrote it: the load the gateway has sent each endpoint and not seen finish, the
 * approximate prefix index, and a decode-length estimate. A config reload that changes the routing
 * profile builds a new {@link Router} over the same ledger; a replica added or removed changes the
 * ledger's endpoints, not its knowledge. Only an endpoint that is really gone loses its state, and
 * only when another endpoint takes its slot.
 *
 * It also learns how far each endpoint's engine differs from the model the router predicts it by
 * (router/model-correction.ts), from the times of each request's first and later tokens: the
 * driver passes the clock's time with every event, so the gateway and the simulator learn alike.
 *
 * Endpoints live in slots: the index plugins and views use. A slot keeps its endpoint id while the
 * endpoint exists, and after it leaves until another endpoint needs the slot and nothing routed
 * there is still outstanding, so an endpoint that comes back finds what it had.
 */
import { type EndpointInfo, modelProfile } from '../framework/endpoint.js';
import type {
  EndpointLoad,
  ModelFactors,
  PoolKnowledge,
  RoutingOutcome,
  RoutingRequest,
} from '../framework/routing.js';
import { prefillPairs } from '../engine-model/step-time.js';
import type { EngineProfile } from '../engine-model/types.js';
import { type CleanSend, ModelCorrection } from './model-correction.js';
import { PrefixIndex } from './prefix-index.js';

/** What the ledger remembers about one routed request until it finishes. */
export interface Ticket {
  readonly req: RoutingRequest;
  readonly index: number;
  readonly uncached: number;
  readonly pairs: number;
  readonly predictedBlocks: number;
  readonly kv: number;
  readonly decode: number;
  prefilling: boolean;
  /** When it was sent (NaN: the host keeps no time, nothing is learnt from it). */
  readonly sentMs: number;
  /**
   * Sent while nothing prefilled there, and alone there until its first token: what decoded beside
   * it (its TTFT is evidence of the engine's speed); else null.
   */
  clean: CleanSend | null;
  /** Its first and latest streamed tokens (NaN: none yet). */
  firstTokenMs: number;
  lastTokenMs: number;
  /** The model's parts (compute, rest) of the steps that produced its tokens after the first. */
  decodeCompute: number;
  decodeRest: number;
}

interface MutableLoad {
  requests: number;
  prefilling: number;
  prefillTokens: number;
  prefillPairs: number;
  kvTokens: number;
  decodeTokens: number;
}

/** An endpoint as the ledger knows it: a stable id and what sizes its cache. */
export interface LedgerEndpoint {
  readonly id: string;
  readonly info: EndpointInfo;
}

/** Default KV capacity (tokens) assumed for an endpoint without an engine profile. */
const UNKNOWN_KV_TOKENS = 262_144;

/** The pool's routing knowledge by endpoint slot; see the module comment. */
export class PoolLedger implements PoolKnowledge {
  private ids: (string | null)[] = [];
  private readonly slotOf = new Map<string, number>();
  /** Slots whose endpoint is in the current set. */
  private current = new Set<number>();
  private kvTokens: number[] = [];
  /** How far each endpoint's engine is from its profile, as observed. */
  readonly corrections = new ModelCorrection();
  private loads: MutableLoad[] = [];
  private matched = new Float64Array(0);
  private prefix: PrefixIndex | null = null;
  private prefixBlockTokens = 0;
  private readonly tickets = new Map<string, Ticket>();
  meanOutputTokens = 256;

  /** A ledger whose slots 0..n-1 are `endpoints` in order. */
  static of(endpoints: readonly EndpointInfo[]): PoolLedger {
    const l = new PoolLedger();
    l.setEndpoints(endpoints.map((info, i) => ({ id: `#${i}`, info })));
    return l;
  }

  /**
   * The pool's endpoints are now `endpoints`; returns each one's slot. Known ids keep their slot
   * and knowledge; a new id takes a free slot (clearing what its last holder left) or a new one.
   */
  setEndpoints(endpoints: readonly LedgerEndpoint[]): number[] {
    const wanted = new Set(endpoints.map((e) => e.id));
    const slots = endpoints.map((e) => this.slotOf.get(e.id) ?? -1);
    const free: number[] = [];
    for (let s = 0; s < this.ids.length; s++) {
      const id = this.ids[s] ?? null;
      if ((id === null || !wanted.has(id)) && this.loads[s]!.requests === 0) free.push(s);
    }
    const added: number[] = [];
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      const kv = kvTokensOf(e.info);
      let s = slots[i]!;
      if (s === -1) {
        s = free.shift() ?? this.newSlot(added);
        const old = this.ids[s] ?? null;
        if (old !== null) this.slotOf.delete(old);
        this.ids[s] = e.id;
        this.slotOf.set(e.id, s);
        if (!added.includes(s)) this.prefix?.clear(s);
        this.corrections.clear(s);
        slots[i] = s;
      }
      this.corrections.setProfile(s, modelProfile(e.info));
      if (this.kvTokens[s] !== kv) {
        this.kvTokens[s] = kv;
        if (!added.includes(s) && this.prefix !== null)
          this.prefix.setCapacity(s, kv / this.prefixBlockTokens);
      }
    }
    if (added.length > 0 && this.prefix !== null)
      this.prefix.addEndpoints(added.map((s) => this.kvTokens[s]! / this.prefixBlockTokens));
    this.current = new Set(slots);
    return slots;
  }

  /** The slot of endpoint `id` (undefined if it never had one or lost it). */
  slot(id: string): number | undefined {
    return this.slotOf.get(id);
  }

  /** Whether the slot's endpoint is in the current set. */
  isCurrent(slot: number): boolean {
    return this.current.has(slot);
  }

  get size(): number {
    return this.loads.length;
  }

  load(index: number): EndpointLoad {
    return this.loads[index]!;
  }

  /** Requests of the pool still waiting for their first token (the scheduler's batch rule). */
  get prefilling(): number {
    let n = 0;
    for (const l of this.loads) n += l.prefilling;
    return n;
  }

  cachedPrefixTokens(index: number): number {
    return this.matched[index]!;
  }

  correction(index: number): ModelFactors {
    return this.corrections.factors(index);
  }

  /** `base` (the endpoint's profile) with its correction applied. */
  correctedProfile(index: number, base: EngineProfile): EngineProfile {
    return this.corrections.profile(index, base);
  }

  cachedTokensTotal(index: number): number {
    return this.prefix === null ? 0 : this.prefix.blocks(index) * this.prefixBlockTokens;
  }

  /** The pool's prefix index (null until a request with prefix hashes arrives). */
  prefixIndex(): PrefixIndex | null {
    return this.prefix;
  }

  /** Requests routed and not finished. */
  get outstanding(): number {
    return this.tickets.size;
  }

  /**
   * Fills the matched prefix of every slot for `req`; returns whether the request's prefix signal
   * fits this pool's index (then the routed request is recorded in it).
   */
  matchPrefix(req: RoutingRequest): boolean {
    const bt = req.prefixBlockTokens;
    if (req.prefixHashes.length === 0) {
      this.matched.fill(0);
      return false;
    }
    if (this.prefix === null) {
      this.prefixBlockTokens = bt;
      this.prefix = new PrefixIndex(this.kvTokens.map((t) => t / bt));
    }
    if (bt !== this.prefixBlockTokens) {
      // One block size per pool; a request hashed differently carries no usable signal here.
      this.matched.fill(0);
      return false;
    }
    this.prefix.match(req.prefixHashes, this.matched);
    const cap = req.promptTokensEstimate;
    for (let e = 0; e < this.matched.length; e++) this.matched[e] = Math.min(cap, this.matched[e]! * bt);
    return true;
  }

  /**
   * Records `req` as sent to slot `index` at `nowMs` (a retry's earlier ticket is finished first by
   * the router).
   */
  routed(req: RoutingRequest, index: number, indexed: boolean, nowMs = Number.NaN): Ticket {
    const cached = this.matched[index]!;
    const uncached = Math.max(0, req.promptTokensEstimate - cached);
    const decode = this.meanOutputTokens;
    const kv = req.promptTokensEstimate + decode;
    const pairs = prefillPairs(uncached, cached);
    const l = this.loads[index]!;
    const clean = nowMs >= 0 ? this.corrections.sent(index, nowMs, l, uncached, pairs, kv) : null;
    const t: Ticket = {
      req,
      index,
      uncached,
      pairs,
      predictedBlocks: this.prefixBlockTokens > 0 ? Math.floor(cached / this.prefixBlockTokens) : 0,
      kv,
      decode,
      prefilling: true,
      sentMs: nowMs,
      clean,
      firstTokenMs: Number.NaN,
      lastTokenMs: Number.NaN,
      decodeCompute: 0,
      decodeRest: 0,
    };
    this.tickets.set(req.id, t);
    l.requests++;
    l.prefilling++;
    l.prefillTokens += uncached;
    l.prefillPairs += t.pairs;
    l.kvTokens += kv;
    l.decodeTokens += decode;
    if (indexed) this.prefix!.insert(index, req.prefixHashes);
    return t;
  }

  has(reqId: string): boolean {
    return this.tickets.has(reqId);
  }

  /**
   * The request's first token arrived at `nowMs`: its prefill no longer queues ahead of others
   * (NaN time: the first token is only implied, by a finish, and teaches the correction nothing).
   */
  firstToken(reqId: string, nowMs = Number.NaN): void {
    const t = this.tickets.get(reqId);
    if (t === undefined || !t.prefilling) return;
    t.prefilling = false;
    t.firstTokenMs = nowMs;
    t.lastTokenMs = nowMs;
    // The step that produced it ended now: what was routed since must not count in it.
    if (nowMs >= t.sentMs) this.corrections.stepEnded(t.index, this.loads[t.index]!, nowMs);
    if (t.clean !== null && !this.corrections.alone(t.index, t.clean)) t.clean = null;
    const l = this.loads[t.index]!;
    l.prefilling--;
    l.prefillTokens -= t.uncached;
    l.prefillPairs -= t.pairs;
  }

  /**
   * More tokens of a request past its first arrived at `nowMs`. Tokens that arrive together came
   * out of one step (several per step with speculative decoding, or a chunk that carries none), so
   * each new arrival time counts one step, whose time the model predicts from the endpoint's load.
   */
  tokens(reqId: string, nowMs: number): void {
    const t = this.tickets.get(reqId);
    if (t === undefined || t.prefilling || !(nowMs > t.lastTokenMs)) return;
    const step = this.corrections.stepEnded(t.index, this.loads[t.index]!, nowMs);
    t.decodeCompute += step[0]!;
    t.decodeRest += step[1]!;
    t.lastTokenMs = nowMs;
  }

  /** The request left its endpoint; returns its ticket (undefined if unknown) for the plugins. */
  finished(reqId: string, outcome: RoutingOutcome): Ticket | undefined {
    const t = this.tickets.get(reqId);
    if (t === undefined) return undefined;
    this.firstToken(reqId);
    this.tickets.delete(reqId);
    const l = this.loads[t.index]!;
    l.requests--;
    l.kvTokens -= t.kv;
    l.decodeTokens -= t.decode;
    if (outcome.ok) this.learn(t, outcome);
    if (outcome.ok && outcome.outputTokens !== null) {
      // Slow EWMA: a decode-length estimate for load, not a per-request prediction.
      this.meanOutputTokens += (outcome.outputTokens - this.meanOutputTokens) / 64;
    }
    if (outcome.ok && outcome.cachedTokens !== null && this.prefix !== null) {
      this.prefix.correct(
        t.index,
        t.predictedBlocks,
        Math.floor(outcome.cachedTokens / this.prefixBlockTokens),
      );
    }
    return t;
  }

  /** What a request that left its endpoint well says of the engine's speed there. */
  private learn(t: Ticket, outcome: RoutingOutcome): void {
    const c = this.corrections;
    if (t.decodeCompute + t.decodeRest > 0)
      c.observe(t.index, t.lastTokenMs - t.firstTokenMs, t.decodeCompute, t.decodeRest);
    if (t.clean !== null && t.firstTokenMs >= t.sentMs) {
      const prompt = t.req.promptTokensEstimate;
      // The engine's own count of cache hits when it reports one, else the index's guess.
      const cached = Math.min(prompt - 1, outcome.cachedTokens ?? prompt - t.uncached);
      c.observeTtft(t.index, t.firstTokenMs - t.sentMs, Math.max(1, prompt - cached), cached, t.clean);
    }
  }

  private newSlot(added: number[]): number {
    const s = this.loads.length;
    this.ids.push(null);
    this.kvTokens.push(0);
    this.loads.push({
      requests: 0,
      prefilling: 0,
      prefillTokens: 0,
      prefillPairs: 0,
      kvTokens: 0,
      decodeTokens: 0,
    });
    const m = new Float64Array(this.loads.length);
    m.set(this.matched.subarray(0, s));
    this.matched = m;
    added.push(s);
    return s;
  }
}

function kvTokensOf(info: EndpointInfo): number {
  return info.profile ? info.profile.numKvBlocks * info.profile.blockSize : UNKNOWN_KV_TOKENS;
}
