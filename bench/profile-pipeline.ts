import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingStore } from '../src/api/ring-store.js';
import type { Durability } from '../src/types.js';
import { nameStoreThreads } from './cases/ringstore.js';
import { configFromEnv } from './config.js';
import { CpuMeter } from './cpu-meter.js';
import { LatencyRecorder, runInFlight, warmUp } from './measure.js';
import { cpuByRole } from './report.js';
import { ThreadRoles } from './thread-roles.js';
import { Workload } from './workload.js';

/**
 * A small standalone driver for profiling the write pipeline from the main thread, without the
 * bench harness around it (one process, no child, no baselines):
 *
 *   node --import ./dist/bench/thread-tag-preload.js dist/bench/profile-pipeline.js [fsync|none] [pool|inline] [runs]
 *
 * It uses the bench workload (BENCH_EVENTS, BENCH_IN_FLIGHT, … as in docs/BENCHMARKS.md) and prints
 * one line per run, measured after a warm-up of BENCH_WARMUP_EVENTS on the same store: events/s, commits, batches per commit, ms per commit and the CPU time per event
 * of all threads and of the main/writer/CRC/other threads, from schedstat (less sensitive to a
 * loaded machine than the rate; without the --import the writer and CRC threads count as 'other').
 * Several runs in one process show the warm-up; compare builds by running two copies of dist/
 * alternately. PROFILE_MAX_BATCHES_PER_COMMIT and PROFILE_HANDOFF_BYTES set those RingStore
 * options. Add `--cpu-prof --cpu-prof-dir=/tmp/prof` for profiles (wall-time samples).
 */
async function main(): Promise<void> {
  const durability = (process.argv[2] ?? 'fsync') as Durability;
  const crc = (process.argv[3] ?? 'pool') as 'pool' | 'inline';
  const runs = Number(process.argv[4] ?? 1);
  const config = configFromEnv();
  const workload = new Workload(config);
  const threads = new ThreadRoles();
  for (let run = 0; run < runs; run++) {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-profile-'));
    try {
      const maxBatches = process.env.PROFILE_MAX_BATCHES_PER_COMMIT;
      const handoffBytes = process.env.PROFILE_HANDOFF_BYTES;
      const store = await RingStore.open({
        dir,
        durability,
        crc,
        ...(maxBatches ? { maxBatchesPerCommit: Number(maxBatches) } : {}),
        ...(handoffBytes ? { handoffBytes: Number(handoffBytes) } : {}),
      });
      const put = (batch: number) => workload.putBatch(store, batch);
      await warmUp(workload.warmupBatches, config.inFlight, put);
      const before = store.stats();
      const latencies = new LatencyRecorder(workload.batchCount);
      const meter = new CpuMeter(threads);
      meter.start();
      const outcome = await runInFlight(
        workload.batchCount,
        config.inFlight,
        Number.POSITIVE_INFINITY,
        (i) => put(workload.measuredBatch(i)),
        latencies,
      );
      const events = outcome.completed * config.batchEvents;
      nameStoreThreads(threads, store);
      const cpu = meter.stop(events);
      await store.close();
      const after = store.stats();
      const stats = {
        commits: after.commits - before.commits,
        batches: after.batches - before.batches,
        fsyncs: after.fsyncs - before.fsyncs,
        crcTasks: after.crcTasks - before.crcTasks,
      };
      const perCommitMs = (outcome.seconds * 1000) / Math.max(1, stats.commits);
      console.log(
        `${durability} ${crc} run ${run}: ${Math.round(events / outcome.seconds)} events/s, ` +
          `${stats.commits} commits, ${(stats.batches / Math.max(1, stats.commits)).toFixed(1)} batches/commit, ` +
          `${perCommitMs.toFixed(3)} ms/commit, ${stats.fsyncs} fsyncs, ${stats.crcTasks} crc tasks, ` +
          `CPU ${cpu.microsPerEvent.toFixed(2)} µs/event (main/writer/crc/other ${cpuByRole(cpu)}), ` +
          `${cpu.busyCores.toFixed(2)} busy cores`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

await main();
