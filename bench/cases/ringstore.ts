import { Worker } from 'node:worker_threads';
import type { RingStoreStats } from '../../src/api/ring-engine.js';
import { RingStore, ringStoreThreads } from '../../src/api/ring-store.js';
import type { Durability } from '../../src/types.js';
import type { CaseContext } from '../case.js';
import { CpuMeter, type ThreadCpu } from '../cpu-meter.js';
import {
  type CaseResult,
  type InFlightRun,
  LatencyRecorder,
  nowSeconds,
  peakRssMb,
  round,
  runInFlight,
  throughput,
  warmUp,
} from '../measure.js';
import type { ThreadRoles } from '../thread-roles.js';
import type { ProducerThreadData, ProducerThreadReport } from './producer-thread.js';

/**
 * The embedded store end to end (issue 3): the workload put through RingStore with
 * `inFlight` puts outstanding, from the main thread or from producer worker threads
 * (`store.producer()`), per durability and CRC mode. Variant: `<main|1|4>:<fsync|none>:<pool|inline>`,
 * optionally `:<handoffBytes>` (otherwise RingStore's default).
 */
interface Variant {
  producers: number;
  durability: Durability;
  crc: 'pool' | 'inline';
  /** RingStore's handoffBytes; undefined: its default. */
  handoffBytes: number | undefined;
}

function parseVariant(variant: string): Variant {
  const [producers, durability, crc, handoff] = variant.split(':');
  const handoffBytes = handoff === undefined ? undefined : Number(handoff);
  if (
    (producers !== 'main' && producers !== '1' && producers !== '4') ||
    (durability !== 'fsync' && durability !== 'none') ||
    (crc !== 'pool' && crc !== 'inline') ||
    (handoffBytes !== undefined && !Number.isSafeInteger(handoffBytes))
  ) {
    throw new Error(`unknown ringstore variant ${variant}`);
  }
  return { producers: producers === 'main' ? 0 : Number(producers), durability, crc, handoffBytes };
}

function caseId(variant: Variant): string {
  const from =
    variant.producers === 0
      ? 'main'
      : variant.producers === 1
        ? '1-producer'
        : `${variant.producers}-producers`;
  const handoff = variant.handoffBytes === undefined ? '' : ` handoff ${variant.handoffBytes}`;
  return `ringstore ${from} ${variant.durability} ${variant.crc}${handoff}`;
}

interface MeasuredRun extends InFlightRun {
  cpu: ThreadCpu;
  /** The store's counters when measuring began (after the warm-up). */
  statsBefore: RingStoreStats;
}

/** Names the store's writer and CRC pool threads (a pool thread that died has a replacement). */
export function nameStoreThreads(threads: ThreadRoles, store: RingStore): void {
  const { writer, pool } = ringStoreThreads(store);
  threads.assign(writer.threadId, 'writer');
  for (const thread of pool?.threads ?? []) threads.assign(thread.threadId, 'crc');
}

function stopMeter(
  context: CaseContext,
  store: RingStore,
  meter: CpuMeter,
  run: InFlightRun,
  statsBefore: RingStoreStats,
): MeasuredRun {
  nameStoreThreads(context.threads, store);
  return { ...run, cpu: meter.stop(run.completed * context.config.batchEvents), statsBefore };
}

async function fromMainThread(
  context: CaseContext,
  store: RingStore,
  latencies: LatencyRecorder,
): Promise<MeasuredRun> {
  const { workload, config } = context;
  const put = (batch: number) => workload.putBatch(store, batch);
  await warmUp(workload.warmupBatches, config.inFlight, put);
  const statsBefore = store.stats();
  const meter = new CpuMeter(context.threads);
  meter.start();
  const run = await runInFlight(
    workload.batchCount,
    config.inFlight,
    context.deadline,
    (i) => put(workload.measuredBatch(i)),
    latencies,
  );
  return stopMeter(context, store, meter, run, statsBefore);
}

