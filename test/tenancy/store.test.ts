/**
 * The tenancy store: one suite run against SQLite in memory, SQLite on a file and the local
 * PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`, a throwaway schema per store, dropped at
 * the end). Records round-trip field for field, with numbers as numbers; usage sums, spend and
 * compaction are checked against values worked out by hand from eight ledger rows.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore } from '../../src/tenancy/store/index.js';
import { PostgresStore } from '../../src/tenancy/store/postgres.js';
import { SqliteStore } from '../../src/tenancy/store/sqlite.js';
import type {
  AuditEntry,
  KeyRecord,
  ProjectRecord,
  TenancyStore,
  TenantRecord,
  UsageBucket,
  UsageQuery,
  UsageRow,
} from '../../src/tenancy/types.js';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const H = 3_600_000;
/** 2025-01-15 00:00 UTC: day D of the ledger fixtures. */
const D = Date.UTC(2025, 0, 15);
/** Above 2^32: a BIGINT read back as a string or cut to 32 bits fails the round trips. */
const T0 = 1_736_899_200_123;

const dir = mkdtempSync(join(tmpdir(), 'switchyard-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh, migrated store, and a count of its raw usage rows (read beside the interface). */
interface Opened {
  readonly store: TenancyStore;
  countRawUsage(): Promise<number>;
}

/** SQLite's raw row count, read through the store's own connection (a `:memory:` has no other). */
function sqliteRawCount(store: SqliteStore): () => Promise<number> {
  const db = (store as unknown as { db: Database.Database }).db;
  return async () => (db.prepare('SELECT COUNT(*) AS n FROM usage').get() as { n: number }).n;
}

let fileNo = 0;
const sqliteMemory = async (): Promise<Opened> => {
  const store = new SqliteStore(':memory:');
  await store.migrate();
  return { store, countRawUsage: sqliteRawCount(store) };
};
const sqliteFile = async (): Promise<Opened> => {
  const store = new SqliteStore(join(dir, `store-${fileNo++}.db`));
  await store.migrate();
  return { store, countRawUsage: sqliteRawCount(store) };
};

/** Schemas of this run: `swy_test_<pid>_<random>_<n>`, all dropped when the file's tests end. */
const SCHEMA_PREFIX = `swy_test_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
const schemas: string[] = [];
let pgAdmin: pg.Pool | undefined;
const admin = (): pg.Pool => {
  pgAdmin ??= new pg.Pool({ connectionString: PG_URL, max: 2 });
  return pgAdmin;
};
const newSchema = (): string => {
  const name = `${SCHEMA_PREFIX}_${schemas.length}`;
  schemas.push(name);
  return name;
};
after(async () => {
  if (pgAdmin === undefined) return;
  for (const s of schemas) await pgAdmin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await pgAdmin.end();
});
const postgres = async (): Promise<Opened> => {
  const schema = newSchema();
  const store = new PostgresStore(PG_URL, schema);
  await store.migrate();
  return {
    store,
    countRawUsage: async () =>
      (await admin().query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM "${schema}".usage`)).rows[0]!.n,
  };
};

// ---- fixtures ---------------------------------------------------------------------------------

const tenant = (id: string, over: Partial<TenantRecord> = {}): TenantRecord => ({
  id,
  limits: {
    requestsPerMinute: 600,
    inputTokensPerMinute: 200_000,
    concurrentRequests: 16,
    maxTokensCeiling: 4096,
  },
  budget: { usd: 125.5, period: 'month', alertAt: 0.9 },
  models: ['gpt-4o', 'llama-3.1-8b'],
  storeContent: true,
  suspended: false,
  createdMs: T0,
  ...over,
});

const project = (tenantId: string, id: string, over: Partial<ProjectRecord> = {}): ProjectRecord => ({
  tenant: tenantId,
  id,
  limits: { outputTokensPerMinute: 50_000, maxTokensDefault: 512 },
  budget: { usd: 10.25, period: 'day' },
  createdMs: T0 + 1,
  ...over,
});

const key = (id: string, tenantId: string, over: Partial<KeyRecord> = {}): KeyRecord => ({
  id,
  prefix: `sk-swy-${id.slice(-4)}`,
  hash: `hash-of-${id}`,
  tenant: tenantId,
  project: 'p1',
  name: `key ${id}`,
  roles: ['member'],
  models: ['gpt-4o'],
  limits: { requestsPerMinute: 60 },
  budget: { usd: 3.5, period: 'day', alertAt: 0.5 },
  expiresMs: T0 + 86_400_000,
  revokedMs: null,
  suspended: false,
  createdMs: T0 + 2,
  ...over,
});

