import { open, type RootDatabase } from 'lmdb';
import { type CaseContext, dropPageCache } from '../case.js';
import {
  type CaseResult,
  LatencyRecorder,
  nowSeconds,
  peakRssMb,
  runInFlight,
  throughput,
} from '../measure.js';
import { EVENT_TYPES, SCANNED_TYPE, type Workload } from '../workload.js';

/**
 * lmdb (lmdb-js) as the peer: one key per event, `[instance id, version]` (ordered-binary, so an
 * instance's events are one contiguous key range), value = u16 event-type code + payload. Default
 * lmdb settings: overlappingSync on, event-turn batching on. A put is acknowledged only after its
 * transaction is flushed to disk: `await db.batch(...)` resolves at commit (visible), then
 * `await db.flushed` resolves once that commit is durable (lmdb-js README, "Overlapping Sync").
 */
type Key = [number, number];
type Store = RootDatabase<Uint8Array, Key>;

function openStore(dir: string): Store {
  return open<Uint8Array, Key>({ path: dir, encoding: 'binary' });
}

/** Value = [type code u16 LE][payload]: the same information ringstore keeps per event. */
function valuePool(workload: Workload, poolSize: number): Uint8Array[] {
  const values: Uint8Array[] = [];
  for (let i = 0; i < poolSize; i++) {
    const payload = workload.payload(i);
    const value = new Uint8Array(payload.length + 2);
    value[0] = workload.typeCode(i) & 0xff;
    value[1] = workload.typeCode(i) >>> 8;
    value.set(payload, 2);
    values.push(value);
  }
  return values;
}

function putBatch(
  db: Store,
  workload: Workload,
  values: Uint8Array[],
  batch: number,
  batchEvents: number,
): void {
  const id = workload.idOf(workload.instanceOf(batch));
  const firstVersion = workload.firstVersionOf(batch);
  for (let j = 0; j < batchEvents; j++) {
    db.put([id, firstVersion + j], values[workload.poolIndex(batch, j)]!);
  }
}

async function durableWrites(context: CaseContext): Promise<CaseResult[]> {
  const { workload, config } = context;
  const values = valuePool(workload, 1024);
  const db = openStore(context.dir);
  const latencies = new LatencyRecorder(workload.batchCount);
  const outcome = await runInFlight(
    workload.batchCount,
    config.inFlight,
    context.deadline,
    async (batch) => {
      // One batch = one atomic write block; lmdb-js may group blocks of one event turn into one
      // LMDB transaction (its own group commit), exactly as ringstore groups generations.
      await db.batch(() => putBatch(db, workload, values, batch, config.batchEvents));
      await db.flushed;
    },
    latencies,
  );
  await db.close();
  const events = outcome.completed * config.batchEvents;
  return [
    {
      id: 'lmdb write',
      kind: 'write',
      system: 'lmdb',
      description: `batch of ${config.batchEvents} puts per put, ${config.inFlight} in flight, ack when flushed`,
      ...throughput(events, events * config.eventBytes, outcome.seconds),
      latencyP50Ms: latencies.percentile(50),
      latencyP99Ms: latencies.percentile(99),
      peakRssMb: peakRssMb(),
      capped: outcome.capped,
      notes: ['lmdb-js does not expose its fsync count'],
    },
  ];
}

/** Loads the whole workload fast (big write blocks), then waits until it is durable. */
async function load(db: Store, workload: Workload, batchEvents: number): Promise<void> {
  const values = valuePool(workload, 1024);
  const blockBatches = 2_000;
  for (let first = 0; first < workload.batchCount; first += blockBatches) {
    const last = Math.min(workload.batchCount, first + blockBatches);
    await db.batch(() => {
      for (let k = first; k < last; k++) putBatch(db, workload, values, k, batchEvents);
    });
  }
  await db.flushed;
}

interface Pass {
  events: number;
  bytes: number;
  seconds: number;
}

function readInstances(db: Store, ids: readonly number[]): Pass {
  let events = 0;
  let bytes = 0;
  const start = nowSeconds();
  for (const id of ids) {
    for (const { value } of db.getRange({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })) {
      events++;
      bytes += value.length - 2;
    }
  }
  return { events, bytes, seconds: nowSeconds() - start };
}

function scanType(db: Store, typeCode: number): Pass & { scanned: number } {
  let events = 0;
  let bytes = 0;
  let scanned = 0;
  const start = nowSeconds();
  for (const { value } of db.getRange({})) {
    scanned++;
    if ((value[0]! | (value[1]! << 8)) === typeCode) {
      events++;
      bytes += value.length - 2;
    }
  }
  return { events, bytes, seconds: nowSeconds() - start, scanned };
}

async function reads(context: CaseContext): Promise<CaseResult[]> {
  const { workload, config } = context;
  let db = openStore(context.dir);
  await load(db, workload, config.batchEvents);
  await db.close();
  const ids = workload.readSample(config.readInstances).map((instance) => workload.idOf(instance));
  const typeCode = EVENT_TYPES.indexOf(SCANNED_TYPE);
  const results: CaseResult[] = [];
  const row = (id: string, description: string, pass: Pass, notes: string[] = []): CaseResult => ({
    id,
    kind: 'read',
    system: 'lmdb',
    description,
    ...throughput(pass.events, pass.bytes, pass.seconds),
    peakRssMb: peakRssMb(),
    notes,
  });
  const readDescription = `${ids.length} instances, range read per stream`;

  // Cold first: open, then drop the cache, so only lmdb's meta pages may still be resident.
  db = openStore(context.dir);
  const drop = dropPageCache();
  if (drop.dropped) results.push(row('read lmdb cold', readDescription, readInstances(db, ids)));
  readInstances(db, ids);
  results.push(row('read lmdb warm', readDescription, readInstances(db, ids)));

  scanType(db, typeCode);
  const warmScan = scanType(db, typeCode);
  const scanDescription = `full scan, filter type ${SCANNED_TYPE}`;
  const scanNote = `${warmScan.scanned} events scanned, ${warmScan.events} matched; events/s counts matches`;
  results.push(row('scan lmdb warm', scanDescription, warmScan, [scanNote]));
  if (dropPageCache().dropped) results.push(row('scan lmdb cold', scanDescription, scanType(db, typeCode)));
  await db.close();
  if (!drop.dropped) for (const result of results) result.notes.push(`cold reads skipped: ${drop.reason}`);
  return results;
}

export async function run(context: CaseContext, variant: string): Promise<CaseResult[]> {
  if (variant === 'write') return durableWrites(context);
  if (variant === 'reads') return reads(context);
  throw new Error(`unknown lmdb variant ${variant}`);
}
