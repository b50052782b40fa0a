import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { BenchConfig } from './config.js';
import type { CaseResult } from './measure.js';
import type { Workload } from './workload.js';

/** What a case child gets: the run's config, the shared workload, and a private, empty directory. */
export interface CaseContext {
  config: BenchConfig;
  workload: Workload;
  /** Empty directory for this case's data; the runner removes it after the case. */
  dir: string;
  /** nowSeconds() value after which a write case stops issuing puts (BENCH_CASE_SECONDS). */
  deadline: number;
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
