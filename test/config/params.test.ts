/**
 * Plugin parameters, policy options and queue-order keys are strict: every registered routing
 * plugin and scaling policy has a schema whose defaults parse, and a misspelt key or a bad value in
 * the config is a config error naming the full key path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DYNAMO_LOAD_DEFAULTS } from '../../src/autoscaler/policies/dynamo-load.js';
import { FORECAST_DEFAULTS } from '../../src/autoscaler/policies/forecast.js';
import { HPA_DEFAULTS } from '../../src/autoscaler/policies/hpa.js';
import {
  LIVE_POLICIES,
  POLICY_OPTIONS,
  SCALING_POLICY_NAMES,
  type ScalingPolicyName,
  createPolicy,
} from '../../src/autoscaler/policies/index.js';
import { KPA_DEFAULTS } from '../../src/autoscaler/policies/kpa.js';
import { ORACLE_DEFAULTS } from '../../src/autoscaler/policies/oracle.js';
import { RAY_SERVE_DEFAULTS } from '../../src/autoscaler/policies/ray-serve.js';
import { SKYSERVE_DEFAULTS } from '../../src/autoscaler/policies/skyserve.js';
import { SLO_DEFAULTS } from '../../src/autoscaler/policies/slo.js';
import { STATIC_DEFAULTS } from '../../src/autoscaler/policies/static.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { builtinRoutingRegistry } from '../../src/plugins/routing/register.js';
import { ROUTING_PRESETS } from '../../src/router/presets.js';
import { Router } from '../../src/router/router.js';
import { PLAIN_ENDPOINT } from '../../src/framework/endpoint.js';

const registry = builtinRoutingRegistry();
const kinds = [
  ['filter', registry.filters],
  ['scorer', registry.scorers],
  ['picker', registry.pickers],
] as const;

const pool = `
pools:
  m:
    endpoints:
      - { name: e0, kind: http, url: "http://127.0.0.1:8000/v1" }
`;

/** The config error of `text`, which must be rejected. */
function configError(text: string): string {
  try {
    parseConfigText(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, not ${String(e)}`);
    return e.message;
  }
  assert.fail('the config was accepted');
}

/** Asserts the config is rejected with a line naming `path` (and, if given, matching `why`). */
function rejects(text: string, path: string, why?: RegExp): void {
  const message = configError(text);
  const line = message.split('\n').find((l) => l.includes(path));
  assert.ok(line !== undefined, `no line names ${path}:\n${message}`);
  if (why !== undefined) assert.match(line, why);
}

describe('routing plugin params', () => {
  for (const [kind, factories] of kinds) {
    for (const [type, factory] of factories) {
      it(`${kind} ${type}: declares a strict schema whose defaults parse`, () => {
        const defaults = factory.params.parse({});
        // The defaults are themselves valid params (the schema is the one source of defaults).
        assert.deepEqual(factory.params.parse(defaults), defaults);
        assert.equal(factory.params.safeParse({ ...defaults, notAParam: 1 }).success, false);
        assert.equal(factory(type, {}).type, type);
        assert.throws(
          () => factory(type, { notAParam: 1 }),
          new RegExp(`^Error: ${type}: unknown key notAParam`),
        );
      });
    }
  }

  it('every preset names registered plugins with valid params', () => {
    for (const [name, spec] of Object.entries(ROUTING_PRESETS)) {
      for (const f of spec.filters) assert.ok(registry.filters.get(f.type)?.params.parse(f.params), name);
      for (const s of spec.scorers) assert.ok(registry.scorers.get(s.type)?.params.parse(s.params), name);
      assert.ok(registry.pickers.get(spec.picker.type)?.params.parse(spec.picker.params), name);
    }
  });

  it('the Router refuses bad params naming the plugin and key, not with an assertion', () => {
    const spec = {
      filters: [],
      scorers: [],
      picker: { type: 'chwbl-picker', params: { vnodes: 0 } },
    };
    assert.throws(
      () => new Router(spec, registry, [PLAIN_ENDPOINT]),
      (e: Error) =>
        e.name === 'Error' && /chwbl-picker: vnodes must be a number in \[1, 10000\]/.test(e.message),
    );
  });

  it('a misspelt key in a filter, scorer or picker is a config error naming its path', () => {
    const at = 'router.profiles.mine';
    const profile = (p: string) => `router: { profiles: { mine: ${p} } }\n${pool}`;
    rejects(
      profile(`{ scorers: [{ type: least-work-scorer, params: { wieght: 2 } }], picker: max-score-picker }`),
      `${at}.scorers[0].params.wieght`,
    );
    rejects(
      profile(`{ filters: [{ type: label-filter, params: { label: { tier: a } } }], picker: random-picker }`),
      `${at}.filters[0].params.label`,
    );
    rejects(
      profile(`{ picker: { type: chwbl-picker, params: { loadFactr: 2 } } }`),
      `${at}.picker.params.loadFactr`,
    );
    rejects(
      `${pool}    routing: { picker: { type: session-affinity-picker, params: { maxSession: 5 } } }\n`,
      'pools.m.routing.picker.params.maxSession',
    );
  });

  it('a bad value is a config error naming its path', () => {
    const at = 'router.profiles.mine';
    const profile = (p: string) => `router: { profiles: { mine: ${p} } }\n${pool}`;
    rejects(
      profile(
        `{ scorers: [{ type: predicted-ttft-scorer, params: { nearMs: -1 } }], picker: max-score-picker }`,
      ),
      `${at}.scorers[0].params.nearMs`,
      /must be a number at least 0/,
    );
    rejects(
      profile(
        `{ scorers: [{ type: predicted-ttft-scorer, params: { correction: yes } }], picker: max-score-picker }`,
      ),
      `${at}.scorers[0].params.correction`,
      /must be true or false/,
    );
    rejects(
      profile(
        `{ filters: [{ type: label-filter, params: { labels: { tier: [] } } }], picker: random-picker }`,
      ),
      `${at}.filters[0].params.labels.tier`,
    );
    rejects(
      profile(`{ picker: { type: p2c-picker, params: { load: tokens } } }`),
      `${at}.picker.params.load`,
      /must be one of requests, work/,
    );
    rejects(
      `router: { profile: { picker: { type: dualmap-picker, params: { vnodes: 2.5 } } } }\n${pool}`,
      'router.profile.picker.params.vnodes',
      /integer/,
    );
  });

  it('an unknown plugin type is a config error naming the known ones', () => {
    rejects(
      `router: { profiles: { mine: { filters: [healthy-filtre], picker: random-picker } } }\n${pool}`,
      'router.profiles.mine.filters[0]',
      /unknown filter type "healthy-filtre" \(known: healthy-filter, capacity-filter/,
    );
  });
});

/** Each policy's published defaults, which must satisfy its own schema. */
const POLICY_DEFAULTS: Record<ScalingPolicyName, object> = {
  kpa: KPA_DEFAULTS,
  hpa: HPA_DEFAULTS,
  forecast: FORECAST_DEFAULTS,
  slo: SLO_DEFAULTS,
  static: { ...STATIC_DEFAULTS, replicas: 1 },
  'ray-serve': RAY_SERVE_DEFAULTS,
  skyserve: SKYSERVE_DEFAULTS,
  'dynamo-load': DYNAMO_LOAD_DEFAULTS,
  oracle: ORACLE_DEFAULTS,
};

const scaled = (policy: string, options: string) => `
pools:
  x:
    scaling:
      policy: ${policy}
      options: ${options}
      catalog: [{ name: t, profile: qwen2.5-1.5b-h100, onDemandUsdPerHour: 1 }]
      actuator: { kind: process }
`;

describe('scaling policy options', () => {
  for (const name of SCALING_POLICY_NAMES) {
    it(`${name}: declares a strict schema its defaults satisfy`, () => {
      const schema = POLICY_OPTIONS[name];
      assert.ok(schema.safeParse(POLICY_DEFAULTS[name]).success);
      assert.ok(schema.safeParse(name === 'static' ? { replicas: 1 } : {}).success);
      assert.equal(createPolicy(name, {}, { replicas: 1, arrivals: () => 0 }).name, name);
      assert.throws(
        () => createPolicy(name, { notAnOption: 1 }, { replicas: 1, arrivals: () => 0 }),
        new RegExp(`^Error: ${name}: options: .*options\\.notAnOption`),
      );
    });
  }

  it('createPolicy refuses a bad value naming the option, not with an assertion', () => {
    assert.throws(
      () => createPolicy('kpa', { targetConcurrency: 0 }),
      (e: Error) => e.name === 'Error' && /^kpa: options\.targetConcurrency: /.test(e.message),
    );
  });

  it('a misspelt option is a config error naming its path, for every live policy', () => {
    for (const name of LIVE_POLICIES) {
      const options = name === 'static' ? '{ replicas: 1, targt: 3 }' : '{ targt: 3 }';
      rejects(scaled(name, options), 'pools.x.scaling.options.targt');
    }
  });

  it('a bad value is a config error naming its path', () => {
    rejects(scaled('kpa', '{ targetConcurrency: -1 }'), 'pools.x.scaling.options.targetConcurrency');
    rejects(
      scaled('kpa', '{ stableWindowMs: 6500 }'),
      'pools.x.scaling.options.stableWindowMs',
      /whole seconds/,
    );
    rejects(
      scaled('hpa', '{ scaleUp: { stabilizationWindowMs: 0, selectPolicy: Max } }'),
      'options.scaleUp.policies',
    );
    rejects(
      scaled(
        'hpa',
        '{ scaleDown: { stabilizationWindowMs: 0, selectPolicy: Max, policies: [{ type: Pods, value: 0, periodMs: 1 }] } }',
      ),
      'pools.x.scaling.options.scaleDown.policies[0].value',
    );
    rejects(scaled('slo', '{ upMargin: 0.6, downThreshold: 0.5 }'), 'options.downThreshold', /1 − upMargin/);
    rejects(scaled('ray-serve', '{ upscaleDelayMs: -1 }'), 'pools.x.scaling.options.upscaleDelayMs');
    rejects(scaled('static', '{}'), 'pools.x.scaling.options.replicas', /needs a replica count/);
    rejects(scaled('static', '{ replicas: 1.5 }'), 'pools.x.scaling.options.replicas');
  });
});

describe('queue order keys', () => {
  it('a misspelt order key is a config error naming its path', () => {
    rejects(`scheduling: { queue: priority, agingMS: 1000 }\n${pool}`, 'scheduling.agingMS');
    rejects(`${pool}    scheduling: { queue: edf, ttftDeadline: 5 }\n`, 'pools.m.scheduling.ttftDeadline');
  });

  it('a bad order value is a config error naming its path', () => {
    rejects(`scheduling: { queue: priority, agingMs: -1 }\n${pool}`, 'scheduling.agingMs');
    rejects(`scheduling: { queue: vtc, tenantWeights: { a: 0 } }\n${pool}`, 'scheduling.tenantWeights.a');
    rejects(`${pool}    scheduling: { queue: edf, dropLate: sometimes }\n`, 'pools.m.scheduling.dropLate');
  });
});
