import { type PutResult, RingStore } from '../../src/index.js';
import type { BenchConfig } from '../config.js';
import { LatencyRecorder, nowSeconds, rssMb, runInFlight } from '../measure.js';
import { Progress } from '../progress.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN, type Workload } from '../workload.js';

/**
 * Writes a whole workload into a new store through the public API, as an application would:
 * RingStore.put of one batch at a time with `inFlight` puts outstanding, durability 'write' (the
 * scale and read-back cases measure what was written, not how durably), then close.
 */
export interface StoreWritten {
  events: number;
  /** Seconds of the puts (open and close not included). */
  seconds: number;
  eventsPerSec: number;
  /** Resident set of the writing process after the last put, before close. */
  rssMb: number;
}

export async function writeThroughApi(
  dir: string,
  config: BenchConfig,
  workload: Workload,
  label: string,
  onResult?: (batch: number, result: PutResult) => void,
): Promise<StoreWritten> {
  const store = await RingStore.open({ dir, durability: 'write' });
  const progress = new Progress(label, config.events);
  let events = 0;
  let seconds = 0;
  let rss = 0;
  try {
    const start = nowSeconds();
    await runInFlight(
      workload.batchCount,
      config.inFlight,
      Number.POSITIVE_INFINITY,
      async (batch) => {
        const id = workload.idOf(workload.instanceOf(batch));
        const result = await store.put(BENCH_DOMAIN, BENCH_AGGREGATE_TYPE, id, workload.inputEvents(batch));
        onResult?.(batch, result);
        events += result.lastVersion - result.firstVersion + 1;
        progress.tick(events);
      },
      new LatencyRecorder(0),
    );
    seconds = nowSeconds() - start;
    rss = rssMb();
  } finally {
    await store.close();
  }
  return { events, seconds, eventsPerSec: Math.round(events / seconds), rssMb: rss };
}