const usage = (requestId: string, over: Partial<UsageRow>): UsageRow => ({
  requestId,
  timeMs: D,
  tenant: 'acme',
  project: null,
  keyId: null,
  session: null,
  modelAsked: 'm-a',
  pool: 'pool-1',
  endpoint: '/v1/chat/completions',
  inputTokens: 0,
  cachedInputTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  costUsd: 0,
  latencyMs: 812.5,
  ttftMs: null,
  status: 200,
  reason: null,
  content: null,
  ...over,
});

/**
 * The ledger: costs are binary fractions, so every sum is exact whatever order a database adds
 * in. r6 is before day D, r7 at D + 48 h (the end of the two-day queries, excluded), r8 has no key.
 */
const LEDGER: readonly UsageRow[] = [
  usage('r1', {
    timeMs: D + 0.5 * H,
    project: 'p1',
    keyId: 'key_a',
    session: 's-1',
    inputTokens: 100,
    cachedInputTokens: 10,
    outputTokens: 50,
    reasoningTokens: 5,
    costUsd: 0.25,
    ttftMs: 120.25,
  }),
  usage('r2', {
    timeMs: D + 0.75 * H,
    keyId: 'key_b',
    inputTokens: 20,
    status: 500,
    reason: 'upstream_error',
  }),
  usage('r3', {
    timeMs: D + 1.25 * H,
    project: 'p1',
    keyId: 'key_a',
    modelAsked: 'm-b',
    inputTokens: 300,
    cachedInputTokens: 100,
    outputTokens: 200,
    reasoningTokens: 20,
    costUsd: 1.5,
    content: '{"prompt":"hi"}',
  }),
  usage('r4', { timeMs: D + 25 * H, keyId: 'key_a', inputTokens: 40, costUsd: 0.125, status: 429 }),
  usage('r5', {
    timeMs: D + 1.5 * H,
    tenant: 'beta',
    keyId: 'key_c',
    inputTokens: 7,
    outputTokens: 3,
    costUsd: 0.5,
  }),
  usage('r6', {
    timeMs: D - 1,
    project: 'p1',
    keyId: 'key_a',
    inputTokens: 1000,
    outputTokens: 1000,
    costUsd: 8,
  }),
  usage('r7', { timeMs: D + 48 * H, keyId: 'key_b', inputTokens: 1, outputTokens: 1, costUsd: 2 }),
  usage('r8', { timeMs: D + 2 * H + 1, modelAsked: 'm-b', inputTokens: 5, costUsd: 0.0625, status: 499 }),
];

/** A bucket: [startMs, tenant, keyId, model, requests, errors, input, cached, output, cost]. */
type B = [number, string, string | null, string | null, number, number, number, number, number, number];
const buckets = (rows: readonly B[]): UsageBucket[] =>
  rows.map(
    ([
      startMs,
      t,
      keyId,
      model,
      requests,
      errors,
      inputTokens,
      cachedInputTokens,
      outputTokens,
      costUsd,
    ]) => ({
      startMs,
      tenant: t,
      keyId,
      model,
      requests,
      errors,
      inputTokens,
      cachedInputTokens,
      outputTokens,
      costUsd,
    }),
  );

const BY_HOUR: UsageQuery = { fromMs: D, toMs: D + 48 * H, bucket: 'hour' };
const ACME_BY_DAY_AND_KEY: UsageQuery = {
  tenant: 'acme',
  fromMs: D,
  toMs: D + 48 * H,
  bucket: 'day',
  groupBy: ['key'],
};
const MODEL_A_BY_KEY_AND_MODEL: UsageQuery = {
  model: 'm-a',
  fromMs: D,
  toMs: D + 48 * H,
  bucket: 'day',
  groupBy: ['key', 'model'],
};
const KEY_A_BY_MODEL: UsageQuery = {
  keyId: 'key_a',
  fromMs: D - 24 * H,
  toMs: D + 49 * H,
  bucket: 'day',
  groupBy: ['model'],
};

