/**
 * The limiters: one suite of hand-computed outcomes runs against LocalLimiter and against
 * RedisLimiter on a real Redis (SWY_TEST_REDIS, default redis://127.0.0.1:6379; `off` skips it),
 * each test under its own key prefix, every key deleted at the end. Time is virtual (`nowMs`).
 * Then what only the shared limiter can show: replicas sharing counters, leases of crashed
 * replicas expiring, seeding raced by two replicas, one round trip per admission (seen by MONITOR).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { LocalLimiter } from '../../src/tenancy/limits/local.js';
import { RedisLimiter } from '../../src/tenancy/limits/redis.js';
import { type LoadSpend, periodEnd, periodStart } from '../../src/tenancy/limits/windows.js';
import type {
  AdmitResult,
  BudgetSpec,
  Limiter,
  LimitName,
  LimitScope,
  LimitSpec,
  LimitTicket,
  Reservation,
} from '../../src/tenancy/types.js';

const REDIS_URL = process.env.SWY_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const RUN = `swy-test:limits:${process.pid}-${Date.now().toString(36)}:`;
/** 2025-03-10 12:00:00 UTC: on a minute boundary, 12 h before the end of the day. */
const T0 = Date.UTC(2025, 2, 10, 12, 0, 0);
const DAY = 86_400_000;

interface MakeOpts {
  readonly loadSpend?: LoadSpend;
  readonly leaseMs?: number;
}
type Make = (opts?: MakeOpts) => Limiter;

function scope(
  level: LimitScope['level'],
  id: string,
  limits: LimitSpec = {},
  budget: BudgetSpec | null = null,
): LimitScope {
  return { level, id, limits, budget };
}

function res(inputTokens = 0, outputTokens = 0, costUsd = 0): Reservation {
  return { inputTokens, outputTokens, costUsd };
}

const done = (inputTokens = 0, outputTokens = 0, costUsd = 0) => ({ inputTokens, outputTokens, costUsd });

/** The ticket of an admission that must have succeeded with these alerts. */
function ok(r: AdmitResult, alerts: readonly unknown[] = []): LimitTicket {
  assert.ok(r.ok, `refused: ${JSON.stringify(r)}`);
  assert.deepEqual(r.alerts, alerts);
  return r.ticket;
}

function refused(
  limit: LimitName,
  level: LimitScope['level'],
  scopeId: string,
  retryAfterS: number,
): AdmitResult {
  return { ok: false, limit, scope: level, scopeId, retryAfterS };
}

const soft = (scopeId: string, spentUsd: number, budgetUsd: number) => ({
  scopeId,
  spentUsd,
  budgetUsd,
  kind: 'soft',
});
const hard = (scopeId: string, spentUsd: number, budgetUsd: number) => ({
  scopeId,
  spentUsd,
  budgetUsd,
  kind: 'hard',
});

