import { type CaseRun, probeFsyncMs } from './case.js';
import type { BenchConfig } from './config.js';
import { nowSeconds } from './measure.js';
import { ThreadRoles } from './thread-roles.js';
import { Workload } from './workload.js';

/**
 * Entry point of one case child (forked by run.ts): every heavy case runs in a fresh process, so
 * its peak RSS, its heap and its threads are its own. Reads its job from BENCH_JOB, answers over IPC.
 */
export interface CaseJob {
  module: string;
  variant: string;
  dir: string;
  config: BenchConfig;
}

const caseModules: Record<string, () => Promise<{ run: CaseRun }>> = {
  floor: () => import('./cases/floor.js'),
  lmdb: () => import('./cases/lmdb.js'),
  'storage-engine': () => import('./cases/storage-engine.js'),
  reads: () => import('./cases/reads.js'),
  readback: () => import('./cases/readback.js'),
  ringstore: () => import('./cases/ringstore.js'),
  scale: () => import('./cases/scale.js'),
  ops: () => import('./cases/ops.js'),
  cluster: () => import('./cases/cluster.js'),
};

export function caseModuleNames(): string[] {
  return Object.keys(caseModules);
}

async function main(): Promise<void> {
  const job = JSON.parse(process.env.BENCH_JOB ?? '') as CaseJob;
  const load = caseModules[job.module];
  if (load === undefined) throw new Error(`unknown case module ${job.module}`);
  // Listening before the case starts any worker, so that every worker's announcement arrives.
  const threads = new ThreadRoles();
  const { run } = await load();
  const workload = new Workload(job.config);
  const fsyncProbeMs = probeFsyncMs(job.dir);
  const results = await run(
    { config: job.config, workload, dir: job.dir, deadline: nowSeconds() + job.config.caseSeconds, threads },
    job.variant,
  );
  for (const result of results) result.fsyncProbeMs ??= fsyncProbeMs;
  process.send?.({ results }, () => process.exit(0));
}

if (process.env.BENCH_JOB !== undefined) {
  main().catch((error: unknown) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.send?.({ error: message }, () => process.exit(1));
  });
}
