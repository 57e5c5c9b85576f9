/**
 * @module plugins/routing/round-robin-picker
 * Cycles through the candidates, ignoring scores.
 */
import type { EndpointView } from '../../../framework/endpoint.js';
import type { Picker } from '../../../framework/routing.js';
import { NO_PARAMS, pluginFactory } from '../params.js';

export const ROUND_ROBIN_PICKER = 'round-robin-picker';

/**
 * Keeps one cursor per plugin instance (per pool). The cursor walks endpoint indexes, so an
 * endpoint filtered out for one request does not shift the rotation of the others.
 */
export class RoundRobinPicker implements Picker {
  readonly type = ROUND_ROBIN_PICKER;
  private cursor = -1;
  constructor(readonly name: string) {}

  pick(_req: unknown, candidates: readonly EndpointView[]): number {
    // The next candidate whose pool index comes after the last one picked, wrapping around.
    let next = -1;
    let first = 0;
    for (let i = 0; i < candidates.length; i++) {
      const idx = candidates[i]!.index;
      if (idx < candidates[first]!.index) first = i;
      if (idx > this.cursor && (next === -1 || idx < candidates[next]!.index)) next = i;
    }
    const chosen = next === -1 ? first : next;
    this.cursor = candidates[chosen]!.index;
    return chosen;
  }
}

/** No parameters. */
export const createRoundRobinPicker = pluginFactory(
  ROUND_ROBIN_PICKER,
  NO_PARAMS,
  (name) => new RoundRobinPicker(name),
);
