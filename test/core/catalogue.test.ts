/** The error catalogue and the architecture's dependency rules are enforced here. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE } from '../../src/core/errors.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('error catalogue', () => {
  it('docs/errors.md lists every code with its status', () => {
    const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      assert.match(
        doc,
        new RegExp(`\\| \`${code}\` \\| ${spec.status} \\| ${spec.type} \\|`),
        `${code} missing from docs/errors.md`,
      );
    }
  });
});

/** Folder → folders of src/ it may import from (dependencies point inward). */
const ALLOWED: Record<string, string[]> = {
  core: [],
  framework: ['core', 'engine-model'],
  'engine-model': ['core'],
  plugins: ['core', 'framework', 'engine-model'],
  router: ['core', 'framework', 'plugins', 'engine-model'],
  datalayer: ['core', 'framework', 'engine-model'],
  adapters: ['core', 'framework', 'datalayer'],
  config: ['core', 'engine-model', 'autoscaler', 'plugins'],
  obs: ['core'],
  emulator: ['core', 'engine-model'],
  traces: ['core', 'scheduler'],
  scheduler: ['core'],
  autoscaler: ['core', 'engine-model'],
  calibrate: ['core', 'engine-model'],
  tiers: ['core', 'config'],
  pool: [
    'core',
    'framework',
    'datalayer',
    'engine-model',
    'plugins',
    'router',
    'scheduler',
    'autoscaler',
    'config',
  ],
  sim: [
    'core',
    'pool',
    'config',
    'framework',
    'datalayer',
    'engine-model',
    'plugins',
    'router',
    'traces',
    'scheduler',
    'autoscaler',
  ],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('architecture', () => {
  it('inner layers never import outer ones', () => {
    const src = join(root, 'src');
    const problems: string[] = [];
    for (const file of files(src)) {
      const layer = relative(src, file).split('/')[0]!;
      const allowed = ALLOWED[layer];
      if (allowed === undefined) continue; // gateway, cli: the edges may import anything
      for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const target = relative(src, join(file, '..', m[1]!)).split('/')[0]!;
        if (target !== layer && !allowed.includes(target))
          problems.push(`${relative(root, file)} imports ${target}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('decision code reads time and randomness only through Clock and Rng', () => {
    const banned = /\b(Date\.now|performance\.now|Math\.random|setTimeout|setInterval)\b/;
    const problems: string[] = [];
    for (const layer of [
      'framework',
      'plugins',
      'router',
      'engine-model',
      'datalayer',
      'sim',
      'pool',
      'tiers',
      'scheduler',
      'autoscaler',
    ]) {
      for (const file of files(join(root, 'src', layer))) {
        if (banned.test(readFileSync(file, 'utf8'))) problems.push(relative(root, file));
      }
    }
    assert.deepEqual(problems, []);
  });
});
