/** Tier rules: exact plans for constructed requests, and the config checks that guard them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfigText, validateConfig } from '../../src/config/load.js';
import { type CascadePlan, type TierPlan, compileTiers } from '../../src/tiers/plan.js';
import { type HeaderBag, TierSignals } from '../../src/tiers/signals.js';

const endpoint = (name: string) => ({
  endpoints: [{ name, kind: 'http', url: `http://127.0.0.1:9/${name}` }],
});

const pools = {
  edge: { local: true, aliases: ['small'], ...endpoint('e1') },
  'edge-b': { local: true, ...endpoint('e2') },
  cloud: { aliases: ['large'], ...endpoint('e3') },
  'cloud-b': endpoint('e4'),
};

const auto = {
  rules: [
    { name: 'private', when: { pii: true }, pool: 'small', localOnly: true },
    { name: 'premium', when: { tenant: ['acme'] }, pool: 'large' },
    { when: { header: { 'X-Plan': 'pro' } }, pool: 'cloud-b' },
    { name: 'code', when: { keywords: ['stack trace', 'SQL'], promptTokensAtLeast: 10 }, pool: 'large' },
    { name: 'short', when: { promptTokensBelow: 50 }, pool: 'small' },
    { name: 'translate', when: { match: '^translate\\b' }, pool: 'edge-b' },
  ],
  default: 'large',
  fallback: { small: ['edge-b', 'large'], large: ['cloud-b', 'small'] },
  cascade: { from: 'small', to: 'large', checks: ['refusal', 'invalid-json'] },
};

const tiers = compileTiers(validateConfig({ pools, tiers: { auto } }));

function plan(content: string, promptTokens: number, headers: HeaderBag = {}): TierPlan {
  const body = { model: 'auto', messages: [{ role: 'user', content }] };
  return tiers.get('auto')!.plan(new TierSignals(body, headers, promptTokens));
}

const cascade: CascadePlan = {
  from: 'edge',
  pools: ['cloud', 'cloud-b'],
  checks: ['refusal', 'invalid-json'],
};
const large = (rule: string): TierPlan => ({
  pools: ['cloud', 'cloud-b', 'edge'],
  rule,
  localOnly: false,
  cascade,
});

describe('tier plans', () => {
  it('a long plain prompt takes the default, then its fallback chain', () => {
    assert.deepEqual(plan('Explain the history of the printing press in detail.', 400), large('default'));
  });

  it('a short prompt goes to the small tier, with the cascade to the large one', () => {
    assert.deepEqual(plan('hi', 3), {
      pools: ['edge', 'edge-b', 'cloud'],
      rule: 'short',
      localOnly: false,
      cascade,
    });
  });

  it('PII under a localOnly rule keeps local pools only, and no cascade to the cloud', () => {
    const expected: TierPlan = { pools: ['edge', 'edge-b'], rule: 'private', localOnly: true, cascade: null };
    assert.deepEqual(plan('my card is 4111 1111 1111 1111', 400), expected);
    assert.deepEqual(
      plan('mail me at a@b.example', 3, { 'x-switchyard-tier': 'large' }),
      expected,
      'a client cannot ask a private request out of the local pools',
    );
  });

  it('PII in an earlier message or a tool call counts too', () => {
    const body = {
      model: 'auto',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Customer: +44 20 7946 0958' }] },
        { role: 'user', content: 'Draft a reply.' },
      ],
    };
    assert.equal(tiers.get('auto')!.plan(new TierSignals(body, {}, 400)).rule, 'private');
    const tool = {
      model: 'auto',
      messages: [
        { role: 'assistant', tool_calls: [{ function: { name: 'lookup', arguments: '{"ip":"10.1.2.3"}' } }] },
        { role: 'user', content: 'Go on.' },
      ],
    };
    assert.equal(tiers.get('auto')!.plan(new TierSignals(tool, {}, 400)).rule, 'private');
  });

  it('tenant, header and keyword rules, in rule order', () => {
    assert.deepEqual(plan('hi', 3, { 'x-switchyard-tenant': 'acme' }), large('premium'));
    assert.deepEqual(plan('hi', 3, { 'x-plan': 'pro' }), {
      pools: ['cloud-b'],
      rule: 'rules[2]',
      localOnly: false,
      cascade: null,
    });
    assert.deepEqual(plan('Here is my stack trace, what went wrong?', 30), large('code'));
    assert.deepEqual(plan('Why is this sql slow?', 30), large('code'));
    assert.equal(plan('Why is this sql slow?', 5).rule, 'short', 'keywords need promptTokensAtLeast too');
    assert.equal(plan('Is sqlite fast?', 30).rule, 'short', 'keywords match whole words');
    assert.equal(plan('hi', 3, { 'x-switchyard-tenant': 'other' }).rule, 'short');
  });

  it('match is a case-insensitive regex over the last user message only', () => {
    assert.deepEqual(plan('TRANSLATE this paragraph into French, please.', 200), {
      pools: ['edge-b'],
      rule: 'translate',
      localOnly: false,
      cascade: null,
    });
    const earlier = {
      model: 'auto',
      messages: [
        { role: 'user', content: 'translate this' },
        { role: 'assistant', content: 'Sure.' },
        { role: 'user', content: 'Now something else entirely.' },
      ],
    };
    assert.equal(tiers.get('auto')!.plan(new TierSignals(earlier, {}, 200)).rule, 'default');
  });

  it('x-switchyard-tier naming a pool or pool alias of the alias overrides the rules', () => {
    assert.deepEqual(plan('hi', 3, { 'x-switchyard-tier': 'large' }), large('header'));
    assert.deepEqual(plan('hi', 3, { 'x-switchyard-tier': 'cloud' }), large('header'));
    assert.equal(plan('hi', 3, { 'x-switchyard-tier': 'gpt-9' }).rule, 'short', 'an unknown pool is ignored');
  });

  it('plans are built once and shared', () => {
    assert.equal(plan('hi', 3), plan('hello', 4));
    assert.ok(Object.isFrozen(plan('hi', 3).pools));
  });

  it('completions read their prompt as the last user text', () => {
    const body = { model: 'auto', prompt: 'translate: bonjour' };
    assert.equal(tiers.get('auto')!.plan(new TierSignals(body, {}, 200)).rule, 'translate');
  });
});

describe('tier config checks', () => {
  const load = (tier: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    validateConfig({ pools, tiers: { auto: { default: 'large', ...tier } }, ...extra });
  const fails = (tier: Record<string, unknown>, message: RegExp) =>
    assert.throws(
      () => load(tier),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
    );

  it('loads a valid tier and defaults pools to non-local', () => {
    const cfg = load({});
    assert.equal(cfg.pools['cloud-b']!.local, false);
    assert.deepEqual(cfg.tiers.auto!.rules, []);
  });

  it('refuses an alias that is already a pool name or pool alias', () => {
    for (const name of ['cloud', 'small']) {
      assert.throws(
        () => validateConfig({ pools, tiers: { [name]: { default: 'edge' } } }),
        new RegExp(`tiers\\.${name}: "${name}" is already a model name of pool`),
      );
    }
  });

  it('names every unknown pool by its key path', () => {
    fails({ default: 'nope' }, /tiers\.auto\.default: unknown pool "nope"/);
    fails(
      { rules: [{ when: { pii: true }, pool: 'nope' }] },
      /tiers\.auto\.rules\[0\]\.pool: unknown pool "nope"/,
    );
    fails({ fallback: { nope: ['cloud'] } }, /tiers\.auto\.fallback\.nope: unknown pool "nope"/);
    fails(
      { fallback: { cloud: ['edge', 'nope'] } },
      /tiers\.auto\.fallback\.cloud\[1\]: unknown pool "nope"/,
    );
    fails({ cascade: { from: 'edge', to: 'nope' } }, /tiers\.auto\.cascade\.to: unknown pool "nope"/);
  });

  it('refuses a localOnly rule on a pool that is not local', () => {
    fails(
      { rules: [{ when: { pii: true }, pool: 'large', localOnly: true }] },
      /tiers\.auto\.rules\[0\]\.pool: a localOnly rule needs a pool with local: true; cloud is not/,
    );
  });

  it('refuses empty conditions, bad regexes, reserved or repeated rule names, and odd cascades', () => {
    fails(
      { rules: [{ when: {}, pool: 'edge' }] },
      /tiers\.auto\.rules\[0\]\.when: name at least one condition/,
    );
    fails(
      { rules: [{ when: { match: '(unclosed' }, pool: 'edge' }] },
      /tiers\.auto\.rules\[0\]\.when\.match: invalid regular expression/,
    );
    fails({ rules: [{ name: 'default', when: { pii: true }, pool: 'edge' }] }, /rules\[0\]\.name: "default"/);
    const twice = { name: 'x', when: { pii: true }, pool: 'edge' };
    fails({ rules: [twice, twice] }, /rules\[1\]\.name: "x" is reserved or already used/);
    fails(
      { cascade: { from: 'small', to: 'edge' } },
      /tiers\.auto\.cascade: from and to are the same pool edge/,
    );
    fails(
      { fallback: { small: ['cloud'], edge: ['cloud'] } },
      /fallback\.edge: pool edge already has a chain/,
    );
  });
});

describe('docs/tiers.md', () => {
  it('its example loads and decides as its table says', () => {
    const doc = readFileSync(new URL('../../../docs/tiers.md', import.meta.url), 'utf8');
    const yaml = doc.slice(doc.indexOf('```yaml') + 7, doc.indexOf('```', doc.indexOf('```yaml') + 7));
    const example = compileTiers(parseConfigText(yaml, { OPENAI_API_KEY: 'sk-test' })).get('auto')!;
    const decide = (content: string, tokens: number, headers: HeaderBag = {}) => {
      const p = example.plan(new TierSignals({ messages: [{ role: 'user', content }] }, headers, tokens));
      return [p.rule, p.pools.join(' → '), p.cascade?.pools.join(' → ') ?? null];
    };
    const small = 'qwen2.5-1.5b-instruct';
    const medium = 'qwen2.5-7b-instruct';
    const large = 'gpt-4o-mini';
    const hint = { 'x-switchyard-tier': 'large' };
    const local = ['private', `${small} → ${medium}`, medium];
    assert.deepEqual(decide('Mail jane@example.com the invoice', 9), local);
    assert.deepEqual(decide('Hi!', 1), ['short', `${small} → ${medium} → ${large}`, `${large} → ${medium}`]);
    assert.deepEqual(decide('A long document.', 5_000), ['default', `${large} → ${medium}`, null]);
    assert.deepEqual(decide('Hi!', 1, hint), ['header', `${large} → ${medium}`, null]);
    assert.deepEqual(decide('Mail jane@example.com', 6, hint), local);
  });
});
