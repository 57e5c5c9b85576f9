import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfigFile, parseConfigText } from '../../src/config/load.js';

const minimal = `
pools:
  m:
    endpoints:
      - { name: e0, kind: http, url: "http://127.0.0.1:8000/v1" }
`;

describe('config', () => {
  it('fills defaults from the schema and freezes the result', () => {
    const cfg = parseConfigText(minimal);
    assert.equal(cfg.server.port, 8080);
    assert.equal(cfg.router.profile, 'default');
    const ep = cfg.pools.m!.endpoints[0]!;
    assert.equal(ep.maxConcurrency, 256);
    assert.equal(ep.kind === 'http' && ep.engine, 'openai');
    assert.ok(Object.isFrozen(cfg.pools.m!.endpoints[0]));
  });

  it('rejects unknown keys, naming the path', () => {
    assert.throws(
      () => parseConfigText(minimal.replace('kind: http,', 'kind: http, colour: red,')),
      (e: unknown) => e instanceof ConfigError && /pools\.m\.endpoints\[0\]: .*colour/.test(e.message),
    );
    assert.throws(() => parseConfigText(`servr: {}\n${minimal}`), /\(root\): .*servr/);
  });

  it('names the key of a bad value', () => {
    assert.throws(
      () => parseConfigText(minimal.replace('"http://127.0.0.1:8000/v1"', '"not a url"')),
      /pools\.m\.endpoints\[0\]\.url/,
    );
    assert.throws(() => parseConfigText(`server: { port: -1 }\n${minimal}`), /server\.port/);
    assert.throws(
      () => parseConfigText('pools:\n  m:\n    endpoints: [{ name: e, kind: emulated, profile: gpt-9-tpu }]'),
      /pools\.m\.endpoints\[0\]\.profile: unknown engine profile 'gpt-9-tpu'; known: llama3\.1-8b-h100/,
    );
    assert.throws(() => parseConfigText('pools: {}'), /pools: at least one pool/);
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the config syntax under test
  it('substitutes ${ENV} and ${ENV:-default}, and refuses a missing variable', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config syntax under test
    const text = minimal.replace('}', ', apiKey: "${UPSTREAM_KEY}", model: "${MODEL:-fallback}" }');
    const cfg = parseConfigText(text, { UPSTREAM_KEY: 'sk-1' });
    const ep = cfg.pools.m!.endpoints[0]!;
    assert.equal(ep.kind === 'http' && ep.apiKey, 'sk-1');
    assert.equal(ep.model, 'fallback');
    assert.throws(
      () => parseConfigText(text, {}),
      /pools\.m\.endpoints\[0\]\.apiKey: environment variable UPSTREAM_KEY is not set/,
    );
  });

  it('refuses duplicate endpoint names and model names claimed twice', () => {
    const dup = `
pools:
  a:
    aliases: [b]
    endpoints: [{ name: e, kind: http, url: "http://h/v1" }]
  b:
    endpoints: [{ name: e, kind: http, url: "http://h/v1" }]
`;
    assert.throws(
      () => parseConfigText(dup),
      (e: unknown) => {
        const m = (e as Error).message;
        return /model name "b" is already used by pool a/.test(m) && /duplicate endpoint name "e"/.test(m);
      },
    );
  });

  it('loads the shipped demo config', () => {
    const demo = loadConfigFile(fileURLToPath(new URL('../../../config/demo.yaml', import.meta.url)));
    assert.deepEqual(Object.keys(demo.pools), ['qwen2.5-1.5b-instruct', 'llama-3.1-8b-instruct']);
  });
});
