import type { EventStore, ReadOptions } from '../../src/index.js';
import { nowSeconds, type ReadPass } from '../measure.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN } from '../workload.js';

/**
 * ringstore's reads in the read cases, through the public EventStore API only (get, read), so they
 * measure whichever engine is in the tree.
 */

/** Every event of each instance, one `get` per instance. */
export async function readInstances(store: EventStore, ids: readonly bigint[]): Promise<ReadPass> {
  let events = 0;
  let bytes = 0;
  const start = nowSeconds();
  for (const id of ids) {
    const instance = await store.get(BENCH_DOMAIN, BENCH_AGGREGATE_TYPE, id);
    events += instance.events.length;
    for (const event of instance.events) bytes += event.data.length;
  }
  return { events, bytes, seconds: nowSeconds() - start };
}

/** The domain filters the scans use: an event-type set, a time range. */
export type DomainFilter = Pick<ReadOptions, 'types' | 'fromTime' | 'toTime'>;

/**
 * The whole domain in commit order through one filter, in pages of 100,000 events, until a page
 * makes no progress (an engine may return a short or empty page before the end of a filtered range).
 */
export async function scanDomain(store: EventStore, filter: DomainFilter): Promise<ReadPass> {
  let events = 0;
  let bytes = 0;
  let fromPosition = 0;
  const start = nowSeconds();
  for (;;) {
    const page = await store.read(BENCH_DOMAIN, { ...filter, fromPosition, limit: 100_000 });
    for (const event of page.events) bytes += event.data.length;
    events += page.events.length;
    if (page.nextPosition <= fromPosition) break;
    fromPosition = page.nextPosition;
  }
  return { events, bytes, seconds: nowSeconds() - start, scanned: fromPosition };
}

/** The whole domain in commit order, filtered by one type. */
export function scanType(store: EventStore, type: string): Promise<ReadPass> {
  return scanDomain(store, { types: [type] });
}

/** The domain's events with fromTime <= timestamp <= toTime. */
export function scanTime(store: EventStore, fromTime: number, toTime: number): Promise<ReadPass> {
  return scanDomain(store, { fromTime, toTime });
}
