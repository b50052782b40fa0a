import { execFileSync } from 'node:child_process';
import { rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { RingStore } from '../../src/api/ring-store.js';
import { parseRepartitionPlan } from '../../src/model/repartition-plan.js';
import type { BackupReport } from '../../src/storage/backup.js';
import { repartitionStore } from '../../src/storage/repartition.js';
import type { CaseContext } from '../case.js';
import { sizedConfig } from '../config.js';
import { type CaseResult, MIB, nowSeconds, round, throughput } from '../measure.js';
import { note } from '../progress.js';
import { BENCH_DOMAIN, Workload } from '../workload.js';
import { writeThroughApi } from './api-write.js';
import { sizeLabel, storeBytes } from './store-files.js';

/**
 * Issue 14's operations case: a store of the largest BENCH_SCALE_EVENTS size (default 10 M events)
 * written through RingStore.put, then, on the open RingStore (idle), an online backup with sealed
 * segments hard-linked and one with everything copied, and, on the closed store, a repartition that
 * renames its domain (every batch read and written again, then verified). Each is compared with
 * `cp -R` of the same bytes (the copied backup's files) followed by `sync -f`: `× cp` is the
 * operation's bytes per second over cp's, so 1.00 is as fast as cp (above 1 with hard links).
 */
function timed<T>(work: () => Promise<T> | T): Promise<{ value: T; seconds: number }> {
  const start = nowSeconds();
  return Promise.resolve(work()).then((value) => ({ value, seconds: nowSeconds() - start }));
}

function copyWithCp(from: string, to: string): number {
  const start = nowSeconds();
  execFileSync('cp', ['-R', from, to]);
  execFileSync('sync', ['-f', to]);
  return nowSeconds() - start;
}

function opsRow(
  id: string,
  system: string,
  description: string,
  events: number,
  bytes: number,
  seconds: number,
  cpSeconds: number,
  notes: string[],
): CaseResult {
  return {
    id,
    kind: 'ops',
    system,
    description,
    ...throughput(events, bytes, seconds),
    ops: { cpSeconds: round(cpSeconds, 3), timesCp: round(cpSeconds / seconds, 2) },
    notes,
  };
}

function backupNotes(report: BackupReport): string[] {
  return [
    `generation ${report.generation}: ${report.linkedFiles} files linked (${round(report.linkedBytes / MIB, 1)} MiB), ` +
      `${report.copiedFiles} copied (${round(report.copiedBytes / MIB, 1)} MiB)`,
  ];
}

export async function run(context: CaseContext): Promise<CaseResult[]> {
  const events = Math.max(...context.config.scaleEvents);
  const config = sizedConfig(context.config, events, context.config.scaleInstanceEvents);
  const size = sizeLabel(events);
  const disk = statfsSync(context.dir);
  // The store, two backups, cp's copy and the repartitioned store: five times ~160 bytes per event.
  if (disk.bavail * disk.bsize < events * 160 * 5) {
    throw new Error(`the ops case needs about ${Math.ceil((events * 800) / MIB)} MiB free in ${context.dir}`);
  }
  const dir = join(context.dir, 'store');
  await writeThroughApi(dir, config, new Workload(config), `ops ${size} write`);
  const linkedDir = join(context.dir, 'backup-linked');
  const copiedDir = join(context.dir, 'backup-copied');
  note(`ops ${size}: online backups of the open store`);
  const store = await RingStore.open({ dir });
  let linked: { value: BackupReport; seconds: number };
  let copied: { value: BackupReport; seconds: number };
  try {
    linked = await timed(() => store.backup(linkedDir));
    copied = await timed(() => store.backup(copiedDir, { link: false }));
  } finally {
    await store.close();
  }
  const logBytes = copied.value.copiedBytes;
  note(`ops ${size}: cp -R of the same bytes`);
  const cpSeconds = copyWithCp(copiedDir, join(context.dir, 'cp-copy'));
  rmSync(join(context.dir, 'cp-copy'), { recursive: true, force: true });
  rmSync(linkedDir, { recursive: true, force: true });
  rmSync(copiedDir, { recursive: true, force: true });
  note(`ops ${size}: repartition (rename the domain)`);
  const plan = parseRepartitionPlan({ renameDomains: { [BENCH_DOMAIN]: `${BENCH_DOMAIN}-renamed` } });
  const target = join(context.dir, 'repartitioned');
  const repartition = await timed(() => repartitionStore(dir, target, plan));
  const targetBytes = storeBytes(target);
  rmSync(target, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  return [
    opsRow(
      `cp ${size}`,
      'cp',
      'cp -R of the log bytes, then sync -f',
      events,
      logBytes,
      cpSeconds,
      cpSeconds,
      [],
    ),
    opsRow(
      `backup linked ${size}`,
      'ringstore',
      'RingStore.backup, sealed segments hard-linked',
      events,
      logBytes,
      linked.seconds,
      cpSeconds,
      backupNotes(linked.value),
    ),
    opsRow(
      `backup copied ${size}`,
      'ringstore',
      'RingStore.backup, link: false',
      events,
      logBytes,
      copied.seconds,
      cpSeconds,
      backupNotes(copied.value),
    ),
    opsRow(
      `repartition ${size}`,
      'ringstore',
      'repartitionStore renaming the domain: read, write, sync, verify',
      events,
      logBytes,
      repartition.seconds,
      cpSeconds,
      [`target ${round(targetBytes / MIB, 1)} MiB on disk with its index files`],
    ),
  ];
}