function sharedSuite(name: string, make: Make): void {
  describe(`${name}: shared semantics`, () => {
    it('requests per minute: the 4th of 3 is refused until the next UTC minute; settling gives none back', async () => {
      const lim = make();
      const key = [scope('key', 'key:k1', { requestsPerMinute: 3 })];
      const first = ok(await lim.admit(key, res(), T0 + 1_000));
      ok(await lim.admit(key, res(), T0 + 2_000));
      ok(await lim.admit(key, res(), T0 + 3_000));
      assert.deepEqual(
        await lim.admit(key, res(), T0 + 20_700),
        refused('requests_per_minute', 'key', 'key:k1', 40),
      );
      assert.deepEqual(await lim.settle(first, done(), T0 + 21_000), []);
      assert.deepEqual(
        await lim.admit(key, res(), T0 + 59_999),
        refused('requests_per_minute', 'key', 'key:k1', 1),
      );
      for (let i = 0; i < 3; i++) ok(await lim.admit(key, res(), T0 + 60_000));
      assert.deepEqual(
        await lim.admit(key, res(), T0 + 60_000),
        refused('requests_per_minute', 'key', 'key:k1', 60),
      );
      await lim.close();
    });

    it('tokens per minute: reservations count, settling down frees room in the window reserved in', async () => {
      const lim = make();
      const s = [scope('key', 'key:k1', { inputTokensPerMinute: 1000, outputTokensPerMinute: 500 })];
      const a = ok(await lim.admit(s, res(600, 300), T0 + 5_000));
      assert.deepEqual(
        await lim.admit(s, res(401, 0), T0 + 5_000),
        refused('input_tokens_per_minute', 'key', 'key:k1', 55),
      );
      assert.deepEqual(
        await lim.admit(s, res(400, 201), T0 + 10_000),
        refused('output_tokens_per_minute', 'key', 'key:k1', 50),
      );
      // 600/300 reserved, 400/100 used: the window holds 400/100.
      assert.deepEqual(await lim.settle(a, done(400, 100), T0 + 12_000), []);
      const b = ok(await lim.admit(s, res(600, 400), T0 + 15_000)); // exactly full: 1000/500
      assert.deepEqual(
        await lim.admit(s, res(1, 0), T0 + 15_000),
        refused('input_tokens_per_minute', 'key', 'key:k1', 45),
      );
      assert.deepEqual(
        await lim.admit(s, res(0, 1), T0 + 15_000),
        refused('output_tokens_per_minute', 'key', 'key:k1', 45),
      );
      ok(await lim.admit(s, res(0, 0), T0 + 15_000)); // nothing asked fits in a full window

      // The next minute fills on its own; settling b (minute 0) changes minute 0 only.
      ok(await lim.admit(s, res(0, 500), T0 + 60_000));
      assert.deepEqual(await lim.settle(b, done(600, 0), T0 + 61_000), []);
      assert.deepEqual(
        await lim.admit(s, res(0, 1), T0 + 62_000),
        refused('output_tokens_per_minute', 'key', 'key:k1', 58),
      );
      await lim.close();
    });

    it('a request larger than the whole limit is refused even in an empty window, retry after 60 s', async () => {
      const lim = make();
      const s = [scope('tenant', 'tenant:acme', { inputTokensPerMinute: 1000, outputTokensPerMinute: 500 })];
      assert.deepEqual(
        await lim.admit(s, res(1001, 0), T0 + 30_000),
        refused('input_tokens_per_minute', 'tenant', 'tenant:acme', 60),
      );
      assert.deepEqual(
        await lim.admit(s, res(0, 501), T0 + 30_000),
        refused('output_tokens_per_minute', 'tenant', 'tenant:acme', 60),
      );
      ok(await lim.admit(s, res(1000, 500), T0 + 30_000)); // the refusals reserved nothing
      const closed = [scope('project', 'project:acme/p', { requestsPerMinute: 0 })];
      assert.deepEqual(
        await lim.admit(closed, res(), T0 + 30_000),
        refused('requests_per_minute', 'project', 'project:acme/p', 60),
      );
      await lim.close();
    });

    it('concurrency: a slot per request, freed by settle; settling twice or an unknown ticket is a no-op', async () => {
      const lim = make();
      const s = [scope('session', 'session:s1', { concurrentRequests: 2 })];
      const a = ok(await lim.admit(s, res(), T0));
      const b = ok(await lim.admit(s, res(), T0));
      assert.deepEqual(
        await lim.admit(s, res(), T0 + 100),
        refused('concurrent_requests', 'session', 'session:s1', 1),
      );
      assert.deepEqual(await lim.settle(a, done(), T0 + 200), []);
      const c = ok(await lim.admit(s, res(), T0 + 300));
      assert.deepEqual(await lim.settle(a, done(), T0 + 400), []); // again: frees nothing
      assert.deepEqual(await lim.settle({ id: 'no-such-ticket' }, done(), T0 + 400), []);
      assert.deepEqual(
        await lim.admit(s, res(), T0 + 500),
        refused('concurrent_requests', 'session', 'session:s1', 1),
      );
      await lim.settle(b, done(), T0 + 600);
      await lim.settle(c, done(), T0 + 600);
      ok(await lim.admit(s, res(), T0 + 700));
      ok(await lim.admit(s, res(), T0 + 700));
      assert.equal((await lim.admit(s, res(), T0 + 700)).ok, false);
      await lim.close();
    });

    it('nested scopes: a key is capped by its own limit, then by its tenant; a key refusal takes nothing from the tenant', async () => {
      const lim = make();
      const tenant = scope('tenant', 'tenant:acme', { requestsPerMinute: 5 });
      const k1 = [tenant, scope('key', 'key:k1', { requestsPerMinute: 2 })];
      const k2 = [tenant, scope('key', 'key:k2', { requestsPerMinute: 10 })];
      ok(await lim.admit(k1, res(), T0 + 1_000));
      ok(await lim.admit(k1, res(), T0 + 2_000));
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(
          await lim.admit(k1, res(), T0 + 3_000),
          refused('requests_per_minute', 'key', 'key:k1', 57),
        );
      }
      // The tenant counted k1's two admissions only: k2 gets the other three.
      for (let i = 0; i < 3; i++) ok(await lim.admit(k2, res(), T0 + 4_000));
      assert.deepEqual(
        await lim.admit(k2, res(), T0 + 4_000),
        refused('requests_per_minute', 'tenant', 'tenant:acme', 56),
      );
      await lim.close();
    });

    it('atomicity: a refusal by any scope reserves nothing in the others (tokens, slots, budget)', async () => {
      const lim = make();
      // Tokens: a tenant refusal must not reserve in the key listed after it.
      const tenant = scope('tenant', 'tenant:acme', { inputTokensPerMinute: 1000 });
      const kA = [tenant, scope('key', 'key:a', { inputTokensPerMinute: 1000 })];
      const kB = [tenant, scope('key', 'key:b', { inputTokensPerMinute: 300 })];
      const a = ok(await lim.admit(kA, res(800), T0));
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(
          await lim.admit(kB, res(300), T0 + 1_000),
          refused('input_tokens_per_minute', 'tenant', 'tenant:acme', 59),
        );
      }
      await lim.settle(a, done(0), T0 + 2_000);
      ok(await lim.admit(kB, res(300), T0 + 3_000)); // key:b held nothing
      assert.deepEqual(
        await lim.admit(kB, res(1), T0 + 3_000),
        refused('input_tokens_per_minute', 'key', 'key:b', 57),
      );

      // Slots and budget: a key refusal must not hold the tenant's only slot nor reserve its money.
      const t2 = scope('tenant', 'tenant:bolt', { concurrentRequests: 1 }, { usd: 1, period: 'day' });
      const once = [t2, scope('key', 'key:once', { requestsPerMinute: 1 })];
      const x = ok(await lim.admit(once, res(0, 0, 0.5), T0));
      assert.deepEqual(await lim.settle(x, done(0, 0, 0.5), T0 + 1), []);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(
          await lim.admit(once, res(0, 0, 0.5), T0 + 2),
          refused('requests_per_minute', 'key', 'key:once', 60),
        );
      }
      // Spend is 0.5 (not 2): this 0.29 reservation reaches 0.79, under the 0.8 alert.
      ok(await lim.admit([t2, scope('key', 'key:other')], res(0, 0, 0.29), T0 + 3));
      await lim.close();
    });

    it('budget per day: estimate reserved, actual settled, alerts once each, hard stop, next day open', async () => {
      const lim = make();
      const s = [scope('tenant', 'tenant:acme', {}, { usd: 1, period: 'day' })];
      const a = ok(await lim.admit(s, res(0, 0, 0.5), T0));
      assert.deepEqual(await lim.settle(a, done(0, 0, 0.3), T0 + 1_000), []); // spent 0.3
      const b = ok(await lim.admit(s, res(0, 0, 0.6), T0 + 2_000), [soft('tenant:acme', 0.9, 1)]);
      assert.deepEqual(await lim.settle(b, done(0, 0, 0.45), T0 + 3_000), []); // 0.75: soft already fired
      const c = ok(await lim.admit(s, res(0, 0, 0.2), T0 + 4_000)); // 0.95, still under 1
      // Settled exactly at the budget: the hard alert, and the stop.
      assert.deepEqual(await lim.settle(c, done(0, 0, 0.25), T0 + 5_000), [hard('tenant:acme', 1, 1)]);
      assert.deepEqual(
        await lim.admit(s, res(0, 0, 0.01), T0 + 6_000),
        refused('budget', 'tenant', 'tenant:acme', 43_194),
      );
      assert.deepEqual(
        await lim.admit(s, res(0, 0, 0), T0 + 3_600_000),
        refused('budget', 'tenant', 'tenant:acme', 39_600),
      );

      // The next UTC day is a new period: admitted, and its alerts fire again, once.
      const e = ok(await lim.admit(s, res(0, 0, 0.9), T0 + DAY), [soft('tenant:acme', 0.9, 1)]);
      const f = ok(await lim.admit(s, res(0, 0, 0.2), T0 + DAY), [hard('tenant:acme', 1.1, 1)]);
      assert.deepEqual(
        await lim.admit(s, res(), T0 + DAY),
        refused('budget', 'tenant', 'tenant:acme', 43_200),
      );
      assert.deepEqual(await lim.settle(e, done(), T0 + DAY + 1), []);
      assert.deepEqual(await lim.settle(f, done(), T0 + DAY + 1), []);
      ok(await lim.admit(s, res(0, 0, 1), T0 + DAY + 2)); // back to 0; reaching 1 again alerts no more
      await lim.close();
    });

    it('budget per month: spend equal to the budget stops; the next calendar month is open', async () => {
      const lim = make();
      const feb27 = Date.UTC(2025, 1, 27, 12);
      const s = [scope('project', 'project:acme/p', {}, { usd: 2, period: 'month', alertAt: 0.5 })];
      const a = ok(await lim.admit(s, res(0, 0, 2), feb27), [
        soft('project:acme/p', 2, 2),
        hard('project:acme/p', 2, 2),
      ]);
      assert.deepEqual(
        await lim.admit(s, res(), feb27),
        refused('budget', 'project', 'project:acme/p', 129_600), // 1.5 days to 1 March
      );
      assert.deepEqual(await lim.settle(a, done(0, 0, 1.5), feb27 + 1), []);
      ok(await lim.admit(s, res(0, 0, 0.25), feb27 + 2)); // 1.5 < 2: admitted, to 1.75
      const mar1 = Date.UTC(2025, 2, 1);
      ok(await lim.admit(s, res(0, 0, 1), mar1), [soft('project:acme/p', 1, 2)]);
      await lim.close();
    });

    it('loadSpend seeds a period once, the first time its counter is needed', async () => {
      const calls: [string, number][] = [];
      const loadSpend: LoadSpend = async (sc, start) => {
        calls.push([sc.id, start]);
        return sc.id === 'tenant:spent' ? 1 : 0.7;
      };
      const lim = make({ loadSpend });
      const s = [scope('tenant', 'tenant:acme', {}, { usd: 1, period: 'day' })];
      ok(await lim.admit(s, res(0, 0, 0.05), T0)); // 0.7 + 0.05
      assert.deepEqual(calls, [['tenant:acme', Date.UTC(2025, 2, 10)]]);
      ok(await lim.admit(s, res(0, 0, 0.1), T0 + 1), [soft('tenant:acme', 0.85, 1)]);
      assert.equal(calls.length, 1);
      // Next day: seeded again, once, though two admissions race for it.
      const [x, y] = await Promise.all([
        lim.admit(s, res(0, 0, 0.05), T0 + DAY),
        lim.admit(s, res(0, 0, 0.05), T0 + DAY),
      ]);
      // Both admitted, to 0.75 and 0.8: whichever reached 0.8 fired the soft alert.
      assert.ok(x.ok && y.ok);
      assert.deepEqual([...x.alerts, ...y.alerts], [soft('tenant:acme', 0.8, 1)]);
      assert.deepEqual(calls.slice(1), [['tenant:acme', Date.UTC(2025, 2, 11)]]);
      // A scope whose ledger spend is the whole budget is refused at once.
      const spent = [scope('key', 'tenant:spent', {}, { usd: 1, period: 'month' })];
      assert.deepEqual(
        await lim.admit(spent, res(), T0),
        refused('budget', 'key', 'tenant:spent', 1_857_600),
      );
      assert.equal(calls.length, 3);
      await lim.close();
    });

    it('scopes without limits or budget cost nothing', async () => {
      const lim = make();
      const free = scope('model', 'model:acme/gpt', { maxTokensDefault: 256, maxTokensCeiling: 4096 });
      for (let i = 0; i < 50; i++) ok(await lim.admit([free], res(100_000, 100_000, 100), T0));
      const one = [free, scope('key', 'key:one', { requestsPerMinute: 1 })];
      ok(await lim.admit(one, res(), T0));
      assert.deepEqual(await lim.admit(one, res(), T0), refused('requests_per_minute', 'key', 'key:one', 60));
      await lim.close();
    });
  });
}

