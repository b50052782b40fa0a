import type { AppendBatch, AppendReport } from '../../src/storage/types.js';
import { StorageWriter } from '../../src/storage/writer.js';
import type { Durability } from '../../src/types.js';
import type { CaseContext } from '../case.js';
import { CpuMeter, type ThreadCpu } from '../cpu-meter.js';
import { type CaseResult, LatencyRecorder, nowSeconds, peakRssMb, round, throughput } from '../measure.js';
import type { Workload } from '../workload.js';

/**
 * The storage engine alone, in-process: StorageWriter.append with `batchesPerCall` batches per call
 * (a drained set of generations, as the writer thread hands it over under load), so durability
 * 'fsync' costs one group-commit barrier per call. With 'fsync' the commits overlap
 * (StorageWriter.appendOverlapped): each is written while the one before it syncs on the thread
 * pool, COMMITS_IN_FLIGHT at most (BENCH_ENGINE_COMMITS, default 2). No ring, no threads, no CRC work (the batches
 * carry precomputed CRCs): the ceiling of what the pipeline in front of it can deliver.
 */
function callBatches(workload: Workload, first: number, count: number): AppendBatch[] {
  const batches: AppendBatch[] = new Array(count);
  for (let i = 0; i < count; i++) batches[i] = workload.appendBatch(first + i);
  return batches;
}

const COMMITS_IN_FLIGHT = Math.max(1, Number(process.env.BENCH_ENGINE_COMMITS ?? 2));

export async function run(context: CaseContext, variant: string): Promise<CaseResult[]> {
  if (variant !== 'fsync' && variant !== 'none' && variant !== 'write') {
    throw new Error(`unknown storage-engine variant ${variant}`);
  }
  const durability: Durability = variant;
  const { workload, config } = context;
  const writer = StorageWriter.open(context.dir);
  const callLatencies = new LatencyRecorder(Math.ceil(workload.batchCount / config.batchesPerCall));
  let fsyncs = 0;
  let batches = 0;
  let rejected = 0;
  let capped = false;
  let closeSeconds = 0;
  const inFlight: Promise<AppendReport>[] = [];
  const timed = (report: AppendReport, issued: number) => {
    callLatencies.record(performance.now() - issued);
    return report;
  };
  const count = (report: AppendReport) => {
    fsyncs += report.fsyncs;
    for (const outcome of report.outcomes) if (!outcome.ok) rejected++;
  };
  /** Appends batches first … end - 1 (of the workload's numbering) and waits for every commit. */
  const appendRange = async (first: number, end: number, measured: boolean): Promise<void> => {
    for (let from = first; from < end; from += config.batchesPerCall) {
      if (measured && nowSeconds() > context.deadline) {
        capped = true;
        break;
      }
      const call = callBatches(workload, from, Math.min(config.batchesPerCall, end - from));
      const issued = performance.now();
      if (durability === 'fsync') {
        // Overlapped commits: this one is written while up to COMMITS_IN_FLIGHT - 1 earlier ones sync.
        if (inFlight.length === COMMITS_IN_FLIGHT) count(await inFlight.shift()!);
        inFlight.push(
          writer.appendOverlapped(call).then((report) => (measured ? timed(report, issued) : report)),
        );
      } else {
        const report = writer.append(call, durability);
        count(measured ? timed(report, issued) : report);
      }
      if (measured) batches += call.length;
    }
    for (const commit of inFlight.splice(0)) count(await commit);
    await writer.drain();
  };
  let seconds = 0;
  let cpu: ThreadCpu | undefined;
  try {
    await appendRange(0, workload.warmupBatches, false);
    fsyncs = 0;
    const meter = new CpuMeter(context.threads);
    meter.start();
    const start = nowSeconds();
    const first = workload.measuredBatch(0);
    await appendRange(first, first + workload.batchCount, true);
    seconds = nowSeconds() - start;
    cpu = meter.stop(batches * config.batchEvents);
  } finally {
    const closing = nowSeconds();
    writer.close();
    closeSeconds = nowSeconds() - closing;
  }
  if (rejected > 0)
    throw new Error(`storage engine rejected ${rejected} batches of an unconditional workload`);
  const events = batches * config.batchEvents;
  return [
    {
      id: `storage-engine ${durability}`,
      kind: 'write',
      system: 'engine',
      description: `StorageWriter.append${durability === 'fsync' ? 'Overlapped' : ''}, ${config.batchesPerCall} batches per call`,
      ...throughput(events, events * config.eventBytes, seconds),
      fsyncs,
      eventsPerFsync: fsyncs === 0 ? undefined : round(events / fsyncs, 1),
      peakRssMb: peakRssMb(),
      cpu,
      capped,
      notes: [
        ...(durability === 'fsync' ? [`${COMMITS_IN_FLIGHT} commits in flight (BENCH_ENGINE_COMMITS)`] : []),
        `append call p50 ${callLatencies.percentile(50)} ms, p99 ${callLatencies.percentile(99)} ms`,
        `close ${closeSeconds.toFixed(2)} s (not in the rate)`,
      ],
    },
  ];
}
