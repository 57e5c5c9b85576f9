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
