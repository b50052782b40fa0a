import type { InstanceEvents } from '../../types.js';

/** Where a page of an instance read stopped: the last version returned and whether more remain. */
export interface InstancePage {
  /** Version of the last event in the page; absent when the page is empty. */
  lastVersion?: number;
  /** True when the page reaches the end of the requested range (toVersion, or the instance's version). */
  complete: boolean;
  /** Present when more events remain: the fromVersion of the next page. */
  nextVersion?: number;
}

/**
 * The continuation of an instance read. A page is incomplete when its last event is below the end
 * of the range asked for: `limit` (default 1,000) cut it, so `version` alone would hide the rest.
 */
export function instancePage(result: InstanceEvents, toVersion: number | undefined): InstancePage {
  const last = result.events.at(-1)?.version;
  if (last === undefined) return { complete: true };
  const end = toVersion === undefined ? result.version : Math.min(toVersion, result.version);
  return last >= end
    ? { lastVersion: last, complete: true }
    : { lastVersion: last, complete: false, nextVersion: last + 1 };
}
