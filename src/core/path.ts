/**
 * @module core/path
 * Formats a validation path the way users write it: `pools.large.endpoints[0].url`.
 */

/** Joins keys with dots and array indexes with brackets; empty path → ''. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** The shape of a validation issue this needs (zod's). */
interface Issue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly keys?: readonly string[];
}

/**
 * One line per issue, `path: message`, each path below `base`; an unknown key is named by its own
 * full path, so the line says exactly which key to fix.
 */
export function describeIssues(issues: readonly Issue[], base: readonly PropertyKey[] = []): string[] {
  return issues.map((i) => {
    const at = formatPath([...base, ...i.path]) || '(root)';
    if (i.code !== 'unrecognized_keys' || i.keys === undefined) return `${at}: ${i.message}`;
    return `${at}: ${i.message} (${i.keys.map((k) => formatPath([...base, ...i.path, k])).join(', ')})`;
  });
}
