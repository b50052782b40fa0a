import type { Workload } from '../workload.js';
import { openStore, TIMED_HEADER_BYTES, writeTimestamp } from './lmdb.js';

/**
 * lmdb holding the same events as a ringstore written through its API (the read-back case): the
 * key model of lmdb.ts (`[instance id, version]`, one contiguous key range per instance), the
 * value u16 type code + the timestamp ringstore gave the event (f64) + payload, so a time-range
 * scan has something to filter on. Versions and timestamps are those of ringstore's put results.
 */
export interface WrittenBatches {
  /** Per batch: the version of its first event and its commit timestamp (ms), as ringstore put them. */
  firstVersions: Uint32Array;
  timestamps: Float64Array;
}

export async function loadLmdbTimed(
  dir: string,
  workload: Workload,
  batchEvents: number,
  written: WrittenBatches,
): Promise<void> {
  const db = openStore(dir);
  const blockBatches = 2_000;
  for (let first = 0; first < workload.batchCount; first += blockBatches) {
    const last = Math.min(workload.batchCount, first + blockBatches);
    await db.batch(() => {
      for (let batch = first; batch < last; batch++) {
        const id = workload.idOf(workload.instanceOf(batch));
        for (let j = 0; j < batchEvents; j++) {
          const poolIndex = workload.poolIndex(batch, j);
          const payload = workload.payload(poolIndex);
          const value = new Uint8Array(TIMED_HEADER_BYTES + payload.length);
          value[0] = workload.typeCode(poolIndex) & 0xff;
          value[1] = workload.typeCode(poolIndex) >>> 8;
          writeTimestamp(value, written.timestamps[batch]!);
          value.set(payload, TIMED_HEADER_BYTES);
          db.put([id, written.firstVersions[batch]! + j], value);
        }
      }
    });
  }
  await db.flushed;
  await db.close();
}
