/**
 * @module config/load
 * Parse → substitute `${ENV}` → validate (messages name the key path) → cross-check → deep-freeze.
 * A config that fails any phase is rejected whole; a reload keeps the previous version.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { describeIssues } from '../core/path.js';
import { registerProfileFiles } from '../engine-model/profile-file.js';
import { type SchedulingConfig, type SwitchyardConfig, configSchema, mergeClassBounds } from './schema.js';

/** A configuration that failed to load; `message` lists every problem with its key path. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Loads and validates a YAML config file. */
export function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<SwitchyardConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  return parseConfigText(text, env, path, dirname(path));
}

/**
 * Parses and validates YAML text (the source name only appears in messages); `profileFiles` are
 * relative to `baseDir`.
 */
export function parseConfigText(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
  source = 'config',
  baseDir = process.cwd(),
): Readonly<SwitchyardConfig> {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: invalid YAML: ${(err as Error).message}`);
  }
  return validateConfig(substituteEnv(raw ?? {}, env, ''), source, baseDir);
}

/**
 * Validates an already-parsed object. Its `profileFiles` are loaded and registered first, so that
 * endpoints can name their profiles; a config that then fails puts the previous ones back.
 */
export function validateConfig(
  raw: unknown,
  source = 'config',
  baseDir = process.cwd(),
): Readonly<SwitchyardConfig> {
  const restore = registerConfigProfiles(raw, source, baseDir);
  try {
    const result = configSchema.safeParse(raw);
    if (!result.success) throw new ConfigError(`${source} is invalid:\n${formatIssues(result.error.issues)}`);
    crossCheck(result.data, source);
    return deepFreeze(result.data);
  } catch (err) {
    restore();
    throw err;
  }
}

/** Loads the config's `profileFiles` (a malformed list is left for the schema to report). */
function registerConfigProfiles(raw: unknown, source: string, baseDir: string): () => void {
  const files = (raw as { profileFiles?: unknown } | null)?.profileFiles;
  const list = Array.isArray(files) && files.every((f) => typeof f === 'string') ? (files as string[]) : [];
  try {
    return registerProfileFiles(list, 'config', 'profileFiles', baseDir);
  } catch (err) {
    const lines = (err as Error).message.split('\n').map((l) => `  - ${l}`);
    throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
  }
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return describeIssues(issues)
    .map((line) => `  - ${line}`)
    .join('\n');
}

/** Rules a schema cannot express: unique endpoint names, model names and aliases. */
function crossCheck(cfg: SwitchyardConfig, source: string): void {
  const problems: string[] = [];
  const endpointNames = new Set<string>();
  const modelNames = new Map<string, string>();
  for (const [pool, def] of Object.entries(cfg.pools)) {
    for (const name of [pool, ...def.aliases]) {
      const owner = modelNames.get(name);
      if (owner !== undefined)
        problems.push(`pools.${pool}: model name "${name}" is already used by pool ${owner}`);
      modelNames.set(name, pool);
    }
    def.endpoints.forEach((ep, i) => {
      const at = `pools.${pool}.endpoints[${i}]`;
      if (endpointNames.has(ep.name)) problems.push(`${at}.name: duplicate endpoint name "${ep.name}"`);
      endpointNames.add(ep.name);
      const engine = ep.kind === 'http' ? ep.engine : 'vllm';
      if (!METRIC_ENGINES.has(engine)) {
        for (const key of ['maxEngineWaiting', 'maxKvUsage'] as const) {
          if (ep[key] !== undefined)
            problems.push(`${at}.${key}: needs engine metrics, which engine ${engine} does not export`);
        }
      }
    });
  }
  crossCheckTiers(cfg, modelNames, problems);
  if (problems.length > 0)
    throw new ConfigError(`${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

/** Engines whose /metrics the collector reads (adapters' METRICS_MAPPINGS; a test keeps them in step). */
export const METRIC_ENGINES: ReadonlySet<string> = new Set(['vllm', 'sglang']);

/**
 * The scheduling of pool `name`: its own keys over the top-level `scheduling`, key by key (and
 * `perClass` class by class, key by key).
 */
export function schedulingFor(cfg: Readonly<SwitchyardConfig>, name: string): SchedulingConfig {
  const own = cfg.pools[name]?.scheduling;
  if (own === undefined) return cfg.scheduling;
  const out: Record<string, unknown> = { ...cfg.scheduling };
  for (const [k, v] of Object.entries(own)) if (v !== undefined) out[k] = v;
  out.perClass = mergeClassBounds(cfg.scheduling.perClass, own.perClass ?? {});
  return out as SchedulingConfig;
}

/** Rule names a tier alias reports for itself (`x-switchyard-tier-rule`), so no rule may take them. */
const RESERVED_RULE_NAMES = new Set(['default', 'header']);

/**
 * Tier aliases: a name of their own, every pool they name known (by pool name or alias), localOnly
 * rules on local pools, unique rule names, a cascade between two different pools.
 */
function crossCheckTiers(
  cfg: SwitchyardConfig,
  modelNames: ReadonlyMap<string, string>,
  problems: string[],
): void {
  const known = [...modelNames.keys()].join(', ');
  for (const [alias, tier] of Object.entries(cfg.tiers)) {
    const at = `tiers.${alias}`;
    const owner = modelNames.get(alias);
    if (owner !== undefined) problems.push(`${at}: "${alias}" is already a model name of pool ${owner}`);
    /** The pool `name` resolves to, or undefined after reporting it. */
    const pool = (path: string, name: string): string | undefined => {
      const p = modelNames.get(name);
      if (p === undefined)
        problems.push(`${at}.${path}: unknown pool "${name}" (pools and aliases: ${known})`);
      return p;
    };
    const ruleNames = new Set<string>();
    tier.rules.forEach((r, i) => {
      const p = pool(`rules[${i}].pool`, r.pool);
      if (r.localOnly && p !== undefined && cfg.pools[p]?.local !== true)
        problems.push(`${at}.rules[${i}].pool: a localOnly rule needs a pool with local: true; ${p} is not`);
      if (r.name === undefined) return;
      if (RESERVED_RULE_NAMES.has(r.name) || ruleNames.has(r.name))
        problems.push(`${at}.rules[${i}].name: "${r.name}" is reserved or already used`);
      ruleNames.add(r.name);
    });
    pool('default', tier.default);
    const fallbackOf = new Map<string, string>();
    for (const [from, to] of Object.entries(tier.fallback)) {
      const p = pool(`fallback.${from}`, from);
      const twice = p === undefined ? undefined : fallbackOf.get(p);
      if (twice !== undefined)
        problems.push(`${at}.fallback.${from}: pool ${p} already has a chain (as ${twice})`);
      if (p !== undefined) fallbackOf.set(p, from);
      to.forEach((name, j) => {
        pool(`fallback.${from}[${j}]`, name);
      });
    }
    if (tier.cascade !== undefined) {
      const from = pool('cascade.from', tier.cascade.from);
      const to = pool('cascade.to', tier.cascade.to);
      if (from !== undefined && from === to)
        problems.push(`${at}.cascade: from and to are the same pool ${from}`);
    }
  }
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${NAME}` and `${NAME:-default}` in every string value; a missing variable is an error. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${path || '(root)'}: environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

function deepFreeze<T>(obj: T): Readonly<T> {
  if (obj !== null && typeof obj === 'object' && !Object.isFrozen(obj)) {
    Object.freeze(obj);
    for (const v of Object.values(obj)) deepFreeze(v);
  }
  return obj;
}