describe('periodStart / periodEnd (UTC)', () => {
  it('days and calendar months, across a year end', () => {
    const t = Date.UTC(2025, 11, 15, 23, 59, 59, 999);
    assert.equal(periodStart('day', t), Date.UTC(2025, 11, 15));
    assert.equal(periodEnd('day', t), Date.UTC(2025, 11, 16));
    assert.equal(periodStart('month', t), Date.UTC(2025, 11, 1));
    assert.equal(periodEnd('month', t), Date.UTC(2026, 0, 1));
    assert.equal(periodStart('month', Date.UTC(2026, 0, 1)), Date.UTC(2026, 0, 1));
  });
});

sharedSuite('LocalLimiter', (opts = {}) => new LocalLimiter(opts));

const redisOff = REDIS_URL === 'off';
describe('RedisLimiter', { skip: redisOff ? 'SWY_TEST_REDIS=off' : false }, () => {
  let client: Redis;
  let n = 0;
  /** Connections a test opened itself, closed here too so a failed assertion cannot hang the run. */
  const closers: (() => Promise<unknown>)[] = [];
  const nextPrefix = (): string => `${RUN}${++n}:`;
  const make: Make = (opts = {}) => new RedisLimiter({ redis: client, prefix: nextPrefix(), ...opts });

  before(async () => {
    client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
    await client.connect();
  });

  after(async () => {
    await Promise.allSettled(closers.map((close) => close()));
    const keys = await scanKeys(client, `${RUN}*`);
    if (keys.length > 0) await client.del(...keys);
    assert.deepEqual(await scanKeys(client, `${RUN}*`), []);
    await client.quit();
  });

  sharedSuite('RedisLimiter', (opts) => make(opts));

  describe('RedisLimiter: across replicas', () => {
    it('two replicas on one prefix share every counter: alternating, exactly the limit is admitted', async () => {
      const prefix = nextPrefix();
      const a = new RedisLimiter({ redis: client, prefix });
      const b = new RedisLimiter({ redis: REDIS_URL, prefix }); // its own connection
      closers.push(() => b.close());
      const s = [scope('key', 'key:k1', { requestsPerMinute: 5 })];
      const got: boolean[] = [];
      for (let i = 0; i < 10; i++) got.push((await (i % 2 ? b : a).admit(s, res(), T0 + i)).ok);
      assert.deepEqual(got, [true, true, true, true, true, false, false, false, false, false]);

      const c = [scope('tenant', 'tenant:acme', { concurrentRequests: 2 }, { usd: 1, period: 'day' })];
      const ta = ok(await a.admit(c, res(0, 0, 0.85), T0), [soft('tenant:acme', 0.85, 1)]);
      const tb = ok(await b.admit(c, res(0, 0, 0.1), T0)); // the soft alert fired fleet-wide already
      assert.deepEqual(
        await a.admit(c, res(), T0),
        refused('concurrent_requests', 'tenant', 'tenant:acme', 1),
      );
      assert.deepEqual(await a.settle(tb, done(), T0), []); // b's ticket is unknown to a: a no-op
      assert.equal((await b.admit(c, res(), T0)).ok, false);
      assert.deepEqual(await b.settle(tb, done(0, 0, 0.1), T0), []);
      ok(await a.admit(c, res(0, 0, 0.05), T0), [hard('tenant:acme', 1, 1)]);
      assert.deepEqual(await a.settle(ta, done(0, 0, 0.85), T0), []);
      await a.close();
      await b.close();
      assert.equal(client.status, 'ready'); // closing a limiter leaves a client it was given open
    });

    it('a crashed replica’s concurrency slot comes back when its lease expires', async () => {
      const prefix = nextPrefix();
      const crashed = new RedisLimiter({ redis: client, prefix, leaseMs: 1_000 });
      const alive = new RedisLimiter({ redis: client, prefix, leaseMs: 1_000 });
      const s = [scope('key', 'key:k1', { concurrentRequests: 1 })];
      ok(await crashed.admit(s, res(), T0)); // never settled
      assert.deepEqual(
        await alive.admit(s, res(), T0 + 999),
        refused('concurrent_requests', 'key', 'key:k1', 1),
      );
      const t = ok(await alive.admit(s, res(), T0 + 1_000));
      assert.equal((await alive.admit(s, res(), T0 + 1_500)).ok, false);
      await alive.settle(t, done(), T0 + 1_600);
      ok(await alive.admit(s, res(), T0 + 1_700));
    });

    it('a replica seeding late does not overwrite a counter another seeded and reserved in (SET NX)', async () => {
      const prefix = nextPrefix();
      let calls = 0;
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let loading: () => void = () => {};
      const bLoads = new Promise<void>((resolve) => {
        loading = resolve;
      });
      const quick: LoadSpend = async () => {
        calls++;
        return 0.7;
      };
      // b finds the counter missing, then reads the ledger slowly; a seeds and reserves meanwhile.
      const slow: LoadSpend = async () => {
        calls++;
        loading();
        await held;
        return 0.7;
      };
      const a = new RedisLimiter({ redis: client, prefix, loadSpend: quick });
      const b = new RedisLimiter({ redis: client, prefix, loadSpend: slow });
      const s = [scope('tenant', 'tenant:acme', {}, { usd: 1, period: 'day', alertAt: 0.85 })];
      const late = b.admit(s, res(0, 0, 0.05), T0);
      await bLoads;
      ok(await a.admit(s, res(0, 0, 0.05), T0));
      release();
      ok(await late);
      assert.equal(calls, 2);
      const key = `${prefix}budget:tenant:acme:${Date.UTC(2025, 2, 10)}`;
      assert.equal(await client.get(key), '800000'); // 0.7 once + 0.05 + 0.05, in micro-USD
      ok(await b.admit(s, res(0, 0, 0.05), T0 + 1), [soft('tenant:acme', 0.85, 1)]);
      ok(await new RedisLimiter({ redis: client, prefix, loadSpend: quick }).admit(s, res(), T0 + 2));
      assert.equal(calls, 2); // the counter exists: a third replica does not load it
    });
  });

  describe('RedisLimiter: round trips and keys', () => {
    it('admit and settle are one EVALSHA each (as MONITOR sees it), and every key expires', async () => {
      const prefix = nextPrefix();
      const lim = new RedisLimiter({ redis: client, prefix, loadSpend: async () => 0.1 });
      const limits = {
        requestsPerMinute: 10,
        inputTokensPerMinute: 10_000,
        outputTokensPerMinute: 10_000,
        concurrentRequests: 5,
      };
      const s = [
        scope('tenant', 'tenant:acme', limits, { usd: 10, period: 'month' }),
        scope('key', 'key:k1', limits, { usd: 1, period: 'day' }),
      ];
      ok(await lim.admit(s, res(10, 10, 0.01), T0)); // seeds both budgets, loads the script
      const { commands, lua } = await monitored(client, async () => {
        const t = ok(await lim.admit(s, res(100, 200, 0.02), T0 + 1_000));
        await lim.settle(t, done(100, 50, 0.01), T0 + 2_000);
      });
      assert.deepEqual(
        commands.map((c) => c[0]),
        ['evalsha', 'evalsha'],
      );
      assert.ok(lua.length > 10, `the scripts ran ${lua.length} commands inside Redis`);

      const keys = await scanKeys(client, `${prefix}*`);
      assert.equal(keys.length, 2 * 5); // rpm, itpm, otpm, conc, budget per scope; no alert flag yet
      for (const k of keys) {
        const ttl = await client.pttl(k);
        assert.ok(ttl > 0, `${k} has no expiry (${ttl})`);
        if (/:(rpm|itpm|otpm):/.test(k)) assert.ok(ttl <= 120_000, `${k}: ${ttl}`);
      }
      assert.equal(await client.get(`${prefix}itpm:key:k1:${Math.floor(T0 / 60_000)}`), '110');
      assert.equal(await client.get(`${prefix}otpm:key:k1:${Math.floor(T0 / 60_000)}`), '60');
      assert.equal(await client.zcard(`${prefix}conc:key:k1`), 1); // the first ticket is still open
      assert.equal(await client.get(`${prefix}budget:key:k1:${Date.UTC(2025, 2, 10)}`), '120000');
    });

    it('after NOSCRIPT (a Redis restart or SCRIPT FLUSH) the script is sent again', async () => {
      const own = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      closers.push(async () => own.disconnect());
      const realEvalsha = own.evalsha.bind(own) as (...args: (string | number)[]) => Promise<unknown>;
      let forced = 0;
      // The first EVALSHA names a script Redis does not have: Redis answers NOSCRIPT for real.
      (own as unknown as { evalsha: typeof realEvalsha }).evalsha = (sha, ...rest) =>
        forced++ === 0 ? realEvalsha('0'.repeat(40), ...rest) : realEvalsha(sha, ...rest);
      const lim = new RedisLimiter({ redis: own, prefix: nextPrefix() });
      const s = [scope('key', 'key:k1', { requestsPerMinute: 1 })];
      ok(await lim.admit(s, res(), T0));
      assert.equal((await lim.admit(s, res(), T0)).ok, false);
      assert.equal(forced, 2);
      await own.quit();
    });
  });
});

