import { sizeLabel } from './cases/store-files.js';
import type { BenchConfig } from './config.js';
import type { CaseResult } from './measure.js';
import type { Ratios, TargetCheck } from './report-types.js';

/**
 * The report's parts for issue 10's cases: the table of stores opened in fresh processes (the
 * scale case), the scale targets and the read-back target.
 */
type Rated = CaseResult & { ratios: Ratios };

/** Open time ratio and resident-set growth allowed between the smallest and the largest store. */
export const SCALE_OPEN_RATIO_TARGET = 2;
export const SCALE_RSS_GROWTH_TARGET_MB = 64;

export const OPEN_HEADER = [
  'case',
  'what',
  'store events',
  'store MiB',
  'written events/s',
  'open s',
  'RSS before open MiB',
  'RSS after open MiB',
  'get() ms',
  'RSS after get MiB',
  'peak RSS MiB',
  'notes',
];

function count(value: number | undefined, digits = 0): string {
  if (value === undefined) return '';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function openTableRow(result: Rated): string[] {
  const open = result.open;
  return [
    result.id,
    result.description,
    count(open?.storeEvents),
    count(open?.storeMb, 1),
    count(open?.writeEventsPerSec),
    count(open?.openSeconds, 3),
    count(open?.rssBeforeOpenMb),
    count(open?.rssAfterOpenMb),
    count(open?.readMs, 2),
    count(open?.rssAfterReadMb),
    count(result.peakRssMb),
    result.notes.join('; '),
  ];
}

/**
 * Per API, for cleanly closed stores: open(largest) ÷ open(smallest) <= 2 and RSS after
 * open(largest) − RSS after open(smallest) <= 64 MiB (issue 10 states them for 10 M and 1 M).
 */
export function checkScaleTargets(results: readonly Rated[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const api of ['ringstore', 'engine'] as const) {
    const rows = results
      .filter((result) => result.open?.api === api && !result.open.afterCrash)
      .sort((a, b) => a.open!.storeEvents - b.open!.storeEvents);
    const small = rows[0]?.open;
    const large = rows.at(-1)?.open;
    if (small === undefined || large === undefined || rows.length < 2) continue;
    const [s, l] = [sizeLabel(small.storeEvents), sizeLabel(large.storeEvents)];
    const ratio = Math.round((large.openSeconds / small.openSeconds) * 100) / 100;
    checks.push({
      target: `open(${l}) ÷ open(${s}) <= ${SCALE_OPEN_RATIO_TARGET} (${api}, fresh process)`,
      measured: `${ratio}× (${large.openSeconds.toFixed(3)} s / ${small.openSeconds.toFixed(3)} s)`,
      met: ratio <= SCALE_OPEN_RATIO_TARGET,
    });
    const growth = Math.round((large.rssAfterOpenMb - small.rssAfterOpenMb) * 10) / 10;
    checks.push({
      target: `RSS after open(${l}) − RSS after open(${s}) <= ${SCALE_RSS_GROWTH_TARGET_MB} MiB (${api})`,
      measured: `${growth} MiB (${large.rssAfterOpenMb} − ${small.rssAfterOpenMb})`,
      met: growth <= SCALE_RSS_GROWTH_TARGET_MB,
    });
  }
  return checks;
}

/** Warm read-back of the read-back case >= 2× lmdb in the same run, when the case ran. */
export function checkReadbackTargets(results: readonly Rated[]): TargetCheck[] {
  const warm = results.find((result) => result.id === 'readback ringstore warm');
  if (warm === undefined) return [];
  const ratio = warm.ratios.vsLmdb;
  return [
    {
      target: 'read-back case: ringstore warm read-back >= 2x lmdb warm (RingStore.get, one await at a time)',
      measured: ratio === undefined ? '?' : `${ratio}x`,
      met: ratio === undefined ? 'unknown' : ratio >= 2,
    },
  ];
}

/** What the scale and read-back rows were run on, for the report's header. */
export function describeOptInWorkloads(config: BenchConfig, results: readonly CaseResult[]): string[] {
  const lines: string[] = [];
  if (results.some((result) => result.kind === 'open')) {
    lines.push(
      `Scale: stores of ${config.scaleEvents.map((events) => count(events)).join(', ')} events of ` +
        `${config.eventBytes} bytes, batches of ${config.batchEvents}, ${config.scaleInstanceEvents} events ` +
        'per instance, written through RingStore.put (durability write), closed, then opened in a fresh ' +
        'process per row; the largest is reopened by a process SIGKILLed mid-append and opened once more.',
    );
  }
  if (results.some((result) => result.id.startsWith('readback '))) {
    const sample = Math.min(config.readInstances, config.readbackEvents / config.readbackInstanceEvents);
    lines.push(
      `Read-back: ${count(config.readbackEvents)} events, ${config.readbackInstanceEvents} per instance, ` +
        `written through RingStore.put and the same events loaded into lmdb; ${count(sample)} ` +
        'random instances read back one await at a time.',
    );
  }
  return lines;
}
