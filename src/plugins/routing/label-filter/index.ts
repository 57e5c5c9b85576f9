/**
 * @module plugins/routing/label-filter
 * Keeps endpoints whose configured labels match a selector (tier, locality, zone, …).
 */
import { z } from 'zod';
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Filter } from '../../../framework/routing.js';
import { pluginFactory } from '../params.js';

export const LABEL_FILTER = 'label-filter';

/**
 * Every selector key must be present on the endpoint with one of its allowed values. The selector
 * is compiled once into parallel arrays; an empty selector keeps every endpoint, as an empty
 * Kubernetes label selector matches everything.
 */
export class LabelFilter implements Filter {
  readonly type = LABEL_FILTER;
  private readonly keys: readonly string[];
  private readonly allowed: readonly ReadonlySet<string>[];

  constructor(
    readonly name: string,
    selector: Readonly<Record<string, readonly string[]>>,
  ) {
    this.keys = Object.keys(selector);
    this.allowed = this.keys.map((k) => new Set(selector[k]));
  }

  filter(_req: unknown, candidates: readonly EndpointView[]): readonly EndpointView[] {
    for (const ep of candidates) {
      // Common case: everything matches, return the input without allocating.
      if (!this.matches(ep)) return candidates.filter((c) => this.matches(c));
    }
    return candidates;
  }

  private matches(ep: EndpointView): boolean {
    const labels = ep.info.labels;
    for (let k = 0; k < this.keys.length; k++) {
      const v = labels[this.keys[k]!];
      if (v === undefined || !this.allowed[k]!.has(v)) return false;
    }
    return true;
  }
}

/** `labels`: label key → allowed value, or a non-empty list of allowed values. */
export const LABEL_FILTER_PARAMS = z.strictObject({
  labels: z
    .record(
      z.string().min(1, { error: 'label keys must not be empty' }),
      z.union([z.string(), z.array(z.string()).min(1, { error: 'must not be an empty list' })], {
        error: 'must be a string or a non-empty list of strings',
      }),
      { error: 'must map each label key to a string or a non-empty list of strings' },
    )
    .default({}),
});

export const createLabelFilter = pluginFactory(LABEL_FILTER, LABEL_FILTER_PARAMS, (name, p) => {
  const selector: Record<string, readonly string[]> = {};
  for (const [key, value] of Object.entries(p.labels))
    selector[key] = typeof value === 'string' ? [value] : value;
  return new LabelFilter(name, selector);
});
