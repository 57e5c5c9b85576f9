/**
 * Engine profile files: read with a strict schema, named by a config's `profileFiles` (relative to
 * the config), by `switchyard engine --profile-file`; a bad file is a config error naming the key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfigFile } from '../../src/config/load.js';
import { formatProfileYaml, parseProfileYaml } from '../../src/engine-model/profile-file.js';
import { getProfile } from '../../src/engine-model/profiles.js';
import type { EngineProfile } from '../../src/engine-model/types.js';
import { startGateway } from '../helpers/gateway.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const PROFILE: EngineProfile = {
  name: 'my-gpu-box',
  model: 'org/Some-Model',
  gpu: 'L40S',
  tp: 1,
  weightsMs: 9.5,
  gemmMsPer1kTokens: 41,
  prefillAttnMsPerMPairs: 1.7,
  decodeAttnMsPer1kCtx: 0.09,
  stepOverheadMs: 2.2,
  perRequestMs: 0.006,
  tpCommMs: 0,
  tpCommMsPer1kTokens: 0,
  requestOverheadMs: 3.5,
  maxNumSeqs: 512,
  maxNumBatchedTokens: 4096,
  blockSize: 16,
  numKvBlocks: 9000,
  maxModelLen: 16384,
  coldStartMs: 25000,
  costPerHourUsd: 1.1,
};

/** A directory with `profiles/NAME` files and a config naming them under `profileFiles`. */
function setup(files: Record<string, string>, pools: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'swy-profiles-'));
  mkdirSync(join(dir, 'profiles'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'profiles', name), text);
  const list = Object.keys(files).map((f) => `profiles/${f}`);
  writeFileSync(join(dir, 'config.yaml'), `profileFiles: ${JSON.stringify(list)}\npools:\n${pools}`);
  return join(dir, 'config.yaml');
}

const emulatedPool = (profile: string) =>
  `  m:\n    endpoints:\n      - { name: e0, kind: emulated, profile: ${profile} }\n      - { name: e1, kind: http, url: "http://127.0.0.1:9/v1", profile: ${profile} }\n`;

function configError(path: string): string {
  try {
    loadConfigFile(path);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('the config loaded');
}

describe('engine profile files', () => {
  it('round-trips through YAML, comments and all', () => {
    const text = formatProfileYaml(PROFILE, ['a header', ''], { weightsMs: 'W: fitted, 9.5 ± 0.4' });
    assert.match(text, /^# a header\n#\nname: "my-gpu-box"\n/);
    assert.match(text, /weightsMs: 9\.5 +# W: fitted, 9\.5 ± 0\.4\n/);
    assert.deepEqual(parseProfileYaml(text, 'x.yaml'), PROFILE);
  });

  it("a config's profileFiles (relative to it) name profiles its endpoints use", () => {
    const path = setup({ 'box.yaml': formatProfileYaml(PROFILE, []) }, emulatedPool('my-gpu-box'));
    const cfg = loadConfigFile(path);
    assert.equal(
      cfg.pools.m!.endpoints[0]!.kind === 'emulated' && cfg.pools.m!.endpoints[0]!.profile,
      'my-gpu-box',
    );
    assert.deepEqual(getProfile('my-gpu-box'), PROFILE);
  });

  it('a bad file is a config error naming profileFiles[i], the file and the key', () => {
    const bad = formatProfileYaml(PROFILE, []).replace('weightsMs: 9.5', 'weightsMs: fast');
    const unknown = `${formatProfileYaml(PROFILE, [])}colour: red\n`;
    const missing = formatProfileYaml(PROFILE, []).replace(/numKvBlocks: .*\n/, '');
    const message = configError(
      setup(
        { 'a.yaml': formatProfileYaml(PROFILE, []), 'b.yaml': bad, 'c.yaml': unknown, 'd.yaml': missing },
        emulatedPool('x'),
      ),
    );
    assert.match(
      message,
      /profileFiles\[1\]: .*b\.yaml: weightsMs: Invalid input: expected number, received string/,
    );
    assert.match(message, /profileFiles\[2\]: .*c\.yaml: .*colour/);
    assert.match(message, /profileFiles\[3\]: .*d\.yaml: numKvBlocks: /);
    assert.doesNotMatch(message, /profileFiles\[0\]/);
  });

  it('refuses a missing file, a shipped name, and one name in two files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swy-profiles-'));
    writeFileSync(join(dir, 'c.yaml'), 'profileFiles: [nowhere.yaml]\npools:\n' + emulatedPool('x'));
    assert.match(configError(join(dir, 'c.yaml')), /profileFiles\[0\]: cannot read .*nowhere\.yaml/);
    const shipped = formatProfileYaml({ ...PROFILE, name: 'llama3.1-8b-h100' }, []);
    assert.match(
      configError(setup({ 's.yaml': shipped }, emulatedPool('llama3.1-8b-h100'))),
      /profileFiles\[0\]: .*s\.yaml: name: 'llama3\.1-8b-h100' is a shipped profile/,
    );
    const text = formatProfileYaml(PROFILE, []);
    assert.match(
      configError(setup({ 'a.yaml': text, 'b.yaml': text }, emulatedPool('my-gpu-box'))),
      /profileFiles\[1\]: .*b\.yaml: name: 'my-gpu-box' is also the name in profileFiles\[0\]/,
    );
  });

  it('a config that fails leaves the profiles it loaded unregistered', () => {
    const other = formatProfileYaml({ ...PROFILE, name: 'only-in-a-bad-config' }, []);
    const message = configError(setup({ 'o.yaml': other }, emulatedPool('not-a-profile')));
    assert.match(message, /pools\.m\.endpoints\[0\]\.profile: unknown engine profile 'not-a-profile'/);
    assert.throws(() => getProfile('only-in-a-bad-config'), /unknown engine profile/);
  });

  it('switchyard engine --profile-file makes the profile known to --profile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swy-profiles-'));
    writeFileSync(join(dir, 'box.yaml'), formatProfileYaml(PROFILE, []));
    const listed = spawnSync(
      process.execPath,
      [MAIN, 'engine', '--profile-file', join(dir, 'box.yaml'), '--list-profiles'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^my-gpu-box\torg\/Some-Model\tL40S$/m);
    writeFileSync(join(dir, 'bad.yaml'), 'name: x\n');
    const bad = spawnSync(
      process.execPath,
      [MAIN, 'engine', '--profile-file', join(dir, 'bad.yaml'), '--list-profiles'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--profile-file\[0\]: .*bad\.yaml: model: /);
  });

  it("a process actuator's engines are given the file, so they know its profile", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swy-profiles-'));
    writeFileSync(join(dir, 'box.yaml'), formatProfileYaml(PROFILE, []));
    const t = await startGateway({
      profileFiles: [join(dir, 'box.yaml')],
      pools: {
        boxed: {
          endpoints: [],
          scaling: {
            policy: 'kpa',
            minReplicas: 0,
            maxReplicas: 1,
            catalog: [{ name: 'box', profile: 'my-gpu-box', onDemandUsdPerHour: 1 }],
            coldStartMs: 100,
            actuator: { kind: 'process' },
          },
        },
      },
    });
    try {
      // Scaled from zero: the request waits for an engine process started with --profile-file.
      const r = await t.client.completions.create({ model: 'boxed', prompt: 'hello', max_tokens: 3 });
      assert.equal(r.usage?.completion_tokens, 3);
    } finally {
      await t.close();
    }
  });
});
