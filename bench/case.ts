import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchConfig } from './config.js';
import type { CaseResult } from './measure.js';
import type { ThreadRoles } from './thread-roles.js';
import type { Workload } from './workload.js';

/** What a case child gets: the run's config, the shared workload, and a private, empty directory. */
export interface CaseContext {
  config: BenchConfig;
  workload: Workload;
  /** Empty directory for this case's data; the runner removes it after the case. */
  dir: string;
  /** nowSeconds() value after which a write case stops issuing puts (BENCH_CASE_SECONDS). */
  deadline: number;
  /** Names the case's worker threads for the per-thread CPU times (see bench/cpu-meter.ts). */
  threads: ThreadRoles;
}

/** A case module exports `run`; `variant` selects e.g. durability or producer count. */
export type CaseRun = (context: CaseContext, variant: string) => Promise<CaseResult[]>;

/**
 * Drops the OS page cache so the next read comes from disk. Needs root on Linux
 * (`echo 3 > /proc/sys/vm/drop_caches`); returns why it could not, instead of failing the case.
 */
export function dropPageCache(): { dropped: true } | { dropped: false; reason: string } {
  if (process.platform !== 'linux') return { dropped: false, reason: `not Linux (${process.platform})` };
  try {
    // Dirty pages are not dropped, so write them back first.
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return { dropped: true };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return { dropped: false, reason: `drop_caches not permitted (${code})` };
  }
}

/**
 * Median latency of 4 KiB write + fdatasync in `dir`, measured just before a case: the disk's
 * condition at that moment (other processes syncing make it swing by 10× on a shared machine), so
 * a slow fsync-bound row can be told apart from a slow store.
 */
export function probeFsyncMs(dir: string, samples = 15): number {
  const path = join(dir, 'fsync-probe.bin');
  const fd = openSync(path, 'w');
  const block = new Uint8Array(4096);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const start = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      times.push(performance.now() - start);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(times.length / 2)]! * 1000) / 1000;
}
