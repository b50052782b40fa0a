import { parentPort, workerData } from 'node:worker_threads';
import { Producer, type ProducerHandle } from '../../src/pipeline/producer.js';
import type { BenchConfig } from '../config.js';
import { LatencyRecorder, runInFlight, warmUp } from '../measure.js';
import { Workload } from '../workload.js';

/**
 * A producer thread of the ringstore bench: puts batches lane, lane + lanes, lane + 2·lanes, … of
 * the shared workload through `Producer.fromHandle(store.producer())`, keeping `inFlight` puts
 * outstanding, and reports completions and per-put latencies to the case's main thread.
 */
export interface ProducerThreadData {
  handle: ProducerHandle;
  config: BenchConfig;
  lane: number;
  lanes: number;
  inFlight: number;
  deadline: number;
}

export interface ProducerThreadReport {
  completed: number;
  capped: boolean;
  latencies: Float64Array;
}

const data = workerData as ProducerThreadData;
const port = parentPort!;
const workload = new Workload(data.config);
const producer = Producer.fromHandle(data.handle);
/** This lane's share of `count` batches: its i-th one is batch lane + i·lanes of them. */
const laneShare = (count: number) => Math.max(0, Math.ceil((count - data.lane) / data.lanes));
const total = laneShare(workload.batchCount);
const latencies = new LatencyRecorder(total);
const put = (batch: number) => workload.putBatch(producer, batch);

port.once('message', async () => {
  const outcome = await runInFlight(
    total,
    data.inFlight,
    data.deadline,
    (i) => put(workload.measuredBatch(data.lane + i * data.lanes)),
    latencies,
  );
  const samples = latencies.samples();
  const report: ProducerThreadReport = {
    completed: outcome.completed,
    capped: outcome.capped,
    latencies: samples,
  };
  port.postMessage(report, [samples.buffer as ArrayBuffer]);
  // Stay alive until the case terminates this thread: a thread that ended would take its CPU time
  // out of /proc before the case's meter reads it (the producer column then read 0).
  port.once('message', () => port.close());
});
// Warm up before 'ready': the case starts its CPU meter and clock on 'ready' from every lane.
await warmUp(laneShare(workload.warmupBatches), data.inFlight, (i) => put(data.lane + i * data.lanes));
port.postMessage('ready');
