import { open, type RootDatabase } from 'lmdb';
import type { CaseContext } from '../case.js';
import { CpuMeter } from '../cpu-meter.js';
import {
  type CaseResult,
  LatencyRecorder,
  nowSeconds,
  peakRssMb,
  type ReadPass,
  runInFlight,
  throughput,
  warmUp,
} from '../measure.js';
import { EVENT_TYPES, type Workload } from '../workload.js';

/**
 * lmdb (lmdb-js) as the peer: one key per event, `[instance id, version]` (ordered-binary, so an
 * instance's events are one contiguous key range), value = u16 event-type code + payload. Default
 * lmdb settings: overlappingSync on, event-turn batching on. A put is acknowledged only after its
 * transaction is flushed to disk: `await db.batch(...)` resolves at commit (visible), then
 * `await db.flushed` resolves once that commit is durable (lmdb-js README, "Overlapping Sync").
 */
export type Key = [number, number];
export type Store = RootDatabase<Uint8Array, Key>;

export function openStore(dir: string): Store {
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
  const put = async (batch: number) => {
    // One batch = one atomic write block; lmdb-js may group blocks of one event turn into one
    // LMDB transaction (its own group commit), exactly as ringstore groups generations.
    await db.batch(() => putBatch(db, workload, values, batch, config.batchEvents));
    await db.flushed;
  };
  await warmUp(workload.warmupBatches, config.inFlight, put);
  const meter = new CpuMeter(context.threads);
  meter.start();
  const outcome = await runInFlight(
    workload.batchCount,
    config.inFlight,
    context.deadline,
    (i) => put(workload.measuredBatch(i)),
    latencies,
  );
  const events = outcome.completed * config.batchEvents;
  const cpu = meter.stop(events);
  await db.close();
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
      cpu,
      capped: outcome.capped,
      notes: [
        'lmdb-js does not expose its fsync count',
        "its native write thread is one of the 'other' threads in the CPU column",
      ],
    },
  ];
}

/** Loads the whole workload fast (big write blocks), then waits until it is durable. */
export async function loadLmdb(dir: string, workload: Workload, batchEvents: number): Promise<void> {
  const db = openStore(dir);
  const values = valuePool(workload, 1024);
  const blockBatches = 2_000;
  for (let first = 0; first < workload.batchCount; first += blockBatches) {
    const last = Math.min(workload.batchCount, first + blockBatches);
    await db.batch(() => {
      for (let k = first; k < last; k++) putBatch(db, workload, values, k, batchEvents);
    });
  }
  await db.flushed;
  await db.close();
}

/** Bytes before the payload in a value: the type code (2), then in the timed layout a timestamp (8). */
export const PLAIN_HEADER_BYTES = 2;
export const TIMED_HEADER_BYTES = 10;

/**
 * lmdb's read side of the read cases. `reopen()` closes and reopens the environment: pages a
 * process has mapped survive drop_caches, so a cold pass must start from a fresh mapping.
 * `headerBytes` says which value layout the store holds (lmdb-timed.ts writes the timed one).
 */
export class LmdbReader {
  readonly #dir: string;
  readonly #headerBytes: number;
  #db: Store;

  constructor(dir: string, headerBytes = PLAIN_HEADER_BYTES) {
    this.#dir = dir;
    this.#headerBytes = headerBytes;
    this.#db = openStore(dir);
  }

  async reopen(): Promise<void> {
    await this.#db.close();
    this.#db = openStore(this.#dir);
  }

  /** Every event of each instance: one getRange over its `[id, 1…]` key range. */
  readInstances(ids: readonly number[]): ReadPass {
    let events = 0;
    let bytes = 0;
    const start = nowSeconds();
    for (const id of ids) {
      for (const { value } of this.#db.getRange({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })) {
        events++;
        bytes += value.length - this.#headerBytes;
      }
    }
    return { events, bytes, seconds: nowSeconds() - start };
  }

  /** The whole store in key order, keeping the events of one type (lmdb has no type index). */
  scanType(type: string): ReadPass {
    const typeCode = EVENT_TYPES.indexOf(type as (typeof EVENT_TYPES)[number]);
    let events = 0;
    let bytes = 0;
    let scanned = 0;
    const start = nowSeconds();
    for (const { value } of this.#db.getRange({})) {
      scanned++;
      if ((value[0]! | (value[1]! << 8)) === typeCode) {
        events++;
        bytes += value.length - this.#headerBytes;
      }
    }
    return { events, bytes, seconds: nowSeconds() - start, scanned };
  }

  /** The whole store in key order, keeping the events stamped fromTime…toTime (no time index either). */
  scanTime(fromTime: number, toTime: number): ReadPass {
    if (this.#headerBytes !== TIMED_HEADER_BYTES) throw new Error('scanTime needs the timed value layout');
    let events = 0;
    let bytes = 0;
    let scanned = 0;
    const start = nowSeconds();
    for (const { value } of this.#db.getRange({})) {
      scanned++;
      const timestamp = readTimestamp(value);
      if (timestamp >= fromTime && timestamp <= toTime) {
        events++;
        bytes += value.length - TIMED_HEADER_BYTES;
      }
    }
    return { events, bytes, seconds: nowSeconds() - start, scanned };
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}

const timestampScratch = new Float64Array(1);
const timestampBytes = new Uint8Array(timestampScratch.buffer);

/** The timestamp of a timed-layout value (bytes 2–9, in this machine's byte order, as written). */
export function readTimestamp(value: Uint8Array): number {
  for (let i = 0; i < 8; i++) timestampBytes[i] = value[PLAIN_HEADER_BYTES + i]!;
  return timestampScratch[0]!;
}

/** Writes a timed-layout value's timestamp (the inverse of readTimestamp). */
export function writeTimestamp(value: Uint8Array, timestamp: number): void {
  timestampScratch[0] = timestamp;
  value.set(timestampBytes, PLAIN_HEADER_BYTES);
}

export async function run(context: CaseContext, variant: string): Promise<CaseResult[]> {
  if (variant === 'write') return durableWrites(context);
  throw new Error(`unknown lmdb variant ${variant}`);
}
