import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseContext } from '../case.js';
import { CpuMeter } from '../cpu-meter.js';
import { type CaseResult, MIB, nowSeconds, peakRssMb, round, throughput } from '../measure.js';

/**
 * The raw-write floor: the workload's payload bytes, one writeSync per batch (the same batching as
 * every other case), one fdatasync per MiB written and one at the end. No headers, no index, no
 * CRC, no versions: what the disk and the syscall path cost on this machine, and so the ceiling any
 * durable store here can approach.
 */
export async function run(context: CaseContext): Promise<CaseResult[]> {
  const { workload, config } = context;
  const buffer = new Uint8Array(workload.batchBytes);
  const fd = openSync(join(context.dir, 'floor.bin'), 'w');
  let unsynced = 0;
  let fsyncs = 0;
  let batches = 0;
  let capped = false;
  const writeBatch = (batch: number) => {
    for (let j = 0; j < config.batchEvents; j++)
      buffer.set(workload.payload(workload.poolIndex(batch, j)), j * config.eventBytes);
    writeSync(fd, buffer);
    unsynced += buffer.length;
    if (unsynced >= MIB) {
      fdatasyncSync(fd);
      fsyncs++;
      unsynced = 0;
    }
  };
  let meter: CpuMeter | undefined;
  let start = 0;
  try {
    for (let batch = 0; batch < workload.warmupBatches; batch++) writeBatch(batch);
    fsyncs = 0;
    meter = new CpuMeter(context.threads);
    meter.start();
    start = nowSeconds();
    for (let i = 0; i < workload.batchCount; i++) {
      if ((i & 1023) === 0 && nowSeconds() > context.deadline) {
        capped = true;
        break;
      }
      writeBatch(workload.measuredBatch(i));
      batches++;
    }
    if (unsynced > 0) {
      fdatasyncSync(fd);
      fsyncs++;
    }
  } finally {
    closeSync(fd);
  }
  const seconds = nowSeconds() - start;
  const events = batches * config.batchEvents;
  const cpu = meter!.stop(events);
  return [
    {
      id: 'floor',
      kind: 'write',
      system: 'floor',
      description: 'writeSync per batch, fdatasync per MiB',
      ...throughput(events, events * config.eventBytes, seconds),
      fsyncs,
      eventsPerFsync: round(events / Math.max(1, fsyncs), 1),
      peakRssMb: peakRssMb(),
      cpu,
      capped,
      notes: [],
    },
  ];
}
