import { StorageWriter } from '../../src/storage/writer.js';
import type { Workload } from '../workload.js';

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
