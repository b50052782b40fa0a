import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingStore } from '../src/api/ring-store.js';
import type { Durability } from '../src/types.js';
import { configFromEnv } from './config.js';
import { LatencyRecorder, runInFlight } from './measure.js';
import { BENCH_AGGREGATE_TYPE, BENCH_DOMAIN, Workload } from './workload.js';

/**
 * A small standalone driver for profiling the write pipeline from the main thread, without the
 * bench harness around it (one process, no child, no baselines):
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/profile-pipeline.js [fsync|none] [pool|inline] [runs]
 *
 * It uses the bench workload (BENCH_EVENTS, BENCH_IN_FLIGHT, … as in docs/BENCHMARKS.md) and prints
 * one line per run: events/s, commits, batches per commit, ms per commit and the CPU time of all
 * threads per event (less sensitive to a loaded machine than the rate). Several runs in one
 * process show the warm-up; compare builds by running two copies of dist/ alternately.
 */
async function main(): Promise<void> {
  const durability = (process.argv[2] ?? 'fsync') as Durability;
  const crc = (process.argv[3] ?? 'pool') as 'pool' | 'inline';
  const runs = Number(process.argv[4] ?? 1);
  const config = configFromEnv();
  const workload = new Workload(config);
  for (let run = 0; run < runs; run++) {
    const dir = mkdtempSync(join(tmpdir(), 'ringstore-profile-'));
    try {
      const maxBatches = process.env.PROFILE_MAX_BATCHES_PER_COMMIT;
      const store = await RingStore.open({
        dir,
        durability,
        crc,
        ...(maxBatches ? { maxBatchesPerCommit: Number(maxBatches) } : {}),
      });
      const latencies = new LatencyRecorder(workload.batchCount);
      const cpuBefore = process.cpuUsage();
      const outcome = await runInFlight(
        workload.batchCount,
        config.inFlight,
        Number.POSITIVE_INFINITY,
        (batch) =>
          store.put(
            BENCH_DOMAIN,
            BENCH_AGGREGATE_TYPE,
            workload.idOf(workload.instanceOf(batch)),
            workload.inputEvents(batch),
          ),
        latencies,
      );
      const cpu = process.cpuUsage(cpuBefore);
      await store.close();
      const stats = store.stats();
      const events = outcome.completed * config.batchEvents;
      const perCommitMs = (outcome.seconds * 1000) / Math.max(1, stats.commits);
      console.log(
        `${durability} ${crc} run ${run}: ${Math.round(events / outcome.seconds)} events/s, ` +
          `${stats.commits} commits, ${(stats.batches / Math.max(1, stats.commits)).toFixed(1)} batches/commit, ` +
          `${perCommitMs.toFixed(3)} ms/commit, ${stats.fsyncs} fsyncs, ${stats.crcTasks} crc tasks, ` +
          `CPU (all threads) ${(((cpu.user + cpu.system) / events) * 1000).toFixed(0)} ns/event`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

await main();
