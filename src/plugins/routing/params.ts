/**
 * @module plugins/routing/params
 * Plugin parameters as strict schemas: each plugin declares one with its defaults, the registry
 * carries it with the factory (so the config is checked without instantiating anything), and the
 * factory parses with it, throwing a message that names the plugin, the key and what is valid.
 */
import { z } from 'zod';
import type { PluginFactory, RoutingPlugin } from '../../framework/routing.js';
import { formatPath } from '../../core/path.js';

/** A finite number within [min, max]. */
export function numberIn(min: number, max = Number.POSITIVE_INFINITY): z.ZodNumber {
  const error = `must be a number ${max === Number.POSITIVE_INFINITY ? `at least ${min}` : `in [${min}, ${max}]`}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
}

/** An integer within [min, max]. */
export function integerIn(min: number, max = Number.POSITIVE_INFINITY): z.ZodNumber {
  return numberIn(min, max).int({ error: 'must be an integer' });
}

/** One of `allowed`. */
export function oneOf<const T extends readonly [string, ...string[]]>(allowed: T) {
  return z.enum(allowed, { error: `must be one of ${allowed.join(', ')}` });
}

/** Schema of a plugin without parameters: only `{}`. */
export const NO_PARAMS = z.strictObject({});

/**
 * The factory the registry holds: parses `params` with `schema` (defaults filled in), then builds.
 * A bad key or value throws `<type>: <key> must be …`.
 */
export function pluginFactory<S extends z.ZodType<object>, P extends RoutingPlugin>(
  type: string,
  schema: S,
  build: (name: string, params: z.output<S>) => P,
): PluginFactory<P> {
  const factory = (name: string, params: Readonly<Record<string, unknown>>): P => {
    const parsed = schema.safeParse(params);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => {
        const at = formatPath(i.path);
        if (i.code === 'unrecognized_keys')
          return `unknown key ${i.keys.map((k) => formatPath([...i.path, k])).join(', ')}`;
        return at === '' ? i.message : `${at} ${i.message}`;
      });
      throw new Error(`${type}: ${problems.join('; ')}`);
    }
    return build(name, parsed.data);
  };
  return Object.assign(factory, { params: schema });
}
