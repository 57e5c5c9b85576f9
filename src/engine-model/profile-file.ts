/**
 * @module engine-model/profile-file
 * Engine profiles as YAML files (what `switchyard calibrate` writes), read with a strict schema:
 * every step-time constant and limit is required, unknown keys are errors, and messages name the
 * key. Loaded profiles are registered beside the shipped ones (profile-registry.ts), so a config,
 * `switchyard sim` and `switchyard engine` can name them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues } from '../core/path.js';
import {
  type LoadedProfile,
  type ProfileOwner,
  loadedProfileNames,
  replaceLoadedProfiles,
} from './profile-registry.js';
import { ENGINE_PROFILES } from './profiles.js';
import type { EngineProfile } from './types.js';

const ms = z.number().nonnegative();
const count = z.number().int().positive();

/** One profile file: the fields of {@link EngineProfile}; TP and per-request extras default as at TP1. */
export const profileFileSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-"'),
  model: z.string().min(1),
  gpu: z.string().min(1),
  tp: count.default(1),
  weightsMs: ms,
  gemmMsPer1kTokens: ms,
  prefillAttnMsPerMPairs: ms,
  decodeAttnMsPer1kCtx: ms,
  stepOverheadMs: ms,
  perRequestMs: ms,
  tpCommMs: ms.default(0),
  tpCommMsPer1kTokens: ms.default(0),
  requestOverheadMs: ms.default(0),
  maxNumSeqs: count,
  maxNumBatchedTokens: count,
  blockSize: count.default(16),
  numKvBlocks: count,
  maxModelLen: count,
  coldStartMs: ms,
  costPerHourUsd: z.number().nonnegative(),
}) satisfies z.ZodType<EngineProfile, unknown>;

/** A profile file that cannot be read or does not validate; the message names each bad key. */
export class ProfileFileError extends Error {
  override name = 'ProfileFileError';
}

/** Parses and validates one profile file's text (`source` only appears in messages). */
export function parseProfileYaml(text: string, source: string): EngineProfile {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ProfileFileError(`${source}: invalid YAML: ${(err as Error).message}`);
  }
  const result = profileFileSchema.safeParse(raw ?? {});
  if (!result.success)
    throw new ProfileFileError(`${source}: ${describeIssues(result.error.issues).join('; ')}`);
  if (result.data.name in ENGINE_PROFILES)
    throw new ProfileFileError(
      `${source}: name: '${result.data.name}' is a shipped profile; choose another name`,
    );
  return result.data;
}

/** Reads and validates a profile file; `source` is its absolute path. */
export function readProfileFile(path: string): LoadedProfile {
  const source = resolve(path);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new ProfileFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return { profile: parseProfileYaml(text, path), source };
}

/**
 * Reads `paths` (relative to `baseDir`) and makes their profiles `owner`'s loaded set; returns the
 * undo. Errors name the offending entry as `label[i]`.
 */
export function registerProfileFiles(
  paths: readonly string[],
  owner: ProfileOwner,
  label: string,
  baseDir = process.cwd(),
): () => void {
  const problems: string[] = [];
  const loaded: LoadedProfile[] = [];
  const names = new Map<string, number>();
  paths.forEach((p, i) => {
    try {
      const lp = readProfileFile(resolve(baseDir, p));
      const first = names.get(lp.profile.name);
      if (first !== undefined)
        throw new ProfileFileError(`${p}: name: '${lp.profile.name}' is also the name in ${label}[${first}]`);
      names.set(lp.profile.name, i);
      loaded.push(lp);
    } catch (err) {
      problems.push(`${label}[${i}]: ${(err as Error).message}`);
    }
  });
  if (problems.length > 0) throw new ProfileFileError(problems.join('\n'));
  try {
    return replaceLoadedProfiles(owner, loaded);
  } catch (err) {
    throw new ProfileFileError(`${label}: ${(err as Error).message}`);
  }
}

/** Every profile name a config or command may use: shipped ones, then loaded ones. */
export function knownProfileNames(): string[] {
  return [...Object.keys(ENGINE_PROFILES), ...loadedProfileNames()];
}

/** Keys in the order a profile file lists them. */
const KEYS = Object.keys(profileFileSchema.shape) as (keyof EngineProfile)[];

/**
 * A profile as YAML: a header comment, then one `key: value` per field with an optional comment
 * per key. Numbers keep 6 significant digits; strings are quoted.
 */
export function formatProfileYaml(
  p: EngineProfile,
  header: readonly string[],
  notes: Partial<Record<keyof EngineProfile, string>> = {},
): string {
  const lines = header.map((h) => (h === '' ? '#' : `# ${h}`));
  const body = KEYS.map((k) => {
    const v = p[k] ?? 0;
    return `${k}: ${typeof v === 'string' ? JSON.stringify(v) : String(Number(v.toPrecision(6)))}`;
  });
  const width = Math.max(...body.map((l) => l.length)) + 2;
  KEYS.forEach((k, i) => {
    const note = notes[k];
    lines.push(note === undefined ? body[i]! : `${body[i]!.padEnd(width)}# ${note}`);
  });
  return `${lines.join('\n')}\n`;
}