/** Day-bucket answers, which no compaction may change (before the late rows r9, r10). */
const ACME_BY_DAY_AND_KEY_EXPECTED = buckets([
  [D, 'acme', null, null, 1, 1, 5, 0, 0, 0.0625], // r8
  [D, 'acme', 'key_a', null, 2, 0, 400, 110, 250, 1.75], // r1 + r3
  [D, 'acme', 'key_b', null, 1, 1, 20, 0, 0, 0], // r2
  [D + 24 * H, 'acme', 'key_a', null, 1, 1, 40, 0, 0, 0.125], // r4
]);
const MODEL_A_EXPECTED = buckets([
  [D, 'acme', 'key_a', 'm-a', 1, 0, 100, 10, 50, 0.25], // r1
  [D, 'acme', 'key_b', 'm-a', 1, 1, 20, 0, 0, 0], // r2
  [D, 'beta', 'key_c', 'm-a', 1, 0, 7, 0, 3, 0.5], // r5
  [D + 24 * H, 'acme', 'key_a', 'm-a', 1, 1, 40, 0, 0, 0.125], // r4
]);
const KEY_A_EXPECTED = buckets([
  [D - 24 * H, 'acme', null, 'm-a', 1, 0, 1000, 0, 1000, 8], // r6
  [D, 'acme', null, 'm-a', 1, 0, 100, 10, 50, 0.25], // r1
  [D, 'acme', null, 'm-b', 1, 0, 300, 100, 200, 1.5], // r3
  [D + 24 * H, 'acme', null, 'm-a', 1, 1, 40, 0, 0, 0.125], // r4
]);

/** Spend by scope, before the late rows: [scope, fromMs, usd]. */
const SPEND: readonly [{ tenant: string; project?: string; keyId?: string }, number, number][] = [
  [{ tenant: 'acme' }, D, 3.9375], // r1 + r2 + r3 + r4 + r7 + r8
  [{ tenant: 'acme' }, 0, 11.9375], // and r6
  [{ tenant: 'acme', project: 'p1' }, D, 1.75], // r1 + r3
  [{ tenant: 'acme', keyId: 'key_a' }, D, 1.875], // r1 + r3 + r4
  [{ tenant: 'acme', project: 'p1', keyId: 'key_a' }, 0, 9.75], // r1 + r3 + r6
  [{ tenant: 'beta' }, D, 0.5], // r5
  [{ tenant: 'nobody' }, 0, 0],
];

