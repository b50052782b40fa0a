import type { ValidInstanceRead } from '../../model/queries.js';
import type { InstanceEvents } from '../../types.js';

/** Where a page of an instance read stopped: the last version returned and whether more remain. */
export interface InstancePage {
  /** Version of the last event in the page (backward: the lowest); absent when the page is empty. */
  lastVersion?: number;
  /**
   * True when the page reaches the end of the requested range in reading order: forward
   * `toVersion` (or the instance's version), backward `toVersion` (or version 1).
   */
  complete: boolean;
  /** Present when more events remain: the fromVersion of the next page, in the same direction. */
  nextVersion?: number;
}

/**
 * The continuation of an instance read. A page is incomplete when its last event stops short of
 * the end of the range asked for: `limit` (default 1,000) cut it, so `version` alone would hide the
 * rest. Forward the next page starts at lastVersion + 1, backward at lastVersion − 1.
 */
export function instancePage(
  result: InstanceEvents,
  read: Pick<ValidInstanceRead, 'direction' | 'fromVersion' | 'toVersion' | 'limit'>,
): InstancePage {
  const last = result.events.at(-1)?.version;
  if (last === undefined) return read.limit === 0 ? pageOfNone(result.version, read) : { complete: true };
  if (read.direction === 'backward') {
    return last <= read.toVersion
      ? { lastVersion: last, complete: true }
      : { lastVersion: last, complete: false, nextVersion: last - 1 };
  }
  const end = Math.min(read.toVersion, result.version);
  return last >= end
    ? { lastVersion: last, complete: true }
    : { lastVersion: last, complete: false, nextVersion: last + 1 };
}

/**
 * A page with `limit` 0 (a read of the version alone): complete only when the range holds no
 * event, else it continues where the range starts.
 */
function pageOfNone(
  version: number,
  read: Pick<ValidInstanceRead, 'direction' | 'fromVersion' | 'toVersion'>,
): InstancePage {
  const start =
    read.direction === 'backward' ? Math.min(read.fromVersion, version) : Math.max(1, read.fromVersion);
  const holds =
    read.direction === 'backward'
      ? start >= Math.max(1, read.toVersion)
      : start <= Math.min(read.toVersion, version);
  return holds ? { complete: false, nextVersion: start } : { complete: true };
}