async function fromProducerThreads(
  context: CaseContext,
  store: RingStore,
  producers: number,
  latencies: LatencyRecorder,
): Promise<MeasuredRun> {
  const { config } = context;
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  const reports: Promise<ProducerThreadReport>[] = [];
  for (let lane = 0; lane < producers; lane++) {
    const workerData: ProducerThreadData = {
      handle: store.producer(),
      config,
      lane,
      lanes: producers,
      inFlight: Math.max(1, Math.round(config.inFlight / producers)),
      deadline: context.deadline,
    };
    const worker = new Worker(new URL('./producer-thread.js', import.meta.url), { workerData });
    context.threads.assign(worker.threadId, 'producer');
    workers.push(worker);
    let readyResolve: () => void = () => {};
    ready.push(new Promise((resolve) => (readyResolve = resolve)));
    reports.push(
      new Promise((resolve, reject) => {
        worker.on('message', (message: 'ready' | ProducerThreadReport) => {
          if (message === 'ready') readyResolve();
          else resolve(message);
        });
        worker.once('error', reject);
        worker.once('exit', (code) =>
          reject(new Error(`producer thread exited with code ${code} before reporting`)),
        );
      }),
    );
  }
  await Promise.all(ready);
  const statsBefore = store.stats();
  const meter = new CpuMeter(context.threads);
  meter.start();
  const start = nowSeconds();
  for (const worker of workers) worker.postMessage('go');
  try {
    const done = await Promise.all(reports);
    const seconds = nowSeconds() - start;
    let completed = 0;
    let capped = false;
    for (const report of done) {
      completed += report.completed;
      capped ||= report.capped;
      latencies.recordAll(report.latencies);
    }
    // Measured before the producer threads end, which would take their CPU time with them.
    return stopMeter(context, store, meter, { completed, seconds, capped }, statsBefore);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/** The counters the measured puts moved (the warm-up's taken out). */
function measuredStats(
  before: RingStoreStats,
  after: RingStoreStats,
): Pick<RingStoreStats, 'commits' | 'batches' | 'fsyncs' | 'crcTasks'> {
  return {
    commits: after.commits - before.commits,
    batches: after.batches - before.batches,
    fsyncs: after.fsyncs - before.fsyncs,
    crcTasks: after.crcTasks - before.crcTasks,
  };
}

export async function run(context: CaseContext, variantText: string): Promise<CaseResult[]> {
  const variant = parseVariant(variantText);
  const { workload, config } = context;
  const opening = nowSeconds();
  const store = await RingStore.open({
    dir: context.dir,
    durability: variant.durability,
    crc: variant.crc,
    ...(variant.handoffBytes === undefined ? {} : { handoffBytes: variant.handoffBytes }),
  });
  const openSeconds = nowSeconds() - opening;
  const latencies = new LatencyRecorder(workload.batchCount);
  let outcome: MeasuredRun;
  let closeSeconds = 0;
  try {
    outcome =
      variant.producers === 0
        ? await fromMainThread(context, store, latencies)
        : await fromProducerThreads(context, store, variant.producers, latencies);
  } finally {
    const closing = nowSeconds();
    await store.close();
    closeSeconds = nowSeconds() - closing;
  }
  const stats = measuredStats(outcome.statsBefore, store.stats());
  const events = outcome.completed * config.batchEvents;
  const notes = [
    `${round(stats.batches / Math.max(1, stats.commits), 1)} batches per commit, ` +
      `${round((outcome.seconds * 1000) / Math.max(1, stats.commits), 2)} ms per commit`,
    ...(variant.crc === 'pool'
      ? [`${round(stats.batches / Math.max(1, stats.crcTasks), 1)} batches per CRC task`]
      : []),
    `open ${openSeconds.toFixed(2)} s, close ${closeSeconds.toFixed(2)} s (not in the rate)`,
  ];
  return [
    {
      id: caseId(variant),
      kind: 'write',
      system: 'ringstore',
      description: `${config.inFlight} puts in flight`,
      ...throughput(events, events * config.eventBytes, outcome.seconds),
      latencyP50Ms: latencies.percentile(50),
      latencyP99Ms: latencies.percentile(99),
      fsyncs: stats.fsyncs,
      eventsPerFsync: stats.fsyncs === 0 ? undefined : round(events / stats.fsyncs, 1),
      peakRssMb: peakRssMb(),
      cpu: outcome.cpu,
      capped: outcome.capped,
      notes,
    },
  ];
}