/** Runs every check against the stores `open` returns (each fresh and migrated). */
function storeSuite(name: string, open: () => Promise<Opened>): void {
  describe(name, () => {
    const opened: Opened[] = [];
    const fresh = async (): Promise<Opened> => {
      const o = await open();
      opened.push(o);
      return o;
    };
    after(async () => {
      for (const o of opened) await o.store.close();
    });

    it('tenants round-trip every field, list in byte order of id, update only mutable fields', async () => {
      const { store } = await fresh();
      const acme = tenant('acme');
      const upper = tenant('Zulu', { budget: null, models: null, storeContent: false, limits: {} });
      await store.createTenant(acme);
      await store.createTenant(tenant('beta'));
      await store.createTenant(upper);
      const got = await store.getTenant('acme');
      assert.deepEqual(got, acme);
      assert.equal(typeof got?.createdMs, 'number');
      assert.deepEqual(await store.getTenant('Zulu'), upper);
      assert.equal(await store.getTenant('nobody'), null);
      assert.deepEqual(
        (await store.listTenants()).map((t) => t.id),
        ['Zulu', 'acme', 'beta'],
      );
      await assert.rejects(store.createTenant(tenant('acme')));

      const changed = tenant('acme', {
        limits: { requestsPerMinute: 1 },
        budget: { usd: 1, period: 'day' },
        models: [],
        storeContent: false,
        suspended: true,
      });
      assert.equal(await store.updateTenant({ ...changed, createdMs: 5 }), true);
      assert.deepEqual(await store.getTenant('acme'), changed, 'createdMs is not replaced');
      assert.equal(await store.updateTenant(tenant('nobody')), false);
      assert.equal(await store.getTenant('nobody'), null, 'an update creates nothing');
    });

    it('projects round-trip, are unique within their tenant, update and delete', async () => {
      const { store } = await fresh();
      const p1 = project('acme', 'p1');
      const p2 = project('acme', 'p2', { budget: null, limits: {} });
      const otherP1 = project('beta', 'p1', { createdMs: T0 + 9 });
      for (const p of [p2, p1, otherP1]) await store.createProject(p);
      await assert.rejects(store.createProject(project('acme', 'p1')));
      assert.deepEqual(await store.getProject('acme', 'p1'), p1);
      assert.deepEqual(await store.getProject('beta', 'p1'), otherP1);
      assert.equal(await store.getProject('acme', 'p3'), null);
      assert.deepEqual(await store.listProjects('acme'), [p1, p2]);
      assert.deepEqual(await store.listProjects('nobody'), []);

      const changed = project('acme', 'p1', { limits: { concurrentRequests: 2 }, budget: null });
      assert.equal(await store.updateProject(changed), true);
      assert.deepEqual(await store.getProject('acme', 'p1'), changed);
      assert.deepEqual(await store.getProject('beta', 'p1'), otherP1, 'the other tenant’s p1 is untouched');
      assert.equal(await store.updateProject(project('acme', 'p9')), false);

      assert.equal(await store.deleteProject('acme', 'p1'), true);
      assert.equal(await store.deleteProject('acme', 'p1'), false);
      assert.equal(await store.getProject('acme', 'p1'), null);
      assert.deepEqual(await store.getProject('beta', 'p1'), otherP1);
    });

    it('keys round-trip, are found by hash, refuse a second key with the same hash or id', async () => {
      const { store } = await fresh();
      const k1 = key('key_0001', 'acme');
      const k2 = key('key_0002', 'acme', {
        project: null,
        roles: ['tenant-admin', 'member'],
        models: null,
        limits: {},
        budget: null,
        expiresMs: null,
        revokedMs: T0 + 5,
        suspended: true,
      });
      const k3 = key('key_0003', 'beta', { roles: ['admin'] });
      for (const k of [k3, k2, k1]) await store.insertKey(k);

      const got = await store.getKey('key_0001');
      assert.deepEqual(got, k1);
      assert.equal(typeof got?.expiresMs, 'number');
      assert.deepEqual(await store.getKey('key_0002'), k2);
      assert.deepEqual(await store.getKeyByHash('hash-of-key_0002'), k2);
      assert.deepEqual(await store.getKeyByHash('hash-of-key_0003'), k3);
      assert.equal(await store.getKeyByHash('hash-of-nothing'), null);
      assert.equal(await store.getKey('key_9999'), null);
      assert.deepEqual(await store.listKeys(), [k1, k2, k3]);
      assert.deepEqual(await store.listKeys('acme'), [k1, k2]);
      assert.deepEqual(await store.listKeys('nobody'), []);

      await assert.rejects(store.insertKey(key('key_0004', 'acme', { hash: k1.hash })), 'same hash');
      await assert.rejects(store.insertKey(key('key_0001', 'acme', { hash: 'fresh' })), 'same id');
      assert.deepEqual(await store.listKeys(), [k1, k2, k3], 'the refused keys left nothing');

      const changed = key('key_0001', 'acme', {
        project: 'p2',
        name: 'renamed',
        roles: ['tenant-admin'],
        models: ['m-x'],
        limits: { maxTokensCeiling: 100 },
        budget: null,
        expiresMs: null,
        revokedMs: T0 + 7,
        suspended: true,
      });
      assert.equal(await store.updateKey({ ...changed, hash: 'swapped', prefix: 'x', createdMs: 1 }), true);
      assert.deepEqual(await store.getKey('key_0001'), changed, 'hash, prefix, tenant and createdMs stay');
      assert.deepEqual(await store.getKeyByHash(k1.hash), changed);
      assert.equal(await store.getKeyByHash('swapped'), null);
      assert.equal(await store.updateKey(key('key_9999', 'acme')), false);
    });

    it('deleteTenant removes its projects and keys, not other tenants’ nor its usage', async () => {
      const { store } = await fresh();
      await store.createTenant(tenant('gone'));
      await store.createTenant(tenant('stays'));
      await store.createProject(project('gone', 'p1'));
      await store.createProject(project('stays', 'p1'));
      await store.insertKey(key('key_g1', 'gone'));
      await store.insertKey(key('key_g2', 'gone', { project: null }));
      await store.insertKey(key('key_s1', 'stays'));
      await store.insertUsage([usage('u-gone', { tenant: 'gone', keyId: 'key_g1', costUsd: 0.75 })]);

      assert.equal(await store.deleteTenant('gone'), true);
      assert.equal(await store.getTenant('gone'), null);
      assert.deepEqual(await store.listProjects('gone'), []);
      assert.deepEqual(await store.listKeys('gone'), []);
      assert.equal(await store.getKeyByHash('hash-of-key_g1'), null);
      assert.deepEqual(await store.getTenant('stays'), tenant('stays'));
      assert.deepEqual(await store.listProjects('stays'), [project('stays', 'p1')]);
      assert.deepEqual(await store.listKeys(), [key('key_s1', 'stays')]);
      assert.equal(await store.spend({ tenant: 'gone' }, 0), 0.75, 'usage stays');
      assert.equal(await store.deleteTenant('gone'), false);
    });

    it('lists audit entries newest first (ties: last appended first), by tenant, up to the limit', async () => {
      const { store } = await fresh();
      const entry = (timeMs: number, action: string, t: string | null, detail: AuditEntry['detail']) => ({
        timeMs,
        actor: t === null ? 'config' : 'key_admin',
        action,
        tenant: t,
        target: `${action}-target`,
        detail,
      });
      const a1 = entry(T0 + 100, 'tenant.create', 'acme', { limits: { requestsPerMinute: 5 } });
      const a2 = entry(T0 + 200, 'key.create', 'beta', { name: 'ci', roles: ['member'] });
      const a3 = entry(T0 + 300, 'pool.reload', null, {});
      const a4 = entry(T0 + 300, 'key.revoke', 'acme', { reason: 'leaked', at: T0 });
      const a5 = entry(T0 + 250, 'project.create', 'acme', { budget: null });
      for (const e of [a1, a2, a3, a4, a5]) await store.appendAudit(e);

      assert.deepEqual(await store.listAudit({ limit: 10 }), [a4, a3, a5, a2, a1]);
      assert.deepEqual(await store.listAudit({ tenant: 'acme', limit: 10 }), [a4, a5, a1]);
      assert.deepEqual(await store.listAudit({ limit: 2 }), [a4, a3]);
      assert.deepEqual(await store.listAudit({ tenant: 'acme', limit: 1 }), [a4]);
      assert.deepEqual(await store.listAudit({ tenant: 'nobody', limit: 10 }), []);
    });

    describe('usage ledger (the steps run in order on one store)', () => {
      let store: TenancyStore;
      let countRawUsage: () => Promise<number>;
      before(async () => {
        ({ store, countRawUsage } = await fresh());
      });

      /** Day-bucket totals and spend, which compaction must leave as they were. */
      const assertDayTotalsAndSpend = async (): Promise<void> => {
        assert.deepEqual(await store.queryUsage(ACME_BY_DAY_AND_KEY), ACME_BY_DAY_AND_KEY_EXPECTED);
        assert.deepEqual(await store.queryUsage(MODEL_A_BY_KEY_AND_MODEL), MODEL_A_EXPECTED);
        assert.deepEqual(await store.queryUsage(KEY_A_BY_MODEL), KEY_A_EXPECTED);
        for (const [scope, fromMs, usd] of SPEND)
          assert.equal(await store.spend(scope, fromMs), usd, JSON.stringify(scope));
      };

      it('stores a batch written twice (and a request repeated within a batch) once', async () => {
        await store.insertUsage(LEDGER);
        await store.insertUsage(LEDGER);
        await store.insertUsage([LEDGER[0]!, { ...LEDGER[0]!, costUsd: 100 }]);
        await store.insertUsage([]);
        assert.equal(await countRawUsage(), 8);
        assert.equal(await store.spend({ tenant: 'acme' }, D), 3.9375);
      });

      it('sums by hour and tenant over [fromMs, toMs)', async () => {
        assert.deepEqual(
          await store.queryUsage(BY_HOUR),
          buckets([
            [D, 'acme', null, null, 2, 1, 120, 10, 50, 0.25], // r1 + r2
            [D + H, 'acme', null, null, 1, 0, 300, 100, 200, 1.5], // r3
            [D + H, 'beta', null, null, 1, 0, 7, 0, 3, 0.5], // r5
            [D + 2 * H, 'acme', null, null, 1, 1, 5, 0, 0, 0.0625], // r8
            [D + 25 * H, 'acme', null, null, 1, 1, 40, 0, 0, 0.125], // r4
          ]),
        );
        const beta = await store.queryUsage({ ...BY_HOUR, tenant: 'beta' });
        assert.deepEqual(beta, buckets([[D + H, 'beta', null, null, 1, 0, 7, 0, 3, 0.5]]));
        assert.equal(typeof beta[0]?.requests, 'number');
        assert.equal(typeof beta[0]?.startMs, 'number');
      });

      it('sums by day, split by key and/or model, filtered by tenant, key or model; spends', async () => {
        await assertDayTotalsAndSpend();
        assert.deepEqual(await store.queryUsage({ ...BY_HOUR, tenant: 'nobody' }), []);
      });

      it('compacts old raw rows into hours, adding to an hour already rolled up', async () => {
        // Cut-off: (D + 26.2 h − 24 h) down to the hour = D + 2 h: r6, r1, r2, r3, r5 move.
        const opts = { rawRetentionMs: 24 * H, hourlyRetentionMs: 10 * 24 * H };
        await store.compact(D + 26.2 * H, opts);
        assert.equal(await countRawUsage(), 3, 'r4, r7, r8 are left');
        await assertDayTotalsAndSpend();
        assert.equal((await store.queryUsage(BY_HOUR)).length, 5);
        assert.deepEqual(
          (await store.queryUsage(BY_HOUR))[0],
          buckets([[D, 'acme', null, null, 2, 1, 120, 10, 50, 0.25]])[0],
        );

        // A late row for r1's hour, key, model and pool: its roll-up row is added to.
        await store.insertUsage([
          usage('r9', {
            timeMs: D + 0.1 * H,
            project: 'p1',
            keyId: 'key_a',
            inputTokens: 2,
            cachedInputTokens: 1,
            outputTokens: 4,
            costUsd: 0.5,
          }),
        ]);
        await store.compact(D + 26.2 * H, opts);
        assert.equal(await countRawUsage(), 3);
        assert.deepEqual(
          (await store.queryUsage(BY_HOUR))[0],
          buckets([[D, 'acme', null, null, 3, 1, 122, 11, 54, 0.75]])[0],
        );
        assert.deepEqual(
          (await store.queryUsage(ACME_BY_DAY_AND_KEY))[1],
          buckets([[D, 'acme', 'key_a', null, 3, 0, 402, 111, 254, 2.25]])[0],
        );
        assert.equal(await store.spend({ tenant: 'acme' }, D), 4.4375);
      });

      it('compacts hours into days: day totals stay, hour buckets fold into the day’s start', async () => {
        // Raw cut-off D + 26 h (r4, r8 move; r7 stays); hourly cut-off (D + 24.2 h) down to the
        // day = D + 24 h: every hour of days D − 1 and D moves into daily roll-ups.
        const opts = { rawRetentionMs: 0, hourlyRetentionMs: 2 * H };
        await store.compact(D + 26.2 * H, opts);
        assert.equal(await countRawUsage(), 1, 'r7 is left');
        const withR9 = (b: UsageBucket[], i: number): UsageBucket[] =>
          b.map((x, j) =>
            j === i
              ? {
                  ...x,
                  requests: x.requests + 1,
                  inputTokens: x.inputTokens + 2,
                  cachedInputTokens: x.cachedInputTokens + 1,
                  outputTokens: x.outputTokens + 4,
                  costUsd: x.costUsd + 0.5,
                }
              : x,
          );
        assert.deepEqual(
          await store.queryUsage(ACME_BY_DAY_AND_KEY),
          withR9(ACME_BY_DAY_AND_KEY_EXPECTED, 1),
        );
        assert.deepEqual(await store.queryUsage(MODEL_A_BY_KEY_AND_MODEL), withR9(MODEL_A_EXPECTED, 0));
        assert.deepEqual(await store.queryUsage(KEY_A_BY_MODEL), withR9(KEY_A_EXPECTED, 1));
        assert.equal(await store.spend({ tenant: 'acme' }, D), 4.4375);
        assert.equal(await store.spend({ tenant: 'acme', project: 'p1', keyId: 'key_a' }, 0), 10.25);
        assert.equal(await store.spend({ tenant: 'beta' }, D), 0.5);
        assert.deepEqual(
          await store.queryUsage(BY_HOUR),
          buckets([
            [D, 'acme', null, null, 5, 2, 427, 111, 254, 2.3125], // r1 + r2 + r3 + r8 + r9, whole day
            [D, 'beta', null, null, 1, 0, 7, 0, 3, 0.5], // r5
            [D + 25 * H, 'acme', null, null, 1, 1, 40, 0, 0, 0.125], // r4, still hourly
          ]),
        );

        // A late row for day D goes raw → hourly → daily, added to r1's daily row.
        await store.insertUsage([
          usage('r10', {
            timeMs: D + 0.2 * H,
            project: 'p1',
            keyId: 'key_a',
            inputTokens: 1,
            outputTokens: 1,
            costUsd: 0.25,
            status: 503,
          }),
        ]);
        await store.compact(D + 26.2 * H, opts);
        assert.equal(await countRawUsage(), 1);
        assert.deepEqual(
          (await store.queryUsage(ACME_BY_DAY_AND_KEY))[1],
          buckets([[D, 'acme', 'key_a', null, 4, 1, 403, 111, 255, 2.5]])[0],
        );
        assert.equal(await store.spend({ tenant: 'acme' }, D), 4.6875);
        assert.equal(await store.spend({ tenant: 'acme', keyId: 'key_a' }, D), 2.625);
      });

      it('migrate() again changes nothing', async () => {
        await store.migrate();
        assert.equal(await store.spend({ tenant: 'acme' }, D), 4.6875);
        assert.equal(await countRawUsage(), 1);
      });
    });
  });
}

