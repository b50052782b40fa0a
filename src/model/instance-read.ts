import type { InstanceEvents } from '../types.js';
import type { ValidGetOptions, ValidInstanceRead } from './queries.js';

/** Reads a forward version range of one instance, synchronously. */
export type ForwardRangeReader = (range: ValidGetOptions) => InstanceEvents;

/**
 * An instance read in either direction over a reader that reads forward ranges. A backward read
 * learns the instance's version at the cut (a read of no events), reads the forward range
 * [max(toVersion, from − limit + 1), from] with from = min(fromVersion, version), and reverses it.
 * Both reads see the same state because `readForward` is synchronous: no commit can land between.
 */
export function readInstance(read: ValidInstanceRead, readForward: ForwardRangeReader): InstanceEvents {
  const { direction, ...range } = read;
  if (direction === 'forward') return readForward(range);
  const { version } = readForward({
    ...range,
    fromVersion: 1,
    toVersion: Number.POSITIVE_INFINITY,
    limit: 0,
  });
  const from = Math.min(read.fromVersion, version);
  const to = Math.max(read.toVersion, from - read.limit + 1);
  if (read.limit === 0 || from < to) return { version, events: [] };
  const page = readForward({ ...range, fromVersion: to, toVersion: from, limit: from - to + 1 });
  return { version: page.version, events: page.events.reverse() };
}
