import type { EventStore } from '../../src/api/event-store.js';
import { RingStore } from '../../src/api/ring-store.js';
import { StorageEngine } from '../../src/storage/storage-engine.js';
import { StorageWriter } from '../../src/storage/writer.js';
import { type CaseContext, dropPageCache } from '../case.js';
import { type CaseResult, nowSeconds, peakRssMb, throughput } from '../measure.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN, SCANNED_TYPE, type Workload } from '../workload.js';

/**
 * Issue 4's read cases over the same 1,000,000-event data set as the write cases: read back every
 * event of `readInstances` random instances (cold after dropping the page cache where permitted,
 * then warm), and scan the whole domain filtered by one event type. The data set is loaded with
 * StorageWriter (durability 'none', big calls) because loading speed is not what is measured here.
 */
function load(dir: string, workload: Workload): void {
  const writer = StorageWriter.open(dir);
  try {
    const perCall = 1_000;
    for (let first = 0; first < workload.batchCount; first += perCall) {
      const count = Math.min(perCall, workload.batchCount - first);
      const batches = new Array(count);
      for (let i = 0; i < count; i++) batches[i] = workload.appendBatch(first + i);
      const report = writer.append(batches, 'none');
      for (const outcome of report.outcomes)
        if (!outcome.ok) throw new Error(`load rejected a batch: ${outcome.error.code}`);
    }
  } finally {
    writer.close();
  }
}

interface Pass {
  events: number;
  bytes: number;
  seconds: number;
  scanned?: number;
}

async function readInstances(store: EventStore, ids: readonly bigint[]): Promise<Pass> {
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

async function scanType(store: EventStore): Promise<Pass> {
  let events = 0;
  let bytes = 0;
  let fromPosition = 0;
  const start = nowSeconds();
  for (;;) {
    const page = await store.read(BENCH_DOMAIN, { fromPosition, types: [SCANNED_TYPE], limit: 100_000 });
    for (const event of page.events) bytes += event.data.length;
    events += page.events.length;
    if (page.events.length === 0 || page.nextPosition <= fromPosition) break;
    fromPosition = page.nextPosition;
  }
  return { events, bytes, seconds: nowSeconds() - start, scanned: fromPosition };
}

export type StoreOpener = (dir: string) => Promise<EventStore>;

export async function measureReads(
  context: CaseContext,
  system: string,
  openStore: StoreOpener,
): Promise<CaseResult[]> {
  const { workload, config } = context;
  load(context.dir, workload);
  const ids = workload.readSample(config.readInstances).map((instance) => BigInt(workload.idOf(instance)));
  const openStarted = nowSeconds();
  const store = await openStore(context.dir);
  const openSeconds = nowSeconds() - openStarted;
  const results: CaseResult[] = [];
  const row = (id: string, description: string, pass: Pass, notes: string[] = []): CaseResult => ({
    id,
    kind: 'read',
    system,
    description,
    ...throughput(pass.events, pass.bytes, pass.seconds),
    peakRssMb: peakRssMb(),
    notes,
  });
  const readDescription = `${ids.length} instances, get() per instance`;
  try {
    // The store is open (its in-memory index built); only the data files leave the cache.
    const drop = dropPageCache();
    if (drop.dropped)
      results.push(row(`read ${system} cold`, readDescription, await readInstances(store, ids)));
    await readInstances(store, ids);
    results.push(
      row(`read ${system} warm`, readDescription, await readInstances(store, ids), [
        `open ${openSeconds.toFixed(2)} s`,
      ]),
    );
    const scanDescription = `full scan, filter type ${SCANNED_TYPE}`;
    await scanType(store);
    const warmScan = await scanType(store);
    results.push(
      row(`scan ${system} warm`, scanDescription, warmScan, [
        `${warmScan.events} matched; events/s counts matches`,
      ]),
    );
    if (dropPageCache().dropped)
      results.push(row(`scan ${system} cold`, scanDescription, await scanType(store)));
    if (!drop.dropped) for (const result of results) result.notes.push(`cold reads skipped: ${drop.reason}`);
  } finally {
    await store.close();
  }
  return results;
}

export async function run(context: CaseContext, variant: string): Promise<CaseResult[]> {
  if (variant === 'engine') return measureReads(context, 'engine', async (dir) => StorageEngine.open(dir));
  if (variant === 'ringstore') return measureReads(context, 'ringstore', (dir) => RingStore.open({ dir }));
  throw new Error(`unknown store-reads variant ${variant}`);
}