storeSuite('SqliteStore(:memory:)', sqliteMemory);
storeSuite('SqliteStore(file)', sqliteFile);
storeSuite('PostgresStore', postgres);

describe('SqliteStore on a file', () => {
  it('keeps everything across a reopen, in WAL mode, at schema version 1', async () => {
    const path = join(dir, 'reopen.db');
    const first = new SqliteStore(path);
    await first.migrate();
    await first.createTenant(tenant('acme'));
    await first.insertKey(key('key_0001', 'acme'));
    await first.appendAudit({
      timeMs: T0,
      actor: 'cli',
      action: 'tenant.create',
      tenant: 'acme',
      target: 'acme',
      detail: {},
    });
    await first.insertUsage(LEDGER);
    await first.close();

    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('user_version', { simple: true }), 1);
    } finally {
      db.close();
    }

    const second = new SqliteStore(path);
    try {
      await second.migrate();
      assert.deepEqual(await second.getTenant('acme'), tenant('acme'));
      assert.deepEqual(await second.getKeyByHash('hash-of-key_0001'), key('key_0001', 'acme'));
      assert.equal((await second.listAudit({ limit: 5 })).length, 1);
      assert.deepEqual(await second.queryUsage(ACME_BY_DAY_AND_KEY), ACME_BY_DAY_AND_KEY_EXPECTED);
    } finally {
      await second.close();
    }
  });
});

