import type { EventStore } from '../../src/api/event-store.js';
import { StorageWriter } from '../../src/storage/writer.js';
import { nowSeconds, type ReadPass } from '../measure.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN, type Workload } from '../workload.js';

/**
 * ringstore's read side of the read cases. The data set is the write cases' workload, loaded with
 * StorageWriter (durability 'none', big calls, one fsync at close): loading is not what is measured.
 */
export function loadRingstore(dir: string, workload: Workload): void {
  const writer = StorageWriter.open(dir);
  try {
    const perCall = 1_000;
    for (let first = 0; first < workload.batchCount; first += perCall) {
      const count = Math.min(perCall, workload.batchCount - first);
      const batches = new Array(count);
      for (let i = 0; i < count; i++) batches[i] = workload.appendBatch(first + i);
      const report = writer.append(batches, 'none');
      for (const outcome of report.outcomes) {
        if (!outcome.ok) throw new Error(`loading rejected a batch: ${outcome.error.code}`);
      }
    }
  } finally {
    writer.close();
  }
}

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

/** The whole domain in commit order, filtered by one type, in pages of 100,000 events. */
export async function scanType(store: EventStore, type: string): Promise<ReadPass> {
  let events = 0;
  let bytes = 0;
  let fromPosition = 0;
  const start = nowSeconds();
  for (;;) {
    const page = await store.read(BENCH_DOMAIN, { fromPosition, types: [type], limit: 100_000 });
    for (const event of page.events) bytes += event.data.length;
    events += page.events.length;
    if (page.events.length === 0 || page.nextPosition <= fromPosition) break;
    fromPosition = page.nextPosition;
  }
  return { events, bytes, seconds: nowSeconds() - start, scanned: fromPosition };
}
