import { RingStore } from '../../src/index.js';
import type { BenchConfig } from '../config.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN, Workload } from '../workload.js';

/**
 * The victim of the crash measurement: opens an existing store and keeps appending the workload's
 * next batches (RingStore.put, durability 'write', `inFlight` puts outstanding) until its parent
 * SIGKILLs it, reporting every `reportEvery` acknowledged events which put was acknowledged last.
 */
export interface AppendInput {
  dir: string;
  /** The workload of the store, whose batches continue from `firstBatch`. */
  config: BenchConfig;
  firstBatch: number;
  inFlight: number;
  reportEvery: number;
}

export interface AppendProgress {
  /** Events of acknowledged puts so far. */
  ackedEvents: number;
  /** The instance of the latest acknowledged put and its version after that put. */
  id: number;
  version: number;
}

export async function run(input: AppendInput, report: (progress: AppendProgress) => void): Promise<never> {
  const workload = new Workload(input.config);
  const store = await RingStore.open({ dir: input.dir, durability: 'write' });
  // Ends only if nobody kills it first: then the parent reports the probe as failed.
  const last = input.firstBatch + workload.batchCount;
  let next = input.firstBatch;
  let ackedEvents = 0;
  let nextReport = input.reportEvery;
  const lane = async (): Promise<void> => {
    while (next < last) {
      const batch = next++;
      const id = workload.idOf(workload.instanceOf(batch));
      const result = await store.put(BENCH_DOMAIN, BENCH_AGGREGATE_TYPE, id, workload.inputEvents(batch));
      ackedEvents += result.lastVersion - result.firstVersion + 1;
      if (ackedEvents >= nextReport) {
        nextReport += input.reportEvery;
        report({ ackedEvents, id, version: result.lastVersion });
      }
    }
  };
  await Promise.all(Array.from({ length: input.inFlight }, lane));
  await store.close();
  throw new Error(`appended ${ackedEvents} events and was not killed`);
}