describe('PostgresStore migrations', () => {
  it('two stores migrating one new schema at once both succeed, and version 1 is recorded once', async () => {
    const schema = newSchema();
    const a = new PostgresStore(PG_URL, schema);
    const b = new PostgresStore(PG_URL, schema);
    try {
      await Promise.all([a.migrate(), b.migrate()]);
      await a.createTenant(tenant('acme'));
      assert.deepEqual(await b.getTenant('acme'), tenant('acme'));
      const versions = await admin().query(`SELECT version FROM "${schema}".schema_migrations`);
      assert.deepEqual(versions.rows, [{ version: 1 }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a schema name that would need quoting', () => {
    assert.throws(() => new PostgresStore(PG_URL, 'x"; DROP SCHEMA public; --'), /invalid PostgreSQL schema/);
  });
});

describe('openStore', () => {
  it('opens PostgreSQL for postgres:// and postgresql:// URLs', async () => {
    for (const url of [PG_URL, 'postgresql://postgres@127.0.0.1:5432/test']) {
      const store = openStore(url);
      assert.ok(store instanceof PostgresStore, url);
      await store.close();
    }
  });

  it('opens SQLite for sqlite:PATH, a plain path and :memory:', async () => {
    const path = join(dir, 'opened.db');
    for (const url of [`sqlite:${path}`, join(dir, 'plain.db'), ':memory:', 'sqlite::memory:']) {
      const store = openStore(url);
      assert.ok(store instanceof SqliteStore, url);
      await store.migrate();
      await store.createTenant(tenant('acme'));
      assert.deepEqual(await store.getTenant('acme'), tenant('acme'));
      await store.close();
    }
    assert.ok(existsSync(path));
    assert.ok(existsSync(join(dir, 'plain.db')));
    assert.ok(!existsSync('sqlite::memory:'));
  });

  it('refuses another scheme rather than taking it for a file name', () => {
    assert.throws(() => openStore('mysql://root@localhost/db'), /unsupported store URL/);
  });
});
