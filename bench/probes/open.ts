import { type EventStore, RingStore, StorageEngine } from '../../src/index.js';
import { nowSeconds, peakRssMb, rssMb } from '../measure.js';

/**
 * Opens a store in this fresh process and measures what that costs: open time, resident set before
 * open, after it and after one get() of an instance, then counts the store's events (for the
 * parent to check against what was written, and what survived a crash).
 */
export interface OpenInput {
  api: 'ringstore' | 'engine';
  dir: string;
  domain: string;
  aggregateType: string;
  /** The instance read right after open. */
  readId: number;
}

export interface OpenAnswer {
  openSeconds: number;
  rssBeforeOpenMb: number;
  rssAfterOpenMb: number;
  readMs: number;
  readEvents: number;
  /** The version get() reported for readId. */
  readVersion: number;
  rssAfterReadMb: number;
  peakRssMb: number;
  /** Events of the domain, found with reads of one event (see countEvents). */
  storeEvents: number;
  /** What recovery changed at open (RingStore only). */
  recoveryActions: number;
}

/**
 * The number of events of a domain whose positions are dense from 0: the first position that a
 * read of one event finds empty, by doubling and then bisection (about 2·log2(n) reads).
 */
export async function countEvents(store: EventStore, domain: string): Promise<number> {
  const has = async (position: number) =>
    (await store.read(domain, { fromPosition: position, limit: 1 })).events.length > 0;
  if (!(await has(0))) return 0;
  let low = 0;
  let high = 1;
  while (await has(high)) {
    low = high;
    high *= 2;
  }
  while (high - low > 1) {
    const mid = low + Math.floor((high - low) / 2);
    if (await has(mid)) low = mid;
    else high = mid;
  }
  return high;
}

async function openStore(input: OpenInput): Promise<{ store: EventStore; recoveryActions: number }> {
  if (input.api === 'engine') return { store: StorageEngine.open(input.dir), recoveryActions: 0 };
  const store = await RingStore.open({ dir: input.dir });
  return { store, recoveryActions: store.recovery.length };
}

export async function run(input: OpenInput): Promise<OpenAnswer> {
  const rssBeforeOpenMb = rssMb();
  const opening = nowSeconds();
  const { store, recoveryActions } = await openStore(input);
  const openSeconds = nowSeconds() - opening;
  const rssAfterOpenMb = rssMb();
  try {
    const reading = nowSeconds();
    const instance = await store.get(input.domain, input.aggregateType, input.readId);
    const readMs = (nowSeconds() - reading) * 1000;
    const rssAfterReadMb = rssMb();
    return {
      openSeconds,
      rssBeforeOpenMb,
      rssAfterOpenMb,
      readMs,
      readEvents: instance.events.length,
      readVersion: instance.version,
      rssAfterReadMb,
      // The peak is at least every resident set this probe saw (the kernel's mark can lag).
      peakRssMb: Math.max(peakRssMb(), rssAfterOpenMb, rssAfterReadMb),
      storeEvents: await countEvents(store, input.domain),
      recoveryActions,
    };
  } finally {
    await store.close();
  }
}
