import { LIMITS } from '../model/limits.js';
import type { EventStore } from './event-store.js';

/**
 * The position after the last event of a domain's log (0 for a domain with no events yet), through
 * the EventStore interface of any store, the HTTP client included. A read whose `fromTime` lies
 * past every timestamp skips every event by that filter, and a filtered read's `nextPosition` is
 * the end of what it scanned (docs/READING.md): the log's end. The read returns no events; the
 * read index finds the end by a binary search on batch timestamps.
 */
export async function logEnd(store: EventStore, domain: string): Promise<number> {
  const { nextPosition } = await store.read(domain, { fromTime: LIMITS.maxSafeInteger, limit: 1 });
  return nextPosition;
}
