/**
 * @module engine-model/profile-registry
 * Engine profiles loaded at run time (profile files named by a config or on the command line),
 * beside the shipped ones. Grouped by who loaded them, so a config reload replaces the config's
 * profiles without touching the command line's.
 */
import type { EngineProfile } from './types.js';

/** A loaded profile and the file it came from (a spawned engine is pointed at the same file). */
export interface LoadedProfile {
  readonly profile: EngineProfile;
  readonly source: string;
}

/** Who loaded a group of profiles: the config file, or the command line. */
export type ProfileOwner = 'config' | 'cli';

const groups = new Map<ProfileOwner, ReadonlyMap<string, LoadedProfile>>();

/** The loaded profile called `name`, if any. */
export function loadedProfile(name: string): LoadedProfile | undefined {
  for (const g of groups.values()) {
    const p = g.get(name);
    if (p !== undefined) return p;
  }
  return undefined;
}

/** Names of every loaded profile. */
export function loadedProfileNames(): string[] {
  return [...groups.values()].flatMap((g) => [...g.keys()]);
}

/**
 * Replaces `owner`'s profiles with `list` and returns a function that puts the previous ones back
 * (a config that fails validation after its profiles were registered must leave no trace).
 * Throws when a name is taken by another owner's profile.
 */
export function replaceLoadedProfiles(owner: ProfileOwner, list: readonly LoadedProfile[]): () => void {
  for (const { profile, source } of list) {
    for (const [other, g] of groups) {
      const taken = g.get(profile.name);
      if (other !== owner && taken !== undefined)
        throw new Error(`profile '${profile.name}' (${source}) is already loaded from ${taken.source}`);
    }
  }
  const previous = groups.get(owner);
  groups.set(owner, new Map(list.map((p) => [p.profile.name, p])));
  return () => {
    if (previous === undefined) groups.delete(owner);
    else groups.set(owner, previous);
  };
}