async function scanKeys(r: Redis, match: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return out;
}

/**
 * The commands `client`'s own connection sent while `fn` ran, and those scripts ran inside Redis,
 * as MONITOR reports them (bracketed by ECHO markers sent on that connection).
 */
async function monitored(
  client: Redis,
  fn: () => Promise<void>,
): Promise<{ commands: string[][]; lua: string[][] }> {
  const mon = await client.monitor();
  const seen: { args: string[]; source: string }[] = [];
  const mark = `swy-mark-${process.pid}-${Date.now()}`;
  let ended: () => void = () => {};
  const end = new Promise<void>((resolve) => {
    ended = resolve;
  });
  mon.on('monitor', (_time: string, args: string[], source: string) => {
    seen.push({ args, source });
    if (args[0] === 'echo' && args[1] === `${mark}:end`) ended();
  });
  try {
    await client.echo(`${mark}:begin`);
    await fn();
    await client.echo(`${mark}:end`);
    await end;
  } finally {
    mon.disconnect();
  }
  const begin = seen.findIndex((e) => e.args[0] === 'echo' && e.args[1] === `${mark}:begin`);
  assert.ok(begin >= 0, 'MONITOR did not see the begin marker');
  const source = seen[begin]!.source;
  const between = seen.slice(begin + 1, -1);
  return {
    commands: between.filter((e) => e.source === source).map((e) => e.args),
    lua: between.filter((e) => e.source === 'lua').map((e) => e.args),
  };
}
